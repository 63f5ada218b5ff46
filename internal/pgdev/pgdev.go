// Package pgdev runs a local PostgreSQL server that Perpetuo manages itself:
// the database behind `make run` and behind the tests when DATABASE_URL is
// unset.
//
// A cluster's state lives in one directory (see [Start]):
//
//	<dir>/.lock       exclusive flock serialising Start and Stop across processes
//	<root>/data/      the PostgreSQL data directory (initdb runs once)
//	<root>/server.log the server log (pg_ctl -l)
//	<root>/port       the TCP port chosen at init time, reused afterwards
//
// Normally <root> is <dir> itself. PostgreSQL refuses to run as root, so when
// the current user is root every server binary runs as the "postgres" system
// user and <root> must be owned by, and reachable for, that user: when a
// parent of <dir> is closed to it (for example /root/...), <root> becomes
// /var/tmp/perpetuo-pg-<first 12 hex digits of sha256(absolute dir)>, which is
// stable so the cluster is found again next time.
//
// The server listens on 127.0.0.1 only (no unix socket), trusts every local
// connection (user "postgres", no password), keeps fsync on but sets
// synchronous_commit off, and allows 200 connections. When no server binaries
// are installed, Start installs the Debian "postgresql" package with apt-get
// if it runs as root, and otherwise asks the user to install it or to set
// DATABASE_URL.
package pgdev

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// superuser is the role initdb creates; local connections are trusted.
	superuser = "postgres"
	// listenHost is the only address the server listens on.
	listenHost = "127.0.0.1"
	// confFile holds Perpetuo's settings inside the data directory; it is
	// included from postgresql.conf and rewritten before every start.
	confFile = "perpetuo.conf"
	// readyTimeout bounds the wait for a started server to accept connections.
	readyTimeout = 60 * time.Second
)

// Cluster is a local PostgreSQL server managed by Perpetuo.
type Cluster struct {
	dir     string // the directory passed to Start (absolute); holds the lock
	root    string // where data/, server.log and port live
	dataDir string
	logFile string
	binDir  string
	as      identity
	log     *slog.Logger

	mu    sync.Mutex
	port  int
	owned bool // this Cluster started the server, so Stop stops it
}

// Start initialises (first time only) and starts a cluster whose state lives
// under dir, or reuses one already running there. Returns once it accepts
// connections.
//
// Several processes may call Start on the same dir at once: they are
// serialised by a file lock, one of them starts the server and the others
// reuse it. A nil log uses slog.Default().
func Start(ctx context.Context, dir string, log *slog.Logger) (*Cluster, error) {
	if log == nil {
		log = slog.Default()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("pgdev: cluster directory %q: %w", dir, err)
	}
	// Parents stay traversable (0755) so that, as root, the postgres user can
	// reach the cluster in place; the directory itself is private.
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("pgdev: create cluster directory: %w", err)
	}
	if err := os.Mkdir(abs, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("pgdev: create cluster directory: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(abs, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	binDir, err := findBinDir(ctx, log)
	if err != nil {
		return nil, err
	}
	as, err := serverIdentity()
	if err != nil {
		return nil, err
	}
	root, err := as.clusterRoot(ctx, abs, log)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		dir:     abs,
		root:    root,
		dataDir: filepath.Join(root, "data"),
		logFile: filepath.Join(root, "server.log"),
		binDir:  binDir,
		as:      as,
		log:     log,
	}
	c.binDir = c.matchingBinDir()

	if running, err := c.running(ctx); err != nil {
		return nil, err
	} else if running {
		return c, c.reuse(ctx)
	}
	if err := c.initialise(ctx); err != nil {
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// URL returns a postgres:// connection URL for database name on this cluster.
func (c *Cluster) URL(database string) string {
	c.mu.Lock()
	port := c.port
	c.mu.Unlock()
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort(listenHost, strconv.Itoa(port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// EnsureDatabase creates the database if it does not exist.
func (c *Cluster) EnsureDatabase(ctx context.Context, name string) error {
	if name == "" {
		return errors.New("pgdev: EnsureDatabase: empty database name")
	}
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgdev: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	err = conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	if err != nil {
		return fmt.Errorf("pgdev: look up database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
		// duplicate_database, or the unique index on pg_database when
		// another session created it at the same moment.
		return nil
	}
	if err != nil {
		return fmt.Errorf("pgdev: create database %q: %w", name, err)
	}
	c.log.Info("created PostgreSQL database", "database", name)
	return nil
}

// Stop stops the server (fast shutdown) if this Cluster started it; no-op if
// it reused one started by someone else. Fast shutdown disconnects every
// client, including other processes that reused the server; calling Stop
// again is a no-op.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.owned {
		return nil
	}
	unlock, err := lockFile(ctx, filepath.Join(c.dir, ".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	running, err := c.running(ctx)
	if err != nil {
		return err
	}
	if running {
		out, err := c.pgCtl(ctx, "-D", c.dataDir, "-m", "fast", "-w", "-t", "60", "stop")
		if err != nil {
			return fmt.Errorf("pgdev: pg_ctl stop: %w\n%s", err, out)
		}
		c.log.Info("stopped PostgreSQL", "data", c.dataDir)
	}
	c.owned = false
	return nil
}

// running reports whether a postmaster is alive for the data directory.
func (c *Cluster) running(ctx context.Context) (bool, error) {
	if _, err := os.Stat(filepath.Join(c.dataDir, "PG_VERSION")); err != nil {
		return false, nil
	}
	_, err := c.pgCtl(ctx, "-D", c.dataDir, "status")
	if err == nil {
		return true, nil
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		// 3: not running; 4: no accessible data directory.
		return false, nil
	}
	return false, fmt.Errorf("pgdev: pg_ctl status: %w", err)
}

// reuse adopts a server that is already running for the data directory.
func (c *Cluster) reuse(ctx context.Context) error {
	port, err := pidFilePort(filepath.Join(c.dataDir, "postmaster.pid"))
	if err != nil {
		return fmt.Errorf("pgdev: a PostgreSQL server is running in %s but its port is unknown: %w", c.dataDir, err)
	}
	c.port = port
	if err := c.waitReady(ctx); err != nil {
		return err
	}
	c.log.Debug("reusing running PostgreSQL", "data", c.dataDir, "port", port)
	return nil
}

// initialise runs initdb unless the data directory already holds a cluster.
func (c *Cluster) initialise(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.dataDir, "PG_VERSION")); err == nil {
		return nil
	}
	// Without PG_VERSION the directory is no cluster, only what an
	// interrupted initdb left behind; initdb refuses a non-empty directory.
	if err := os.RemoveAll(c.dataDir); err != nil {
		return fmt.Errorf("pgdev: remove incomplete data directory: %w", err)
	}
	c.log.Info("initialising PostgreSQL cluster", "data", c.dataDir)
	out, err := c.command(ctx, filepath.Join(c.binDir, "initdb"),
		"-D", c.dataDir, "-U", superuser, "--auth=trust", "-E", "UTF8", "--locale=C").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgdev: initdb: %w\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	return c.setPort(port)
}

// start starts the stopped server, moving it to a new port once if its port
// turns out to be taken.
func (c *Cluster) start(ctx context.Context) error {
	port := readPort(filepath.Join(c.root, "port"))
	if port == 0 || !portFree(port) {
		p, err := freePort()
		if err != nil {
			return err
		}
		if port != 0 {
			c.log.Info("PostgreSQL port is taken, moving to a new one", "old", port, "new", p)
		}
		port = p
	}
	if err := c.ensureInclude(); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		if err := c.setPort(port); err != nil {
			return err
		}
		logOffset := fileSize(c.logFile)
		c.log.Info("starting PostgreSQL", "data", c.dataDir, "port", port)
		out, err := c.pgCtl(ctx, "-D", c.dataDir, "-l", c.logFile, "-w", "-t", "60", "start")
		if err == nil {
			break
		}
		newLog := readFrom(c.logFile, logOffset)
		if attempt == 0 && ctx.Err() == nil && (!portFree(port) || strings.Contains(newLog, "could not bind")) {
			p, perr := freePort()
			if perr != nil {
				return perr
			}
			c.log.Info("PostgreSQL port is taken, retrying on a new one", "old", port, "new", p)
			port = p
			continue
		}
		return fmt.Errorf("pgdev: pg_ctl start: %w\n%s\nserver log (%s):\n%s", err, out, c.logFile, tail(newLog, 30))
	}
	c.owned = true
	if err := c.waitReady(ctx); err != nil {
		return err
	}
	return nil
}

// setPort persists port in <root>/port and in the data directory's
// configuration, and records it on c.
func (c *Cluster) setPort(port int) error {
	if err := c.writeFile(filepath.Join(c.root, "port"), []byte(strconv.Itoa(port)+"\n"), 0o644); err != nil {
		return err
	}
	conf := fmt.Sprintf(`# Managed by Perpetuo (internal/pgdev); rewritten before every start.
listen_addresses = '%s'
port = %d
unix_socket_directories = ''
max_connections = 200
synchronous_commit = off
`, listenHost, port)
	if err := c.writeFile(filepath.Join(c.dataDir, confFile), []byte(conf), 0o600); err != nil {
		return err
	}
	c.port = port
	return nil
}

// ensureInclude makes postgresql.conf include perpetuo.conf, last so its
// settings win.
func (c *Cluster) ensureInclude() error {
	path := filepath.Join(c.dataDir, "postgresql.conf")
	conf, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("pgdev: read postgresql.conf: %w", err)
	}
	include := "include_if_exists = '" + confFile + "'"
	if bytes.Contains(conf, []byte(include)) {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("pgdev: update postgresql.conf: %w", err)
	}
	_, err = fmt.Fprintf(f, "\n# Perpetuo's settings (internal/pgdev).\n%s\n", include)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgdev: update postgresql.conf: %w", err)
	}
	return nil
}

// waitReady waits until a connection to the postgres database succeeds.
func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var lastErr error
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgx.Connect(attempt, c.URL("postgres"))
		if err == nil {
			err = conn.Ping(attempt)
			conn.Close(context.Background())
		}
		cancelAttempt()
		if err == nil {
			return nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgdev: PostgreSQL on port %d does not accept connections: %w\nserver log (%s):\n%s",
				c.port, lastErr, c.logFile, tail(readFrom(c.logFile, 0), 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// pgCtl runs pg_ctl as the server's user and returns its combined output.
func (c *Cluster) pgCtl(ctx context.Context, args ...string) ([]byte, error) {
	return c.command(ctx, filepath.Join(c.binDir, "pg_ctl"), args...).CombinedOutput()
}

// command prepares a server binary to run as the server's user in root.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := c.as.command(ctx, name, args...)
	cmd.Dir = c.root
	return cmd
}

// writeFile writes a file the server's user owns.
func (c *Cluster) writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("pgdev: %w", err)
	}
	return c.as.chown(path)
}

// matchingBinDir prefers the binaries of the major version that created an
// existing cluster (Debian installs them side by side), so a newer install
// does not fail on older data.
func (c *Cluster) matchingBinDir() string {
	v, err := os.ReadFile(filepath.Join(c.dataDir, "PG_VERSION"))
	if err != nil {
		return c.binDir
	}
	dir := filepath.Join("/usr/lib/postgresql", strings.TrimSpace(string(v)), "bin")
	if hasServerBinaries(dir) {
		return dir
	}
	return c.binDir
}

// stableFallbackDir is where root keeps a cluster whose dir postgres cannot reach.
func stableFallbackDir(abs string) string {
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join("/var/tmp", "perpetuo-pg-"+hex.EncodeToString(sum[:])[:12])
}

// lockFile takes an exclusive flock on path, polling so ctx can cancel.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pgdev: open lock file: %w", err)
	}
	fd := int(f.Fd())
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(fd, syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("pgdev: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("pgdev: waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freePort asks the kernel for a currently free TCP port on listenHost.
func freePort() (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(listenHost, "0"))
	if err != nil {
		return 0, fmt.Errorf("pgdev: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portFree reports whether port can be bound on listenHost right now.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(listenHost, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// readPort returns the port persisted in path, or 0.
func readPort(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || p <= 0 || p > 65535 {
		return 0
	}
	return p
}

// pidFilePort reads the port from postmaster.pid (its fourth line).
func pidFilePort(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, fmt.Errorf("%s: too short", path)
	}
	p, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err != nil {
		return 0, fmt.Errorf("%s: port: %w", path, err)
	}
	return p, nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readFrom returns the contents of path from offset on ("" on error).
func readFrom(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
