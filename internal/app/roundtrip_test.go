package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

type criticalKey struct{}

// queryCounter counts the queries made on a request's behalf: those whose
// context carries the request's marker (background work, such as record
// flushes and settlement, runs on contexts of its own).
type queryCounter struct {
	mu  sync.Mutex
	sql []string
}

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if ctx.Value(criticalKey{}) != nil {
		q.mu.Lock()
		q.sql = append(q.sql, d.SQL)
		q.mu.Unlock()
	}
	return ctx
}

func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (q *queryCounter) take() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.sql
	q.sql = nil
	return out
}

// TestCriticalPathRoundTrips: in steady state no request waits on the
// database before its answer, with or without a limit, JSON or streaming:
// a limited key reserves against its replica's budget lease in memory.
// (The first request of a budget takes the lease: one round trip.)
func TestCriticalPathRoundTrips(t *testing.T) {
	t.Parallel()
	counter := &queryCounter{}
	e := setupWith(t, nil, func(o *Options) {
		cfg := o.Pool.Config().Copy()
		cfg.ConnConfig.Tracer = counter
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		o.Pool = pool
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.srv.Config.Handler.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), criticalKey{}, true)))
	}))
	t.Cleanup(srv.Close)
	_, limited := e.newKey(`{"name":"limited","limit":1}`)
	_, free := e.newKey(`{"name":"free"}`)
	stream := `{"model":"mock/echo","stream":true,"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	for _, tc := range []struct {
		name, key, body string
		want            int
	}{
		{"no limit, JSON", free, chatBody, 0},
		{"no limit, stream", free, stream, 0},
		{"limit, JSON", limited, chatBody, 0},
		{"limit, stream", limited, stream, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, _ := send(t, srv.URL, "POST", "/v1/chat/completions", tc.key, tc.body) // warm the caches
			require.Equal(t, 200, status)
			time.Sleep(20 * time.Millisecond)
			counter.take()
			status, _, _ = send(t, srv.URL, "POST", "/v1/chat/completions", tc.key, tc.body)
			require.Equal(t, 200, status)
			got := counter.take()
			require.Len(t, got, tc.want, "queries on the critical path: %q", got)
		})
	}
	// A budget's first request takes the replica's lease: one round trip.
	_, fresh := e.newKey(`{"name":"fresh","limit":1}`)
	status, _, _ := send(t, e.srv.URL, "GET", "/v1/key", fresh, "") // the key is cached, not leased
	require.Equal(t, 200, status)
	counter.take()
	status, _, _ = send(t, srv.URL, "POST", "/v1/chat/completions", fresh, chatBody)
	require.Equal(t, 200, status)
	got := counter.take()
	require.Len(t, got, 1, "queries on the critical path: %q", got)
	require.Contains(t, got[0], "spend_lease_take")
}
