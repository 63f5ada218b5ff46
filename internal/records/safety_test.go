package records_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/pgtest"
	"github.com/perpetuo/perpetuo/internal/records"
	"github.com/perpetuo/perpetuo/internal/store"
)

// TestPoisonedValuesNeverStopRecording: text PostgreSQL refuses (NUL,
// invalid UTF-8, a character cut in half, oversized values) from a client,
// its headers or an upstream, in one workspace's record, must neither be
// refused nor hold up the records of other workspaces batched with it.
func TestPoisonedValuesNeverStopRecording(t *testing.T) {
	pool := pgtest.New(t)
	st := store.New(pool)
	r := newRecorder(t, st, records.Options{})
	poisons := []func(*records.Generation){
		func(g *records.Generation) { g.User = "alice\x00bob" },
		func(g *records.Generation) { g.SessionID = "s\x00" },
		func(g *records.Generation) { g.App.Title = "My App \xff\xfe" },
		func(g *records.Generation) { g.App.Title = strings.Repeat("a", 127) + "€" }, // € cut at byte 128 before
		func(g *records.Generation) { g.App.Referer = "https://x.example/\x00" },
		func(g *records.Generation) { g.App.Categories = []string{"a\x00b", "ok"} },
		func(g *records.Generation) {
			g.Metadata = map[string]string{"k\x00": "v\xff", "t": strings.Repeat("é", 3000)}
		},
		func(g *records.Generation) { g.UpstreamID = "chatcmpl-\x00" },
		func(g *records.Generation) { g.FinishReason = "stop\x00" },
		func(g *records.Generation) { g.Attempts[0].Model = "m\x00" }, // jsonb refuses \u0000 too
		func(g *records.Generation) { g.User = strings.Repeat("ü", 10000) },
	}
	var ids []string
	for _, poison := range poisons {
		g := gen("ws_hostile")
		poison(&g)
		r.Record(g)
		ids = append(ids, g.ID)
		ok := gen("ws_victim")
		r.Record(ok)
		ids = append(ids, ok.ID)
	}
	require.NoError(t, r.Flush(context.Background()))
	require.NoError(t, r.Close(context.Background()))

	// A fresh recorder (a restart) reads them all from the database.
	r2 := newRecorder(t, st, records.Options{})
	for i, id := range ids {
		ws := "ws_hostile"
		if i%2 == 1 {
			ws = "ws_victim"
		}
		g, err := r2.Get(context.Background(), ws, id)
		require.NoError(t, err, "record %d", i)
		texts := []string{g.User, g.SessionID, g.App.ID, g.App.Title, g.App.Referer, g.UpstreamID, g.FinishReason}
		texts = append(texts, g.App.Categories...)
		for k, v := range g.Metadata {
			texts = append(texts, k, v)
		}
		for _, s := range texts {
			require.True(t, utf8.ValidString(s))
			require.NotContains(t, s, "\x00")
			require.LessOrEqual(t, len(s), 2048)
		}
	}
	require.NoError(t, r2.Close(context.Background()))
}

// TestStoreMarksContentRefusalsAsRejected: unsanitised text reaching the
// store directly is refused by PostgreSQL, and reported as ErrRejected (so
// the recorder retries row by row) without quoting the value.
func TestStoreMarksContentRefusalsAsRejected(t *testing.T) {
	st := store.New(pgtest.New(t))
	g := gen("ws_a")
	g.User = "secret-user\x00"
	err := st.InsertGenerations(context.Background(), []records.Generation{g})
	require.ErrorIs(t, err, records.ErrRejected)
	require.NotContains(t, err.Error(), "secret-user")
}

// refusing is a store that refuses (as PostgreSQL would) any batch holding
// a row whose user is "bad", and, when allText, even that row stripped.
type refusing struct {
	records.Store
	allText bool
	calls   atomic.Int32
}

func (f *refusing) InsertGenerations(ctx context.Context, gs []records.Generation) error {
	f.calls.Add(1)
	for _, g := range gs {
		if g.User == "bad" || f.allText && g.ID == "gen-refused" {
			return records.ErrRejected
		}
	}
	return f.Store.InsertGenerations(ctx, gs)
}

// TestARefusedRowIsSetAsideNotRetriedForever: one refused row is retried
// alone, written without its text when that is what was refused, and set
// aside (counted) when even that fails; every other row is written.
func TestARefusedRowIsSetAsideNotRetriedForever(t *testing.T) {
	pool := pgtest.New(t)
	st := &refusing{Store: store.New(pool)}
	r := newRecorder(t, st, records.Options{})
	bad := gen("ws_a")
	bad.User = "bad"
	r.Record(bad)
	for range 9 {
		r.Record(gen("ws_b"))
	}
	require.NoError(t, r.Flush(context.Background()))
	require.Zero(t, r.Pending())
	got, err := r.Get(context.Background(), "ws_a", bad.ID)
	require.NoError(t, err, "the refused row is kept without its text")
	require.Empty(t, got.User)
	require.True(t, got.Cost.Equal(bad.Cost), "its spend is never lost")
	require.Contains(t, got.Anomaly, "text fields dropped")

	st.allText = true
	hopeless := gen("ws_a")
	hopeless.ID = "gen-refused"
	r.Record(hopeless)
	r.Record(gen("ws_b"))
	require.NoError(t, r.Flush(context.Background()))
	require.Zero(t, r.Pending(), "a row refused whatever is done is set aside, not retried")
	require.Equal(t, 1.0, metric(t, r, "perpetuo_records_set_aside_total"))
	require.Equal(t, 1.0, metric(t, r, "perpetuo_records_degraded_total"))
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM generations WHERE workspace_id = 'ws_b'`).Scan(&n))
	require.Equal(t, 10, n)
	require.NoError(t, r.Close(context.Background()))
}

// outage is a store that is unreachable while down is set.
type outage struct {
	records.Store
	down atomic.Bool
}

var errDown = errors.New("dial tcp: connection refused")

func (o *outage) InsertGenerations(ctx context.Context, gs []records.Generation) error {
	if o.down.Load() {
		return errDown
	}
	return o.Store.InsertGenerations(ctx, gs)
}

func (o *outage) InsertStarts(ctx context.Context, replica string, ss []records.Start) error {
	if o.down.Load() {
		return errDown
	}
	return o.Store.InsertStarts(ctx, replica, ss)
}

// TestOutageSpillsToDiskAndReplays: while the database is down, Record
// never blocks, memory holds at most MaxPending records, the rest go to
// the spill file and stay readable, and all of them are written in order
// once the database is back.
func TestOutageSpillsToDiskAndReplays(t *testing.T) {
	pool := pgtest.New(t)
	st := &outage{Store: store.New(pool)}
	st.down.Store(true)
	r := newRecorder(t, st, records.Options{MaxPending: 100, FlushInterval: 5 * time.Millisecond, SpillDir: t.TempDir()})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.Run(ctx) }()

	const n = 3000
	var ids []string
	start := time.Now()
	for range n {
		g := gen("ws_a")
		r.Record(g)
		ids = append(ids, g.ID)
	}
	require.Less(t, time.Since(start), 5*time.Second, "Record never waits on the database")
	require.Equal(t, n, r.Pending())
	require.LessOrEqual(t, metric(t, r, "perpetuo_records_pending"), 100.0, "memory is bounded")
	require.Equal(t, float64(n-100), metric(t, r, "perpetuo_records_spilled_total"))
	require.Positive(t, metric(t, r, "perpetuo_records_spill_bytes"))
	got, err := r.Get(context.Background(), "ws_a", ids[n-1])
	require.NoError(t, err, "a spilled record is readable")
	require.Equal(t, ids[n-1], got.ID)

	st.down.Store(false)
	require.Eventually(t, func() bool { return r.Pending() == 0 }, 20*time.Second, 10*time.Millisecond)
	cancel()
	wg.Wait()
	require.NoError(t, r.Close(context.Background()))
	var count int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM generations`).Scan(&count))
	require.Equal(t, n, count)
	require.Zero(t, metric(t, r, "perpetuo_records_dropped_total"))
}

// TestSpilledRecordsSurviveARestart: records pending when the process stops
// with the database down stay in the spill file, and the next process on the
// same directory writes them.
func TestSpilledRecordsSurviveARestart(t *testing.T) {
	pool := pgtest.New(t)
	st := &outage{Store: store.New(pool)}
	st.down.Store(true)
	dir := t.TempDir()
	r := newRecorder(t, st, records.Options{MaxPending: 10, SpillDir: dir})
	for range 50 {
		r.Record(gen("ws_a"))
	}
	require.NoError(t, r.Close(context.Background()), "nothing is lost: what is left is on disk")
	files, _ := filepath.Glob(filepath.Join(dir, "*.spill"))
	require.Len(t, files, 1)

	st.down.Store(false)
	r2 := newRecorder(t, st, records.Options{SpillDir: dir})
	require.NoError(t, r2.Flush(context.Background()), "its first flush adopts the stopped process's file")
	require.NoError(t, r2.Close(context.Background()))
	var count int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM generations`).Scan(&count))
	require.Equal(t, 50, count)
	left, _ := filepath.Glob(filepath.Join(dir, "*.spill"))
	require.Empty(t, left, "replayed files are removed")
}

// TestACorruptSpillLineIsSkipped: a line cut by a crash does not stop the
// replay of the others.
func TestACorruptSpillLineIsSkipped(t *testing.T) {
	pool := pgtest.New(t)
	dir := t.TempDir()
	st := &outage{Store: store.New(pool)}
	st.down.Store(true)
	r := newRecorder(t, st, records.Options{MaxPending: 1, SpillDir: dir})
	for range 3 {
		r.Record(gen("ws_a"))
	}
	require.NoError(t, r.Close(context.Background()))
	files, _ := filepath.Glob(filepath.Join(dir, "*.spill"))
	f, err := os.OpenFile(files[0], os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, _ = f.WriteString(`{"ID":"gen-cut","Works`) // the crash cut this write
	require.NoError(t, f.Close())

	st.down.Store(false)
	r2 := newRecorder(t, st, records.Options{SpillDir: dir})
	require.NoError(t, r2.Flush(context.Background()))
	require.Equal(t, 1.0, metric(t, r2, "perpetuo_records_spill_unreadable_total"))
	require.NoError(t, r2.Close(context.Background()))
	var count int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM generations`).Scan(&count))
	require.Equal(t, 3, count)
}

// metric reads one of the recorder's collectors by name.
func metric(t *testing.T, r *records.Recorder, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.Collectors()...)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
