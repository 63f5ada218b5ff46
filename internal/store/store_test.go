package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/budget"
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
	hold := func(i int) budget.Hold {
		return budget.Hold{ID: fmt.Sprintf("gen-%d:key", i), Kind: "key", ScopeID: "key_x", Period: period,
			Amount: amount, Expires: time.Now().Add(time.Hour)}
	}
	results := make(chan int, 20)
	for i := range 20 {
		go func() {
			ok, _, _, err := st.Reserve(ctx, hold(i), limit)
			require.NoError(t, err)
			if ok {
				results <- i
			} else {
				results <- -1
			}
		}()
	}
	var granted []int
	for range 20 {
		if i := <-results; i >= 0 {
			granted = append(granted, i)
		}
	}
	require.Len(t, granted, 3, "0.3 fits three times in 1")
	spent, reserved, err := st.Spend(ctx, "key", "key_x", period)
	require.NoError(t, err)
	require.True(t, spent.IsZero())
	require.Equal(t, "0.9", reserved.String())

	require.NoError(t, st.Settle(ctx, hold(granted[0]).ID, decimal.RequireFromString("0.05")))
	require.NoError(t, st.Settle(ctx, hold(granted[0]).ID, decimal.RequireFromString("0.05")), "settling twice is harmless")
	spent, reserved, err = st.Spend(ctx, "key", "key_x", period)
	require.NoError(t, err)
	require.Equal(t, "0.05", spent.String(), "a hold settles once")
	require.Equal(t, "0.6", reserved.String())
	ok, _, _, err := st.Reserve(ctx, hold(100), limit)
	require.NoError(t, err)
	require.True(t, ok, "settling below the reservation frees room")
}

// TestSweepChargesHoldsThatNeverSettled: a replica that dies mid-request
// leaves its hold; the sweep charges it in full and frees the reservation.
func TestSweepChargesHoldsThatNeverSettled(t *testing.T) {
	t.Parallel()
	st := New(pgtest.New(t))
	ctx := context.Background()
	now := time.Now()
	period := budget.Lifetime
	for i, expires := range []time.Time{now.Add(-time.Minute), now.Add(-time.Second), now.Add(time.Hour)} {
		h := budget.Hold{ID: fmt.Sprintf("gen-%d:key", i), Kind: "key", ScopeID: "key_y", Period: period,
			Amount: decimal.RequireFromString("0.25"), Expires: expires}
		ok, _, _, err := st.Reserve(ctx, h, decimal.RequireFromString("10"))
		require.NoError(t, err)
		require.True(t, ok)
	}
	swept, err := st.SweepHolds(ctx, now, now.Add(-time.Minute))
	require.NoError(t, err)
	require.Len(t, swept, 1, "one scope")
	require.Equal(t, "0.5", swept[0].Amount.String(), "both expired holds, summed")
	spent, reserved, err := st.Spend(ctx, "key", "key_y", period)
	require.NoError(t, err)
	require.Equal(t, "0.5", spent.String())
	require.Equal(t, "0.25", reserved.String(), "the live hold stays")
	swept, err = st.SweepHolds(ctx, now, now.Add(-time.Minute))
	require.NoError(t, err)
	require.Empty(t, swept, "a hold is swept once")
	// A late settle of a swept hold changes nothing: it was charged in full.
	require.NoError(t, st.Settle(ctx, "gen-0:key", decimal.RequireFromString("0.01")))
	spent, _, err = st.Spend(ctx, "key", "key_y", period)
	require.NoError(t, err)
	require.Equal(t, "0.5", spent.String())
}
