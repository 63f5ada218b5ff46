package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Handler applies an invalidation to a cache. It must be fast: it runs on
// the listener's goroutine.
type Handler func(ev Event)

// Listener receives invalidations for this replica.
type Listener struct {
	pool     *pgxpool.Pool
	log      *slog.Logger
	handlers []Handler

	mu      sync.Mutex
	waiters map[string]chan struct{}
	ready   chan struct{} // closed once LISTEN is in place
	once    sync.Once
}

// NewListener returns a Listener over pool; call Run to start it.
func NewListener(pool *pgxpool.Pool, log *slog.Logger, handlers ...Handler) *Listener {
	return &Listener{pool: pool, log: log, handlers: handlers, waiters: map[string]chan struct{}{}, ready: make(chan struct{})}
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
		l.log.Warn("invalidation listener lost its connection; caches cleared, reconnecting", "err", err)
		l.dispatch(Event{Kind: All})
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (l *Listener) listen(ctx context.Context) error {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Anything changed while we were not listening is unknown: start clean.
	l.dispatch(Event{Kind: All})
	l.once.Do(func() { close(l.ready) })
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			conn.Conn().Close(context.Background()) // never hand a mid-wait connection back to the pool
			return fmt.Errorf("wait: %w", err)
		}
		if ev, ok := parse(n.Payload); ok {
			l.dispatch(ev)
		}
	}
}

func (l *Listener) dispatch(ev Event) {
	for _, h := range l.handlers {
		h(ev)
	}
	if ev.token == "" {
		return
	}
	l.mu.Lock()
	ch, ok := l.waiters[ev.token]
	delete(l.waiters, ev.token)
	l.mu.Unlock()
	if ok {
		close(ch)
	}
}

// Prepare returns an event to publish and a wait function that returns once
// this listener has received it back from PostgreSQL (or after timeout).
// PostgreSQL delivers a notification to every listener at commit, so a
// change whose echo came back has reached every replica's connection.
func (l *Listener) Prepare(kind, id string) (Event, func(timeout time.Duration)) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	ev := Event{Kind: kind, ID: id, token: hex.EncodeToString(b[:])}
	ch := make(chan struct{})
	l.mu.Lock()
	l.waiters[ev.token] = ch
	l.mu.Unlock()
	return ev, func(timeout time.Duration) {
		select {
		case <-ch:
		case <-time.After(timeout):
			l.mu.Lock()
			delete(l.waiters, ev.token)
			l.mu.Unlock()
		}
	}
}
