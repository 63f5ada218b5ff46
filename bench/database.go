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
)

// benchDatabase is dropped and recreated on every run, so bootstrapping
// always succeeds and no other data is touched.
const benchDatabase = "perpetuo_bench"

// openDatabase starts the managed cluster under cfg.DataDir (or uses the
// server of cfg.DatabaseURL), recreates benchDatabase on it and returns a
// pool on it with the gateway's default pool settings, a description of
// where it runs, and a func stopping what was started.
func openDatabase(ctx context.Context, cfg config.Config, log *slog.Logger) (*pgxpool.Pool, string, func(), error) {
	serverURL, where, stop := cfg.DatabaseURL, "the server of DATABASE_URL", func() {}
	if serverURL == "" {
		dir := filepath.Join(cfg.DataDir, "postgres")
		cl, err := pgdev.Start(ctx, dir, log)
		if err != nil {
			return nil, "", nil, fmt.Errorf("start managed PostgreSQL (set DATABASE_URL to use your own): %w", err)
		}
		serverURL, where = cl.URL("postgres"), "managed PostgreSQL in "+dir
		stop = func() {
			if err := cl.Stop(context.Background()); err != nil {
				log.Warn("stop managed PostgreSQL", "err", err)
			}
		}
	}
	pcfg, err := pgxpool.ParseConfig(serverURL)
	if err != nil {
		stop()
		return nil, "", nil, fmt.Errorf("parse database URL: %w", err)
	}
	if err := recreateDatabase(ctx, pcfg.ConnConfig.Copy()); err != nil {
		stop()
		return nil, "", nil, err
	}
	pcfg.ConnConfig.Database = benchDatabase
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err == nil {
		err = pool.Ping(ctx)
		if err != nil {
			pool.Close()
		}
	}
	if err != nil {
		stop()
		return nil, "", nil, fmt.Errorf("connect to %s: %w", benchDatabase, err)
	}
	return pool, where, stop, nil
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
