package records_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/perpetuo/perpetuo/internal/ids"
	"github.com/perpetuo/perpetuo/internal/pgtest"
	"github.com/perpetuo/perpetuo/internal/records"
	"github.com/perpetuo/perpetuo/internal/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestMain fails the package when a recorder leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func gen(ws string) records.Generation {
	now := time.Now()
	return records.Generation{
		ID: ids.New(ids.Generation, now), WorkspaceID: ws, KeyID: "key_1", MemberID: "mem_1",
		RequestedModel: "mock/echo", Model: "mock/echo", Provider: "mock", Status: 200,
		PromptTokens: 3, CompletionTokens: 5, Cost: decimal.RequireFromString("0.0000130000000000000001"),
		Latency: 12 * time.Millisecond, TTFT: 3 * time.Millisecond, CreatedAt: now.UTC().Truncate(time.Microsecond),
		Attempts: []records.Attempt{{Provider: "mock", Model: "mock/echo", Status: 200, LatencyMs: 12}},
	}
}

func newRecorder(t testing.TB, st records.Store, opts records.Options) *records.Recorder {
	t.Helper()
	r, err := records.NewRecorder(st, quiet, opts)
	require.NoError(t, err)
	return r
}

// flaky fails the first failures inserts after writing them, like a
// commit whose acknowledgement was lost.
type flaky struct {
	*store.Store
	failures atomic.Int32
}

func (f *flaky) InsertGenerations(ctx context.Context, gs []records.Generation) error {
	if err := f.Store.InsertGenerations(ctx, gs); err != nil {
		return err
	}
	if f.failures.Add(-1) >= 0 {
		return errors.New("connection lost after commit")
	}
	return nil
}

func TestRecorderWritesEveryRecordOnce(t *testing.T) {
	pool := pgtest.New(t)
	st := &flaky{Store: store.New(pool)}
	st.failures.Store(2)
	r := newRecorder(t, st, records.Options{BatchSize: 10, FlushInterval: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.Run(ctx) }()

	first := gen("ws_a")
	r.Record(first)
	got, err := r.Get(context.Background(), "ws_a", first.ID)
	require.NoError(t, err, "readable at once, before any flush")
	require.Equal(t, first.ID, got.ID)
	_, err = r.Get(context.Background(), "ws_other", first.ID)
	require.ErrorIs(t, err, records.ErrNotFound, "never across workspaces")

	for range 99 {
		r.Record(gen("ws_a"))
	}
	require.Eventually(t, func() bool { return r.Pending() == 0 }, 5*time.Second, 5*time.Millisecond,
		"failed batches are retried until written")
	cancel()
	wg.Wait()
	require.NoError(t, r.Close(context.Background()))

	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM generations`).Scan(&n))
	require.Equal(t, 100, n)
	got, err = r.Get(context.Background(), "ws_a", first.ID)
	require.NoError(t, err)
	require.True(t, got.Cost.Equal(first.Cost), "cost kept exactly: %s", got.Cost)
	require.Equal(t, first.Attempts, got.Attempts)
	require.Equal(t, first.TTFT, got.TTFT)
}

func TestCloseFlushesWithoutRun(t *testing.T) {
	pool := pgtest.New(t)
	r := newRecorder(t, store.New(pool), records.Options{})
	for range 5 {
		r.Record(gen("ws_b"))
	}
	require.Equal(t, 5, r.Pending())
	require.NoError(t, r.Close(context.Background()))
	require.Zero(t, r.Pending())
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM generations`).Scan(&n))
	require.Equal(t, 5, n)
}

// TestRoutingIsStoredAsWritten: a record's routing decision comes back
// byte for byte, in its key order and without added spaces, through both
// write paths (the batch's COPY, and the multi-row insert a retried batch
// takes). PostgreSQL keeps the JSON as text: parsing it into jsonb on every
// COPY cost a seventh of its CPU per record (docs/performance.md), and
// jsonb would reorder the keys.
func TestRoutingIsStoredAsWritten(t *testing.T) {
	pool := pgtest.New(t)
	st := store.New(pool)
	ctx := context.Background()
	routing := []byte(`{"strategy":"cheapest","candidates":[{"provider":"mock","model":"mock/echo","chosen":true}],"order":["mock"]}`)
	first, second := gen("ws_r"), gen("ws_r")
	first.Routing, second.Routing = routing, routing
	require.NoError(t, st.InsertGenerations(ctx, []records.Generation{first}))
	// A retried batch holding a written row takes the multi-row insert.
	require.NoError(t, st.InsertGenerations(ctx, []records.Generation{first, second}))
	for _, id := range []string{first.ID, second.ID} {
		got, err := st.Generation(ctx, "ws_r", id)
		require.NoError(t, err)
		require.Equal(t, string(routing), string(got.Routing))
		require.Equal(t, first.Attempts, got.Attempts)
	}
}

func TestGetWaitsForARecentRecordOfAnotherReplica(t *testing.T) {
	pool := pgtest.New(t)
	st := store.New(pool)
	// The reader waits up to four flush intervals (1 s here) for a recent
	// id. The interval is long enough that the other replica's insert,
	// started 60 ms in, lands within it on a loaded machine too.
	reader := newRecorder(t, st, records.Options{FlushInterval: 250 * time.Millisecond})
	g := gen("ws_c")
	go func() {
		time.Sleep(60 * time.Millisecond) // the other replica's batch lands a little later
		_ = st.InsertGenerations(context.Background(), []records.Generation{g})
	}()
	got, err := reader.Get(context.Background(), "ws_c", g.ID)
	require.NoError(t, err)
	require.Equal(t, g.ID, got.ID)

	old := g
	old.ID = ids.New(ids.Generation, time.Now().Add(-2*time.Hour))
	start := time.Now()
	_, err = reader.Get(context.Background(), "ws_c", old.ID)
	require.ErrorIs(t, err, records.ErrNotFound, "an old unknown id is a plain 404")
	require.Less(t, time.Since(start), 500*time.Millisecond, "at once, not after the 1 s wait")
	start = time.Now()
	_, err = reader.Get(context.Background(), "ws_c", ids.New(ids.Generation, time.Now().Add(-10*time.Minute)))
	require.ErrorIs(t, err, records.ErrNotFound)
	took := time.Since(start)
	require.GreaterOrEqual(t, took, time.Second, "a recent unknown id is waited for")
	require.Less(t, took, 3*time.Second, "briefly, not forever")
}

// gated blocks each insert until released, and remembers batch sizes.
type gated struct {
	*store.Store
	entered chan int
	release chan struct{}
}

func (g *gated) InsertGenerations(ctx context.Context, gs []records.Generation) error {
	g.entered <- len(gs)
	<-g.release
	return g.Store.InsertGenerations(ctx, gs)
}

// TestFlushWritesWhatWasQueuedWhenItBegan: records arriving while a flush
// writes wait for the next one, so a busy gateway writes large batches
// instead of chasing each new record with a batch of a few rows.
func TestFlushWritesWhatWasQueuedWhenItBegan(t *testing.T) {
	t.Parallel()
	st := &gated{Store: store.New(pgtest.New(t)), entered: make(chan int, 4), release: make(chan struct{})}
	rec := newRecorder(t, st, records.Options{})
	for range 10 {
		rec.Record(gen("ws_batch"))
	}
	flushed := make(chan error, 1)
	go func() { flushed <- rec.Flush(context.Background()) }()
	require.Equal(t, 10, <-st.entered)
	for range 5 {
		rec.Record(gen("ws_batch")) // while the first batch is being written
	}
	st.release <- struct{}{}
	select {
	case err := <-flushed:
		require.NoError(t, err)
	case n := <-st.entered:
		close(st.release)
		t.Fatalf("the flush went on to write %d records queued after it began", n)
	case <-time.After(10 * time.Second):
		t.Fatal("the flush did not return")
	}
	require.Equal(t, 5, rec.Pending(), "the five newer records wait for the next flush")

	go func() { flushed <- rec.Flush(context.Background()) }()
	require.Equal(t, 5, <-st.entered)
	st.release <- struct{}{}
	require.NoError(t, <-flushed)
	require.Zero(t, rec.Pending())
	close(st.release)
	require.NoError(t, rec.Close(context.Background()))
}
