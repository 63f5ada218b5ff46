package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/perpetuo/perpetuo/internal/config"
	"github.com/perpetuo/perpetuo/internal/pgdev"
	"github.com/perpetuo/perpetuo/internal/store"
)

// benchDatabase is dropped and recreated on every run, so bootstrapping
// always succeeds and no other data is touched.
const benchDatabase = "perpetuo_bench"

// database is the gateway's database for this run.
type database struct {
	url   string        // of benchDatabase, for the gateway
	pool  *pgxpool.Pool // the bench's own, to count what the gateway wrote
	where string        // where the server runs, for the report
	local bool          // the server runs on this machine (its CPU is measurable)
	stop  func()        // stops what openDatabase started
}

// openDatabase starts the managed cluster under cfg.DataDir (or uses the
// server of cfg.DatabaseURL), and recreates benchDatabase on it, empty.
func openDatabase(ctx context.Context, cfg config.Config, log *slog.Logger) (db database, err error) {
	serverURL := cfg.DatabaseURL
	db.where, db.stop = "the server of DATABASE_URL", func() {}
	if serverURL == "" {
		dir := filepath.Join(cfg.DataDir, "postgres")
		cl, err := pgdev.Start(ctx, dir, log)
		if err != nil {
			return database{}, fmt.Errorf("start managed PostgreSQL (set DATABASE_URL to use your own): %w", err)
		}
		serverURL, db.where, db.local = cl.URL("postgres"), "managed PostgreSQL in "+dir, true
		db.stop = func() {
			if err := cl.Stop(context.Background()); err != nil {
				log.Warn("stop managed PostgreSQL", "err", err)
			}
		}
	}
	defer func() {
		if err != nil {
			db.stop()
		}
	}()
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return database{}, fmt.Errorf("DATABASE_URL must be a postgres:// URL for the bench")
	}
	if !db.local {
		db.local = u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1" || u.Hostname() == "" || u.Hostname() == "::1"
	}
	u.Path = "/" + benchDatabase
	db.url = u.String()
	pcfg, err := pgxpool.ParseConfig(serverURL)
	if err != nil {
		return database{}, fmt.Errorf("parse database URL: %w", err)
	}
	if err := recreateDatabase(ctx, pcfg.ConnConfig.Copy()); err != nil {
		return database{}, err
	}
	pcfg.ConnConfig.Database = benchDatabase
	pcfg.MaxConns = 4
	// The gateway migrates the schema itself when it starts.
	if db.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return database{}, fmt.Errorf("prepare %s: %w", benchDatabase, err)
	}
	return db, nil
}

// recreateDatabase drops benchDatabase, disconnecting its sessions, and
// creates it empty, connected to the server's "postgres" database.
func recreateDatabase(ctx context.Context, cc *pgx.ConnConfig) error {
	cc.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("connect to the postgres database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	name := pgx.Identifier{benchDatabase}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", benchDatabase, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create database %s: %w", benchDatabase, err)
	}
	return nil
}

// openMigrated is openDatabase with the bench's configuration and the
// schema migrated, for the phases that use the store directly; stop (the
// pool, then a managed server) when done.
func openMigrated(ctx context.Context) (db database, stop func(), err error) {
	cfg, err := benchConfig()
	if err != nil {
		return database{}, nil, err
	}
	db, err = openDatabase(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return database{}, nil, err
	}
	stop = func() { db.pool.Close(); db.stop() }
	if err := store.Migrate(db.pool, "up"); err != nil {
		stop()
		return database{}, nil, err
	}
	return db, stop, nil
}
