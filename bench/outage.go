package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/internal/attribution"
	"github.com/perpetuo/perpetuo/internal/ids"
	"github.com/perpetuo/perpetuo/internal/records"
	"github.com/perpetuo/perpetuo/internal/store"
)

// unreachable is the records store as seen while PostgreSQL is down: every
// write fails the way a refused connection does, until up is set.
type unreachable struct {
	*store.Store
	up atomic.Bool
}

var errUnreachable = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

func (u *unreachable) InsertGenerations(ctx context.Context, gs []records.Generation) error {
	if !u.up.Load() {
		return errUnreachable
	}
	return u.Store.InsertGenerations(ctx, gs)
}

func (u *unreachable) InsertStarts(ctx context.Context, replica string, ss []records.Start) error {
	if !u.up.Load() {
		return errUnreachable
	}
	return u.Store.InsertStarts(ctx, replica, ss)
}

// measureOutage records generations at rate per second for dur while the
// database is unreachable, sampling the process's heap, then brings it back
// and measures how fast the backlog is written. It prints what it saw.
func measureOutage(ctx context.Context, dur time.Duration, rate int, w io.Writer) error {
	db, stop, err := openMigrated(ctx)
	if err != nil {
		return err
	}
	defer stop()
	st := &unreachable{Store: store.New(db.pool)}
	dir, err := os.MkdirTemp("", "perpetuo-outage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	rec, err := records.NewRecorder(st, quiet, records.Options{SpillDir: dir})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go rec.Run(rctx)

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	baseHeap, peakHeap := ms.HeapInuse, ms.HeapInuse
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	start, n := time.Now(), 0
	for time.Since(start) < dur {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		now := time.Now()
		rec.Record(records.Generation{ID: ids.New(ids.Generation, now), WorkspaceID: "ws_bench", KeyID: "key_bench",
			MemberID: "mem_bench", RequestedModel: "mock/echo", Model: "mock/echo", Provider: "mock", Status: 200,
			App: attribution.App{ID: "bench"}, User: "user-123", PromptTokens: 12, CompletionTokens: 40,
			Cost: decimal.RequireFromString("0.0000920000"), Latency: 20 * time.Millisecond, CreatedAt: now.UTC(),
			Attempts: []records.Attempt{{Provider: "mock", Model: "mock/echo", Status: 200, LatencyMs: 20}}})
		n++
		if n%rate == 0 {
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
		}
	}
	pending := rec.Pending()
	st.up.Store(true)
	upAt := time.Now()
	for rec.Pending() > 0 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(10 * time.Millisecond)
	}
	replay := time.Since(upAt)
	cancel()
	if err := rec.Close(context.Background()); err != nil {
		return err
	}
	var written int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM generations WHERE workspace_id = 'ws_bench'`).Scan(&written); err != nil {
		return err
	}
	fmt.Fprintf(w, "Database outage: %s at %d records/s (%d records)\n", dur, rate, n)
	fmt.Fprintf(w, "  pending when the database returned: %d (memory bound 10000, the rest in the spill file)\n", pending)
	fmt.Fprintf(w, "  heap in use: %.1f MB before, %.1f MB peak (+%.1f MB)\n",
		mb(baseHeap), mb(peakHeap), mb(peakHeap-baseHeap))
	fmt.Fprintf(w, "  backlog written in %s (%.0f records/s); %d of %d in the database\n",
		replay.Round(time.Millisecond), float64(pending)/replay.Seconds(), written, n)
	if written != n {
		return fmt.Errorf("outage lost records: %d written of %d", written, n)
	}
	return nil
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }
