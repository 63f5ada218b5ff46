package store

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/pgtest"
)

// TestMigrationsDownAndUpAgain proves every down migration undoes its up
// migration: up (the template) → down to nothing → up again.
func TestMigrationsDownAndUpAgain(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	require.NoError(t, Migrate(pool, "down"))
	var n int
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'schema_migrations'`).Scan(&n))
	require.Zero(t, n, "down must drop every table")
	require.NoError(t, Migrate(pool, "up"))
	require.NoError(t, Migrate(pool, "up"), "up is idempotent")
	_, created, err := New(pool).Bootstrap(context.Background(), keys.Generate(), time.Now())
	require.NoError(t, err)
	require.True(t, created)
}

func TestBootstrapOnlyOnAnEmptyDatabase(t *testing.T) {
	t.Parallel()
	st := New(pgtest.New(t))
	plaintext := keys.Generate()
	b, created, err := st.Bootstrap(context.Background(), plaintext, time.Now())
	require.NoError(t, err)
	require.True(t, created)
	k, err := st.KeyByHash(context.Background(), keys.Hash(plaintext))
	require.NoError(t, err)
	require.Equal(t, b.KeyID, k.ID)
	require.Equal(t, "owner", k.Role)
	_, created, err = st.Bootstrap(context.Background(), keys.Generate(), time.Now())
	require.NoError(t, err)
	require.False(t, created, "a second bootstrap must not create another workspace")
}

// TestReserveNeverPassesTheLimit checks the one-statement reservation
// directly: concurrent reservations stop exactly at the limit.
func TestReserveNeverPassesTheLimit(t *testing.T) {
	t.Parallel()
	st := New(pgtest.New(t))
	ctx := context.Background()
	period := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	limit, amount := decimal.RequireFromString("1"), decimal.RequireFromString("0.3")
	results := make(chan bool, 20)
	for range 20 {
		go func() {
			ok, _, _, err := st.Reserve(ctx, "key", "key_x", period, amount, limit)
			require.NoError(t, err)
			results <- ok
		}()
	}
	granted := 0
	for range 20 {
		if <-results {
			granted++
		}
	}
	require.Equal(t, 3, granted, "0.3 fits three times in 1")
	spent, reserved, err := st.Spend(ctx, "key", "key_x", period)
	require.NoError(t, err)
	require.True(t, spent.IsZero())
	require.Equal(t, "0.9", reserved.String())

	require.NoError(t, st.Settle(ctx, "key", "key_x", period, amount, decimal.RequireFromString("0.05")))
	spent, reserved, err = st.Spend(ctx, "key", "key_x", period)
	require.NoError(t, err)
	require.Equal(t, "0.05", spent.String())
	require.Equal(t, "0.6", reserved.String())
	ok, _, _, err := st.Reserve(ctx, "key", "key_x", period, amount, limit)
	require.NoError(t, err)
	require.True(t, ok, "settling below the reservation frees room")
}
