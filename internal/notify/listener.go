package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// appName marks listener connections, so a publisher can count the live
// replicas it must hear back from.
const appName = "perpetuo-listener"

// ack is the kind of the acknowledgement a replica sends once it applied an
// invalidation: ID is the invalidation's token.
const ack = "ack"

// Handler applies an invalidation to a cache. It must be fast: it runs on
// the listener's goroutine.
type Handler func(ev Event)

// Listener receives invalidations for this replica, applies them, and
// acknowledges them so their publisher knows every replica is up to date.
type Listener struct {
	pool     *pgxpool.Pool
	log      *slog.Logger
	handlers []Handler
	replica  string
	stale    *Staleness // nil: none

	mu      sync.Mutex
	waiters map[string]*waiter
	ready   chan struct{} // closed once LISTEN is in place
	once    sync.Once
}

type waiter struct {
	acks int
	need int // -1 until known
	done chan struct{}
}

// NewListener returns a Listener over pool; call Run to start it. stale
// (may be nil) is told when invalidations may have been missed.
func NewListener(pool *pgxpool.Pool, log *slog.Logger, stale *Staleness, handlers ...Handler) *Listener {
	return &Listener{pool: pool, log: log, handlers: handlers, replica: token(), stale: stale,
		waiters: map[string]*waiter{}, ready: make(chan struct{})}
}

// Ready is closed once the listener listens.
func (l *Listener) Ready() <-chan struct{} { return l.ready }

// Run listens until ctx ends, reconnecting after failures.
func (l *Listener) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		// Caches are kept, not cleared: during a database outage they are
		// all that serves. They are marked stale (the database is asked
		// first), and cleared once the connection is back.
		l.stale.lost()
		l.log.Warn("invalidation listener lost its connection; caches now check the database first and serve stale entries only if it does not answer, reconnecting", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// listen holds a dedicated connection (not the pool's: it blocks waiting).
func (l *Listener) listen(ctx context.Context) error {
	cfg := l.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = appName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Anything changed while we were not listening is unknown: reconcile by
	// starting clean, before the caches count as exact again.
	l.apply(Event{Kind: All})
	if !l.stale.Since().IsZero() {
		l.log.Info("invalidation listener reconnected; caches reconciled")
	}
	l.stale.restored()
	l.once.Do(func() { close(l.ready) })
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		ev, ok := parse(n.Payload)
		if !ok {
			continue
		}
		if ev.Kind == ack {
			l.acked(ev.ID)
			continue
		}
		l.apply(ev)
		if ev.token != "" {
			if err := Publish(ctx, conn, Event{Kind: ack, ID: ev.token, token: l.replica}); err != nil {
				return err
			}
		}
	}
}

func (l *Listener) apply(ev Event) {
	for _, h := range l.handlers {
		h(ev)
	}
}

func (l *Listener) acked(tok string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.waiters[tok]
	if !ok {
		return
	}
	w.acks++
	l.check(tok, w)
}

// check closes a waiter that heard from every replica; l.mu is held.
func (l *Listener) check(tok string, w *waiter) {
	if w.need >= 0 && w.acks >= w.need {
		close(w.done)
		delete(l.waiters, tok)
	}
}

// Prepare returns an event to publish and a wait function to call after
// the publishing transaction committed: it returns once every live replica
// acknowledged having applied the event, or after timeout.
func (l *Listener) Prepare(kind, id string) (Event, func(timeout time.Duration)) {
	ev := Event{Kind: kind, ID: id, token: token()}
	w := &waiter{need: -1, done: make(chan struct{})}
	l.mu.Lock()
	l.waiters[ev.token] = w
	l.mu.Unlock()
	return ev, func(timeout time.Duration) { l.await(ev.token, w, timeout) }
}

func (l *Listener) await(tok string, w *waiter, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	need, err := l.replicas(ctx)
	l.mu.Lock()
	if err != nil {
		need = 1 // at least this replica
	}
	w.need = need
	l.check(tok, w)
	l.mu.Unlock()
	select {
	case <-w.done:
	case <-ctx.Done():
		l.mu.Lock()
		acks := w.acks
		delete(l.waiters, tok)
		l.mu.Unlock()
		l.log.Warn("not every replica acknowledged a cache invalidation in time", "acks", acks, "replicas", need)
	}
}

// replicas counts the live listeners on this database.
func (l *Listener) replicas(ctx context.Context) (int, error) {
	var n int
	err := l.pool.QueryRow(ctx,
		`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`, appName).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count replicas: %w", err)
	}
	return n, nil
}

func token() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Fresh reports whether invalidations arrive (the caches are exact).
func (l *Listener) Fresh() bool { return l.stale.Fresh() }
