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

// take asks the ledger for one lease.
func take(t *testing.T, st *Store, replica string, k budget.Key, limit, need, want string) budget.Grant {
	t.Helper()
	g, err := st.TakeLeases(context.Background(), replica, time.Now().Add(time.Hour), []budget.Take{{Key: k,
		Limit: decimal.RequireFromString(limit), Need: decimal.RequireFromString(need), Want: decimal.RequireFromString(want)}})
	require.NoError(t, err)
	require.Len(t, g, 1)
	return g[0]
}

// TestLeasesNeverPassTheLimit checks the one-statement lease directly:
// concurrent takes stop exactly at the limit, far from it a take gets the
// lease it wants, and near it exactly what it needs.
func TestLeasesNeverPassTheLimit(t *testing.T) {
	t.Parallel()
	st := New(pgtest.New(t))
	ctx := context.Background()
	k := budget.Key{Kind: "key", ID: "key_x", Period: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	results := make(chan decimal.Decimal, 20)
	for i := range 20 {
		go func() {
			g, err := st.TakeLeases(ctx, fmt.Sprintf("rep_%d", i%2), time.Now().Add(time.Hour), []budget.Take{{Key: k,
				Limit: decimal.RequireFromString("1"), Need: decimal.RequireFromString("0.3"), Want: decimal.RequireFromString("0.3")}})
			if err != nil {
				results <- decimal.NewFromInt(-1)
				return
			}
			results <- g[0].Granted
		}()
	}
	granted := 0
	for range 20 {
		g := <-results
		require.False(t, g.IsNegative(), "a take failed")
		if g.IsPositive() {
			require.Equal(t, "0.3", g.String(), "near the limit a take gets exactly what it needs")
			granted++
		}
	}
	require.Equal(t, 3, granted, "0.3 fits three times in 1")
	spent, reserved, err := st.Spend(ctx, "key", "key_x", k.Period)
	require.NoError(t, err)
	require.True(t, spent.IsZero())
	require.Equal(t, "0.9", reserved.String())
	g := take(t, st, "rep_0", k, "1", "0.2", "0.2")
	require.True(t, g.Granted.IsZero(), "0.1 remains")
	require.Equal(t, "0.9", g.Reserved.String())

	far := budget.Key{Kind: "guardrail", ID: "gr_far", Period: k.Period}
	require.Equal(t, "3.2", take(t, st, "rep_0", far, "100", "0.1", "3.2").Granted.String(), "far from the limit: the whole lease")
	require.Equal(t, "3.2", take(t, st, "rep_0", far, "100", "0.1", "3.2").Granted.String())
	require.Equal(t, "0.6", take(t, st, "rep_0", far, "16", "0.1", "3.2").Granted.String(),
		"never more than a sixteenth of what remains (16 - 6.4 = 9.6)")
	require.Equal(t, "0.1", take(t, st, "rep_0", far, "7.15", "0.1", "3.2").Granted.String(),
		"near the limit (0.15 left): exactly the need")
	var amount string
	require.NoError(t, st.pool.QueryRow(ctx, `SELECT amount::text FROM spend_leases WHERE replica_id = 'rep_0' AND scope_id = 'gr_far'`).Scan(&amount))
	require.Equal(t, "7.1", amount, "one lease row per replica and budget, summed")
}

// TestLeaseFlushAppliesOnce: a flush moves consumed spend into spent and
// releases what it hands back, once per seq however often it is retried; a
// lease flushed to nothing is deleted, and one that is gone says so.
func TestLeaseFlushAppliesOnce(t *testing.T) {
	t.Parallel()
	st := New(pgtest.New(t))
	ctx := context.Background()
	k := budget.Key{Kind: "key", ID: "key_f", Period: budget.Lifetime}
	require.NoError(t, st.Heartbeat(ctx, "rep_a"))
	g := take(t, st, "rep_a", k, "1", "0.5", "0.5")
	require.Equal(t, "0.5", g.Granted.String())
	require.NotZero(t, g.LeaseID)
	lease := g.LeaseID
	flush := func(seq int64, spent, release string) budget.FlushState {
		states, err := st.FlushLeases(ctx, "rep_a", seq, time.Now().Add(time.Hour), []budget.Flush{{Key: k, LeaseID: lease,
			Spent: decimal.RequireFromString(spent), Release: decimal.RequireFromString(release)}})
		require.NoError(t, err)
		require.Len(t, states, 1)
		return states[0]
	}
	require.Equal(t, budget.Applied, flush(1, "0.1", "0.2"))
	require.Equal(t, budget.Seen, flush(1, "0.1", "0.2"), "a retried flush")
	spent, reserved, err := st.Spend(ctx, "key", "key_f", budget.Lifetime)
	require.NoError(t, err)
	require.Equal(t, "0.1", spent.String(), "counted once")
	require.Equal(t, "0.2", reserved.String(), "0.5 - 0.1 spent - 0.2 released")
	require.Equal(t, budget.Applied, flush(2, "0.2", "0"))
	n, err := st.Leases(ctx, "rep_a")
	require.NoError(t, err)
	require.Zero(t, n, "a lease flushed to nothing is deleted")
	spent, reserved, err = st.Spend(ctx, "key", "key_f", budget.Lifetime)
	require.NoError(t, err)
	require.Equal(t, "0.3", spent.String())
	require.True(t, reserved.IsZero())
	require.Equal(t, budget.Gone, flush(3, "0.1", "0"))
	spent, _, err = st.Spend(ctx, "key", "key_f", budget.Lifetime)
	require.NoError(t, err)
	require.Equal(t, "0.3", spent.String(), "nothing is flushed into a lease that is gone")
	// A lease emptied and taken again is a new lease; a retry of the flush
	// that emptied it still counts nothing twice, and nothing meant for
	// the old lease applies to the new one.
	again := take(t, st, "rep_a", k, "1", "0.5", "0.5")
	require.Equal(t, "0.5", again.Granted.String())
	require.NotEqual(t, lease, again.LeaseID)
	require.Equal(t, budget.Seen, flush(2, "0.2", "0"))
	require.Equal(t, budget.Gone, flush(4, "0.2", "0"), "the old lease")
	spent, reserved, err = st.Spend(ctx, "key", "key_f", budget.Lifetime)
	require.NoError(t, err)
	require.Equal(t, "0.3", spent.String())
	require.Equal(t, "0.5", reserved.String())
	require.NoError(t, st.Retire(ctx, "rep_a"))
	require.Equal(t, budget.Gone, flush(9, "0.1", "0"), "a replica the others forgot has nothing to flush")
}

// TestSweepChargesLeasesNeverHandedBack: expired leases and those of
// replicas that stopped heartbeating are charged in full and freed, once;
// a live replica's stay, and a clean stop returns its leases uncharged.
func TestSweepChargesLeasesNeverHandedBack(t *testing.T) {
	t.Parallel()
	st := New(pgtest.New(t))
	ctx := context.Background()
	now := time.Now()
	replicas := []string{"rep_live", "rep_dead", "rep_expired", "rep_stopping"}
	for _, r := range replicas {
		require.NoError(t, st.Heartbeat(ctx, r))
	}
	_, err := st.pool.Exec(ctx, `UPDATE replicas SET heartbeat_at = now() - interval '1 minute' WHERE id = 'rep_dead'`)
	require.NoError(t, err)
	k := budget.Key{Kind: "key", ID: "key_y", Period: budget.Lifetime}
	for _, r := range replicas {
		expires := now.Add(time.Hour)
		if r == "rep_expired" {
			expires = now.Add(-time.Second)
		}
		g, err := st.TakeLeases(ctx, r, expires, []budget.Take{{Key: k, Limit: decimal.RequireFromString("10"),
			Need: decimal.RequireFromString("0.25"), Want: decimal.RequireFromString("0.25")}})
		require.NoError(t, err)
		require.Equal(t, "0.25", g[0].Granted.String())
	}
	require.NoError(t, st.ReturnLeases(ctx, "rep_stopping"))
	swept, err := st.SweepLeases(ctx, now, now.Add(-30*time.Second))
	require.NoError(t, err)
	require.Len(t, swept, 1, "one budget")
	require.Equal(t, "0.5", swept[0].Amount.String(), "the dead and the expired lease, summed")
	spent, reserved, err := st.Spend(ctx, "key", "key_y", budget.Lifetime)
	require.NoError(t, err)
	require.Equal(t, "0.5", spent.String())
	require.Equal(t, "0.25", reserved.String(), "the live lease stays; the returned one is free")
	swept, err = st.SweepLeases(ctx, now, now.Add(-30*time.Second))
	require.NoError(t, err)
	require.Empty(t, swept, "a lease is swept once")
}

// TestHistAddAddsPerBucket: the aggregates' histogram merge adds counts per
// bucket, keeps buckets only one side has, and takes NULL as empty.
func TestHistAddAddsPerBucket(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	for _, c := range []struct{ a, b, want string }{
		{`'{"0": 1, "4": 2}'`, `'{"4": 3, "7": 1}'`, `{"0": 1, "4": 5, "7": 1}`},
		{`'{"12": 9}'`, `'{}'`, `{"12": 9}`},
		{`'{}'`, `'{"3": 4000000000}'`, `{"3": 4000000000}`},
		{`NULL`, `'{"1": 1}'`, `{"1": 1}`},
		{`'{"1": 1}'`, `NULL`, `{"1": 1}`},
		{`NULL`, `NULL`, `{}`},
		{`'{"1": 4000000000}'`, `'{"1": 4000000000}'`, `{"1": 8000000000}`},
	} {
		var got string
		require.NoError(t, pool.QueryRow(context.Background(),
			fmt.Sprintf(`SELECT perpetuo_hist_add(%s::jsonb, %s::jsonb)::text`, c.a, c.b)).Scan(&got))
		require.JSONEq(t, c.want, got, "%s + %s", c.a, c.b)
	}
}
