// Package dbpool configures the gateway's PostgreSQL connection pool, the
// same for the server and the tests.
package dbpool

import (
	"context"

	pgxdecimal "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config parses a database URL into a pool configuration whose connections
// encode and decode numeric as decimal.Decimal in PostgreSQL's binary
// format: by default pgx goes through a decimal's text, a format and a parse
// per money value written or read (records, spend, leases).
func Config(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		pgxdecimal.Register(c.TypeMap())
		return nil
	}
	return cfg, nil
}
