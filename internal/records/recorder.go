package records

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/perpetuo/perpetuo/internal/ids"
)

// ErrNotFound is returned when no generation has that id in that workspace.
var ErrNotFound = errors.New("generation not found")

// Store persists and reads records.
type Store interface {
	InsertGenerations(ctx context.Context, gs []Generation) error
	Generation(ctx context.Context, workspaceID, id string) (Generation, error)
}

// Options tune a Recorder.
type Options struct {
	BatchSize     int           // flush when this many are pending (default 256)
	FlushInterval time.Duration // flush at least this often (default 50ms)
	MaxPending    int           // beyond this, Record blocks rather than grow without bound (default 65536)
}

// Recorder batches generation records and writes them in the background.
type Recorder struct {
	store Store
	log   *slog.Logger
	opts  Options

	mu      sync.Mutex
	pending map[string]Generation // recorded, not yet written
	queue   []string              // ids in pending, in arrival order
	space   *sync.Cond            // signalled when pending shrinks

	kick    chan struct{}
	flushMu sync.Mutex // one writer at a time
	done    chan struct{}
}

// NewRecorder returns a Recorder; call Run to start writing.
func NewRecorder(store Store, log *slog.Logger, opts Options) *Recorder {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 50 * time.Millisecond
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 65536
	}
	r := &Recorder{
		store: store, log: log, opts: opts,
		pending: map[string]Generation{},
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	r.space = sync.NewCond(&r.mu)
	return r
}

// Record queues g for writing. It returns at once unless MaxPending records
// are already waiting (the database is down or slow), in which case it waits
// for room: records are never dropped.
func (r *Recorder) Record(g Generation) {
	r.mu.Lock()
	for len(r.pending) >= r.opts.MaxPending {
		r.space.Wait()
	}
	r.pending[g.ID] = g
	r.queue = append(r.queue, g.ID)
	n := len(r.queue)
	r.mu.Unlock()
	if n >= r.opts.BatchSize {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// Get returns a generation of the workspace, pending or written.
func (r *Recorder) Get(ctx context.Context, workspaceID, id string) (Generation, error) {
	r.mu.Lock()
	g, ok := r.pending[id]
	r.mu.Unlock()
	if ok {
		if g.WorkspaceID != workspaceID {
			return Generation{}, ErrNotFound
		}
		return g, nil
	}
	// Another replica may have served it and not flushed yet: its batch
	// lands within a flush interval, so a recent id is waited for rather
	// than answered 404.
	deadline := time.Now().Add(4 * r.opts.FlushInterval)
	for {
		g, err := r.store.Generation(ctx, workspaceID, id)
		if err == nil {
			return g, nil
		}
		if !errors.Is(err, ErrNotFound) || !recent(id) || time.Now().After(deadline) {
			return Generation{}, fmt.Errorf("read generation: %w", err)
		}
		select {
		case <-ctx.Done():
			return Generation{}, ctx.Err()
		case <-time.After(r.opts.FlushInterval / 2):
		}
	}
}

// recentWindow: ids made longer ago than this are not waited for (an old
// unknown id is a plain 404, at once).
const recentWindow = time.Hour

// recent reports whether id was made recently enough that its record may
// still sit in another replica's batch (a stream ends long after its id is
// made, so the window is generous).
func recent(id string) bool {
	created, ok := ids.Time(ids.Generation, id)
	return ok && time.Since(created) < recentWindow
}

// flushTimeout bounds one background flush.
const flushTimeout = 30 * time.Second

// Run writes batches until ctx ends, then returns; call Close to flush what
// is left.
func (r *Recorder) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.done:
			return
		case <-t.C:
		case <-r.kick:
		}
		// A write in progress is never cancelled: a cancelled insert may
		// have committed anyway, and shutdown flushes what is left.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		err := r.Flush(fctx)
		cancel()
		if err != nil {
			r.log.Error("write generation records; will retry", "err", err, "pending", r.Pending())
		}
	}
}

// Flush writes every pending record now. On failure the records stay
// pending and are retried by the next flush.
func (r *Recorder) Flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	for {
		r.mu.Lock()
		n := min(len(r.queue), r.opts.BatchSize*4)
		if n == 0 {
			r.mu.Unlock()
			return nil
		}
		batch := make([]Generation, n)
		for i, id := range r.queue[:n] {
			batch[i] = r.pending[id]
		}
		r.mu.Unlock()

		if err := r.store.InsertGenerations(ctx, batch); err != nil {
			return fmt.Errorf("insert %d generations: %w", n, err)
		}
		r.mu.Lock()
		for _, id := range r.queue[:n] {
			delete(r.pending, id)
		}
		r.queue = r.queue[n:]
		r.space.Broadcast()
		r.mu.Unlock()
	}
}

// Close stops Run and flushes what is pending, within ctx.
func (r *Recorder) Close(ctx context.Context) error {
	select {
	case <-r.done:
	default:
		close(r.done)
	}
	if err := r.Flush(ctx); err != nil {
		return fmt.Errorf("final flush: %w", err)
	}
	return nil
}

// Pending returns how many records wait to be written.
func (r *Recorder) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue)
}
