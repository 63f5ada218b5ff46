package records

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/internal/ids"
	"github.com/perpetuo/perpetuo/internal/safetext"
)

// ErrNotFound is returned when no generation has that id in that workspace.
var ErrNotFound = errors.New("generation not found")

// ErrRejected marks a write the database refused for the rows' content (as
// opposed to being unreachable): retrying the same rows cannot succeed.
var ErrRejected = errors.New("rows rejected by the database")

// Store persists and reads records.
type Store interface {
	// InsertGenerations writes gs idempotently; an error wrapping
	// ErrRejected means one of the rows was refused.
	InsertGenerations(ctx context.Context, gs []Generation) error
	InsertStarts(ctx context.Context, replica string, ss []Start) error
	Generation(ctx context.Context, workspaceID, id string) (Generation, error)
}

// Options tune a Recorder.
type Options struct {
	// A flush costs PostgreSQL about 0.7 ms whatever its size (the
	// transaction, the rollup and aggregate statements), so the defaults
	// trade 100 ms of delay before a record is in the database (it is
	// readable from this replica at once) for batches large enough to
	// amortise it under load. The interval's own effect has not been
	// measured apart from the json columns' (docs/performance.md).
	BatchSize     int           // flush when this many are pending (default 512)
	FlushInterval time.Duration // flush at least this often (default 100ms)
	// MaxPending bounds the records held in memory (default 10000). Beyond
	// it, records go to the spill file, or are dropped and counted when
	// there is none.
	MaxPending int
	// SpillDir holds the spill file ("" = no spill file).
	SpillDir string
	// MaxSpillBytes bounds the spill file (default 1 GiB: about 1.5 million
	// records, over two hours at 200 requests/s).
	MaxSpillBytes int64
	// Replica names this process on the start markers it writes.
	Replica string
}

// Recorder batches generation records and writes them in the background.
// Record never waits on the database: while it is down, records wait in
// memory up to MaxPending, then in an append-only spill file, and are
// written in order once it answers. A row the database refuses is retried
// alone, then without its free text, then set aside, so it never holds up
// the others.
type Recorder struct {
	store Store
	log   *slog.Logger
	opts  Options
	spill *spill // nil: none

	mu      sync.Mutex
	pending map[string]Generation // recorded, not yet written
	queue   []string              // ids in pending, in arrival order
	starts  map[string]Start      // start markers not yet written

	kick      chan struct{}
	flushMu   sync.Mutex // one writer at a time
	adoptOnce sync.Once
	done      chan struct{}
	closed    sync.Once

	written, degraded, setAside, spilled, dropped, corrupt atomic.Uint64
}

// NewRecorder returns a Recorder; call Run to start writing. With a
// SpillDir, its first flush also adopts the spill files of dead processes
// there.
func NewRecorder(store Store, log *slog.Logger, opts Options) (*Recorder, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 512
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 100 * time.Millisecond
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 10000
	}
	if opts.MaxSpillBytes <= 0 {
		opts.MaxSpillBytes = 1 << 30
	}
	r := &Recorder{
		store: store, log: log, opts: opts,
		pending: map[string]Generation{}, starts: map[string]Start{},
		kick: make(chan struct{}, 1), done: make(chan struct{}),
	}
	if opts.SpillDir != "" {
		sp, err := openSpill(opts.SpillDir, opts.MaxSpillBytes)
		if err != nil {
			return nil, err
		}
		r.spill = sp
	}
	return r, nil
}

// adopt takes over, once, the spill files of stopped processes. It runs at
// the first flush rather than at start-up: a large file takes a while to
// copy, and serving need not wait for it.
func (r *Recorder) adopt() {
	r.adoptOnce.Do(func() {
		if r.spill == nil {
			return
		}
		adopted, corrupt, err := r.spill.adoptOrphans()
		r.corrupt.Add(uint64(corrupt))
		if err != nil {
			r.log.Error("adopt spilled generation records of a stopped process", "err", err)
		}
		if adopted > 0 || corrupt > 0 {
			r.log.Warn("adopted generation records a stopped process had spilled; writing them", "records", adopted, "unreadable", corrupt)
		}
	})
}

// Record queues g for writing and returns at once.
func (r *Recorder) Record(g Generation) {
	g = g.Sanitized()
	r.mu.Lock()
	delete(r.starts, g.ID) // not written yet: no need to
	if len(r.pending) < r.opts.MaxPending {
		if _, dup := r.pending[g.ID]; !dup {
			r.queue = append(r.queue, g.ID)
		}
		r.pending[g.ID] = g
		n := len(r.queue)
		r.mu.Unlock()
		if n >= r.opts.BatchSize {
			r.wake()
		}
		return
	}
	r.mu.Unlock()
	r.overflow(g)
}

// overflow spills g, or drops and counts it when it cannot.
func (r *Recorder) overflow(g Generation) {
	err := errSpillFull
	if r.spill != nil {
		if err = r.spill.append(g, false); err == nil {
			r.spilled.Add(1)
			return
		}
	}
	r.dropped.Add(1)
	r.log.Error("generation record dropped: memory and spill file are full", "generation", g.ID, "workspace", g.WorkspaceID, "err", err)
}

// Started queues a start marker for a stream whose id the client holds.
func (r *Recorder) Started(s Start) {
	s.ID, s.WorkspaceID = safetext.Clean(s.ID, maxID), safetext.Clean(s.WorkspaceID, maxID)
	s.KeyID, s.MemberID = safetext.Clean(s.KeyID, maxID), safetext.Clean(s.MemberID, maxID)
	s.RequestedModel = safetext.Clean(s.RequestedModel, maxName)
	r.mu.Lock()
	if _, done := r.pending[s.ID]; done || len(r.starts) >= r.opts.MaxPending {
		r.mu.Unlock()
		return // a marker only matters if this replica dies; never worth memory
	}
	r.starts[s.ID] = s
	r.mu.Unlock()
	// The next tick writes it (within FlushInterval): waking the writer for
	// each stream cost several statements per stream, and a stream that
	// ends before the tick needs no marker at all.
}

func (r *Recorder) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Get returns a generation of the workspace, pending or written.
func (r *Recorder) Get(ctx context.Context, workspaceID, id string) (Generation, error) {
	r.mu.Lock()
	g, ok := r.pending[id]
	r.mu.Unlock()
	if !ok && r.spill != nil {
		g, ok = r.spill.get(id)
	}
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

// Spend is one pending record's cost, for usage that must include what is
// not written yet.
type Spend struct {
	ID   string // the generation's
	Cost decimal.Decimal
	BYOK bool
	At   time.Time
}

// PendingSpend lists the spend of key's records that this replica has not
// written yet (in memory or spilled). A record leaves this list only after
// its write committed, so a reader that takes this list first and then
// reads the database (skipping ids it finds written) counts every record
// exactly once.
func (r *Recorder) PendingSpend(keyID string) []Spend {
	var out []Spend
	r.mu.Lock()
	for _, g := range r.pending {
		if g.KeyID == keyID {
			out = append(out, Spend{ID: g.ID, Cost: g.Cost, BYOK: g.BYOK, At: g.CreatedAt})
		}
	}
	r.mu.Unlock()
	if r.spill != nil {
		out = r.spill.spend(keyID, out)
	}
	return out
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

// Run writes batches until ctx ends or Close is called.
func (r *Recorder) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.FlushInterval)
	defer t.Stop()
	failing := false
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
		switch {
		case err != nil && !failing:
			failing = true
			r.log.Error("write generation records; keeping them and retrying", "err", err, "pending", r.Pending())
		case err == nil && failing:
			failing = false
			r.log.Info("generation records are written again")
		}
	}
}

// Flush writes every pending start marker and record now: those in memory,
// then those spilled. On failure to reach the database they stay pending
// and are retried by the next flush. Records queued while it writes wait
// for the next flush: under load, draining them as they come would write
// batches of a few rows, whose per-statement cost then dominates.
func (r *Recorder) Flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.adopt()
	if err := r.flushStarts(ctx); err != nil {
		return err
	}
	queued := r.queued()
	for {
		batch, commit := r.nextBatch(queued)
		queued -= len(batch)
		if len(batch) == 0 {
			return nil
		}
		if err := r.write(ctx, batch); err != nil {
			return err
		}
		if err := commit(); err != nil {
			return err
		}
	}
}

func (r *Recorder) flushStarts(ctx context.Context) error {
	r.mu.Lock()
	if len(r.starts) == 0 {
		r.mu.Unlock()
		return nil
	}
	ss := make([]Start, 0, len(r.starts))
	for _, s := range r.starts {
		ss = append(ss, s)
	}
	r.mu.Unlock()
	if err := r.store.InsertStarts(ctx, r.opts.Replica, ss); err != nil {
		return fmt.Errorf("insert %d start markers: %w", len(ss), err)
	}
	r.mu.Lock()
	for _, s := range ss {
		delete(r.starts, s.ID)
	}
	r.mu.Unlock()
	return nil
}

// queued is the number of records waiting in memory.
func (r *Recorder) queued() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue)
}

// nextBatch returns the oldest pending records, at most limit of those in
// memory, and how to mark them written; spilled ones after those.
func (r *Recorder) nextBatch(limit int) ([]Generation, func() error) {
	max := r.opts.BatchSize * 4
	r.mu.Lock()
	if n := min(len(r.queue), max, limit); n > 0 {
		batch := make([]Generation, n)
		for i, id := range r.queue[:n] {
			batch[i] = r.pending[id]
		}
		r.mu.Unlock()
		return batch, func() error {
			r.mu.Lock()
			for _, id := range r.queue[:n] {
				delete(r.pending, id)
			}
			r.queue = r.queue[n:]
			r.mu.Unlock()
			return nil
		}
	}
	r.mu.Unlock()
	if r.spill == nil {
		return nil, nil
	}
	batch, end, corrupt := r.spill.next(max)
	if corrupt > 0 {
		r.corrupt.Add(uint64(corrupt))
		r.log.Error("unreadable lines in the generation spill file skipped", "lines", corrupt)
	}
	return batch, func() error { return r.spill.commit(batch, end) }
}

// write inserts batch. When the database refuses it for a row's content,
// rows are retried one by one: a refused row is written without its free
// text, and set aside (counted and logged, without content) if even that is
// refused. Other errors (the database is unreachable) are returned and the
// batch stays pending.
func (r *Recorder) write(ctx context.Context, batch []Generation) error {
	err := r.store.InsertGenerations(ctx, batch)
	if err == nil {
		r.written.Add(uint64(len(batch)))
		return nil
	}
	if !errors.Is(err, ErrRejected) {
		return fmt.Errorf("insert %d generations: %w", len(batch), err)
	}
	for _, g := range batch {
		err := r.store.InsertGenerations(ctx, []Generation{g})
		if err == nil {
			r.written.Add(1)
			continue
		}
		if !errors.Is(err, ErrRejected) {
			return fmt.Errorf("insert generation %s: %w", g.ID, err)
		}
		err = r.store.InsertGenerations(ctx, []Generation{g.stripped()})
		switch {
		case err == nil:
			r.degraded.Add(1)
			r.written.Add(1)
			r.log.Warn("generation record written without its text fields: the database refused them", "generation", g.ID, "workspace", g.WorkspaceID, "err", err)
		case errors.Is(err, ErrRejected):
			r.setAside.Add(1)
			r.log.Error("generation record set aside: the database refused it", "generation", g.ID, "workspace", g.WorkspaceID, "err", err)
		default:
			return fmt.Errorf("insert generation %s: %w", g.ID, err)
		}
	}
	return nil
}

// Close stops Run and flushes what is pending, within ctx. When the
// database cannot take it, what is in memory moves to the spill file (and
// is written by the next process on the same data directory).
func (r *Recorder) Close(ctx context.Context) error {
	r.closed.Do(func() { close(r.done) })
	err := r.Flush(ctx)
	for err == nil && r.queued() > 0 { // recorded while the last flush wrote
		err = r.Flush(ctx)
	}
	if err != nil && r.spill != nil {
		r.mu.Lock()
		moved := make([]Generation, 0, len(r.queue))
		for _, id := range r.queue {
			moved = append(moved, r.pending[id])
		}
		r.mu.Unlock()
		for _, g := range moved {
			if r.spill.append(g, true) != nil {
				r.dropped.Add(1)
			}
		}
		r.mu.Lock()
		clear(r.pending)
		r.queue = nil
		r.mu.Unlock()
		r.log.Warn("database unavailable at shutdown: generation records kept in the spill file for the next start",
			"records", len(moved), "err", err)
		err = nil
	}
	if r.spill != nil {
		if cerr := r.spill.close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("final flush: %w", err)
	}
	return nil
}

// Pending returns how many records wait to be written, in memory or spilled.
func (r *Recorder) Pending() int {
	r.mu.Lock()
	n := len(r.queue)
	r.mu.Unlock()
	if r.spill != nil {
		s, _ := r.spill.stats()
		n += s
	}
	return n
}

// Collectors export the recorder's counters to Prometheus.
func (r *Recorder) Collectors() []prometheus.Collector {
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v.Load()) })
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	return []prometheus.Collector{
		counter("perpetuo_records_written_total", "Generation records written to the database.", &r.written),
		counter("perpetuo_records_degraded_total", "Generation records written without their text fields, which the database refused.", &r.degraded),
		counter("perpetuo_records_set_aside_total", "Generation records the database refused even without text; logged by id, not written.", &r.setAside),
		counter("perpetuo_records_spilled_total", "Generation records written to the local spill file because memory was full.", &r.spilled),
		counter("perpetuo_records_dropped_total", "Generation records lost because memory and the spill file were full.", &r.dropped),
		counter("perpetuo_records_spill_unreadable_total", "Unreadable lines skipped in spill files (a write cut by a crash).", &r.corrupt),
		gauge("perpetuo_records_pending", "Generation records waiting in memory.", func() float64 {
			r.mu.Lock()
			defer r.mu.Unlock()
			return float64(len(r.queue))
		}),
		gauge("perpetuo_records_spill_bytes", "Bytes of generation records waiting in the spill file.", func() float64 {
			if r.spill == nil {
				return 0
			}
			_, b := r.spill.stats()
			return float64(b)
		}),
	}
}
