// Package pgtest gives every test that needs PostgreSQL a database of its
// own, migrated to the latest schema.
//
// Each call clones a template database that is migrated once per set of
// migration files (pgtestdb keys it by a hash of sql/migrations), so a fresh
// database costs a CREATE DATABASE ... TEMPLATE, not a migration run. The
// database is dropped when the test ends, unless the test failed: then it is
// left for inspection and its URL is in the test log.
//
// The server is the one DATABASE_URL names when it is set (its user must be
// allowed to create roles and databases; sslmode defaults to disable when the
// URL does not set it). Otherwise it is a managed local cluster (package
// pgdev) kept in <repo root>/.data/test-postgres, started once per test
// process and never stopped: later test runs and parallel test processes
// reuse it. Leave it running, or stop it with
//
//	pg_ctl -D .data/test-postgres/data stop
//
// (as root: runuser -u postgres -- pg_ctl ..., and on the /var/tmp directory
// pgdev logs if the postgres user cannot reach the repository). Deleting
// .data/test-postgres after stopping it starts from scratch. A server that
// cannot be reached or started fails the test; it never skips.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver pgtestdb connects with
	"github.com/peterldowns/pgtestdb"
	"github.com/peterldowns/pgtestdb/migrators/golangmigrator"

	"github.com/perpetuo/perpetuo/internal/dbpool"
	"github.com/perpetuo/perpetuo/internal/pgdev"
	"github.com/perpetuo/perpetuo/sql/migrations"
)

// maxPoolConns caps the pool New returns, so many parallel tests stay well
// under the server's max_connections.
const maxPoolConns = 8

var (
	setupOnce sync.Once
	server    pgtestdb.Config
	setupErr  error
)

// New returns a pgx pool on a fresh database, migrated to the latest schema,
// dropped when the test ends (pgtestdb semantics).
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	cfg, err := dbpool.Config(URL(t)) // as the gateway's pool
	if err != nil {
		t.Fatalf("pgtest: parse database URL: %v", err)
	}
	if cfg.MaxConns > maxPoolConns {
		cfg.MaxConns = maxPoolConns
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("pgtest: open pool: %v", err)
	}
	// Registered after pgtestdb's cleanup, so it runs first: the pool is
	// closed before the database is dropped.
	t.Cleanup(pool.Close)
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("pgtest: ping test database: %v", err)
	}
	return pool
}

// URL returns the connection URL of a fresh migrated database (for code that
// opens its own pool). Close every connection to it before the test ends, or
// dropping the database fails the test.
func URL(t testing.TB) string {
	t.Helper()
	setupOnce.Do(func() { server, setupErr = setup() })
	if setupErr != nil {
		t.Fatalf("pgtest: no PostgreSQL server for tests: %v", setupErr)
	}
	migrator := golangmigrator.New(".", golangmigrator.WithFS(migrations.FS))
	return pgtestdb.Custom(t, server, migrator).URL()
}

// setup picks the server: DATABASE_URL, or the managed cluster.
func setup() (pgtestdb.Config, error) {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		conf, err := configFromURL(u)
		if err != nil {
			return pgtestdb.Config{}, fmt.Errorf("DATABASE_URL: %w", err)
		}
		return conf, nil
	}
	root, err := repoRoot()
	if err != nil {
		return pgtestdb.Config{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("pkg", "pgtest")
	cluster, err := pgdev.Start(ctx, filepath.Join(root, ".data", "test-postgres"), log)
	if err != nil {
		return pgtestdb.Config{}, fmt.Errorf("%w\n(set DATABASE_URL to use another server)", err)
	}
	// Never stopped: the cluster outlives this process and is reused.
	return configFromURL(cluster.URL("postgres"))
}

// configFromURL turns a postgres:// URL into the pgtestdb configuration of
// its server.
func configFromURL(raw string) (pgtestdb.Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return pgtestdb.Config{}, err
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return pgtestdb.Config{}, fmt.Errorf("want a postgres:// URL, got scheme %q", u.Scheme)
	}
	conf := pgtestdb.Config{
		DriverName: "pgx",
		Host:       u.Hostname(),
		Port:       u.Port(),
		User:       "postgres",
		Database:   strings.TrimPrefix(u.Path, "/"),
	}
	if conf.Host == "" {
		conf.Host = "localhost"
	}
	if strings.Contains(conf.Host, ":") {
		conf.Host = "[" + conf.Host + "]" // IPv6 literal; pgtestdb joins host:port itself
	}
	if conf.Port == "" {
		conf.Port = "5432"
	}
	if conf.Database == "" {
		conf.Database = "postgres"
	}
	// pgtestdb pastes these into a URL unescaped: escape them here.
	if u.User != nil {
		if name := u.User.Username(); name != "" {
			conf.User = name
		}
		conf.User = url.User(conf.User).String()
		if pw, ok := u.User.Password(); ok {
			conf.Password = strings.TrimPrefix(url.UserPassword("", pw).String(), ":")
		}
	}
	conf.Database = url.PathEscape(conf.Database)
	q := u.Query()
	if q.Get("sslmode") == "" {
		q.Set("sslmode", "disable")
	}
	conf.Options = q.Encode()
	return conf, nil
}

// repoRoot walks up from the working directory to the one holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: cannot place the test cluster in <repo root>/.data")
		}
		dir = parent
	}
}
