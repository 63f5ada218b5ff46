package store

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/pgtest"
	"github.com/perpetuo/perpetuo/internal/records"
)

// TestSweepResolvesADeadReplica: when a replica stops heartbeating, its
// open streams become interrupted records, while a live replica's are left
// alone.
func TestSweepResolvesADeadReplica(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	st := New(pool)
	ctx := context.Background()
	require.NoError(t, st.Heartbeat(ctx, "rep_live"))
	require.NoError(t, st.Heartbeat(ctx, "rep_dead"))
	_, err := pool.Exec(ctx, `UPDATE replicas SET heartbeat_at = now() - interval '1 minute' WHERE id = 'rep_dead'`)
	require.NoError(t, err)

	g := records.Generation{ID: "gen-answered", WorkspaceID: "ws", KeyID: "key_a", MemberID: "mem", RequestedModel: "m",
		Status: 200, Cost: decimal.RequireFromString("0.0123"), CreatedAt: time.Now()}
	starts := []records.Start{{ID: "gen-stream", WorkspaceID: "ws", KeyID: "KEYZ", MemberID: "mem", RequestedModel: "m", CreatedAt: time.Now()}}
	require.NoError(t, st.InsertStarts(ctx, "rep_dead", starts))
	starts[0].ID = "gen-live-stream"
	require.NoError(t, st.InsertStarts(ctx, "rep_live", starts))

	deadBefore := time.Now().Add(-30 * time.Second)
	n, err := st.InterruptDead(ctx, deadBefore)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	got, err := st.Generation(ctx, "ws", "gen-stream")
	require.NoError(t, err, "the id the client holds resolves")
	require.Equal(t, "interrupted", got.ErrorType)
	require.Equal(t, "error", got.FinishReason)
	_, err = st.Generation(ctx, "ws", "gen-live-stream")
	require.ErrorIs(t, err, records.ErrNotFound, "a live replica's stream is still running")

	// Its record, when written, removes the start marker.
	g.ID = "gen-live-stream"
	require.NoError(t, st.InsertGenerations(ctx, []records.Generation{g}))
	var left int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM generation_starts`).Scan(&left))
	require.Zero(t, left)
}

// TestKeyUsageRollupsCountEachRecordOnce: the rollups behind GET /v1/key
// grow as records are inserted, and a retried insert counts nothing twice.
func TestKeyUsageRollupsCountEachRecordOnce(t *testing.T) {
	t.Parallel()
	st := New(pgtest.New(t))
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC) // a Wednesday
	gs := []records.Generation{
		{ID: "gen-1", WorkspaceID: "ws", KeyID: "key_r", MemberID: "m", RequestedModel: "x", Cost: decimal.RequireFromString("0.1"), CreatedAt: now},
		{ID: "gen-2", WorkspaceID: "ws", KeyID: "key_r", MemberID: "m", RequestedModel: "x", Cost: decimal.RequireFromString("0.2"), CreatedAt: now.AddDate(0, 0, -1)}, // this week and month
		{ID: "gen-3", WorkspaceID: "ws", KeyID: "key_r", MemberID: "m", RequestedModel: "x", Cost: decimal.RequireFromString("0.4"), CreatedAt: now.AddDate(0, 0, -3)}, // last week (Sunday), last month
		{ID: "gen-4", WorkspaceID: "ws", KeyID: "key_r", MemberID: "m", RequestedModel: "x", Cost: decimal.RequireFromString("0.8"), CreatedAt: now, BYOK: true},
	}
	require.NoError(t, st.InsertGenerations(ctx, gs))
	require.NoError(t, st.InsertGenerations(ctx, gs), "a retried batch")
	u, _, err := st.KeyUsage(ctx, "key_r", now, nil)
	require.NoError(t, err)
	require.Equal(t, "0.7", u.Total.String())
	require.Equal(t, "0.1", u.Daily.String())
	require.Equal(t, "0.3", u.Weekly.String())
	require.Equal(t, "0.3", u.Monthly.String())
	require.Equal(t, "0.8", u.BYOK.String())

	// A reader holding records unwritten learns, from the same snapshot as
	// the rollups, which of them were written meanwhile (so counts each once).
	_, written, err := st.KeyUsage(ctx, "key_r", now, []string{"gen-2", "gen-unwritten"})
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"gen-2": true}, written)
}
