package main

import (
	"context"
	"fmt"
	"log/slog"
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
	pool  *pgxpool.Pool // with the gateway's default pool settings
	where string        // where the server runs, for the report
	stop  func()        // stops what openDatabase started
	// migrationLeak is how many connections store.Migrate left acquired
	// on its own pool (it once leaked one, which made Close hang forever);
	// such a pool is abandoned instead of closed and the report says so.
	migrationLeak int
}

// openDatabase starts the managed cluster under cfg.DataDir (or uses the
// server of cfg.DatabaseURL), recreates benchDatabase on it and migrates it.
func openDatabase(ctx context.Context, cfg config.Config, log *slog.Logger) (db database, err error) {
	serverURL := cfg.DatabaseURL
	db.where, db.stop = "the server of DATABASE_URL", func() {}
	if serverURL == "" {
		dir := filepath.Join(cfg.DataDir, "postgres")
		cl, err := pgdev.Start(ctx, dir, log)
		if err != nil {
			return database{}, fmt.Errorf("start managed PostgreSQL (set DATABASE_URL to use your own): %w", err)
		}
		serverURL, db.where = cl.URL("postgres"), "managed PostgreSQL in "+dir
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
	pcfg, err := pgxpool.ParseConfig(serverURL)
	if err != nil {
		return database{}, fmt.Errorf("parse database URL: %w", err)
	}
	if err := recreateDatabase(ctx, pcfg.ConnConfig.Copy()); err != nil {
		return database{}, err
	}
	pcfg.ConnConfig.Database = benchDatabase
	if db.migrationLeak, err = migrate(ctx, pcfg.Copy()); err != nil {
		return database{}, err
	}
	db.pool, err = pgxpool.NewWithConfig(ctx, pcfg)
	if err == nil {
		if err = db.pool.Ping(ctx); err != nil {
			db.pool.Close()
		}
	}
	if err != nil {
		return database{}, fmt.Errorf("connect to %s: %w", benchDatabase, err)
	}
	return db, nil
}

// migrate applies the migrations through a pool of its own, so that a
// regression where store.Migrate keeps a connection acquired cannot shrink
// (or, on Close, hang) the gateway's pool. It returns how many it kept.
func migrate(ctx context.Context, pcfg *pgxpool.Config) (leaked int, err error) {
	pcfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return 0, fmt.Errorf("connect to %s: %w", benchDatabase, err)
	}
	err = store.Migrate(pool, "up")
	// A pool with a connection still acquired is abandoned: that connection
	// ends with the server or the process.
	if leaked = int(pool.Stat().AcquiredConns()); leaked == 0 {
		pool.Close()
	}
	if err != nil {
		return leaked, fmt.Errorf("migrate %s: %w", benchDatabase, err)
	}
	return leaked, nil
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
