package app

import (
	"context"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// cutter is a loopback TCP proxy to PostgreSQL that a test can cut (every
// connection closed, new ones refused) and restore on the same port: a
// database outage as the gateway sees it, without touching the cluster
// other tests share.
type cutter struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newCutter(t *testing.T, target string) *cutter {
	c := &cutter{t: t, target: target, conns: map[net.Conn]bool{}}
	c.listen("127.0.0.1:0")
	c.addr = c.ln.Addr().String()
	t.Cleanup(func() { c.cut(); c.wg.Wait() })
	return c
}

func (c *cutter) listen(addr string) {
	ln, err := net.Listen("tcp", addr)
	require.NoError(c.t, err)
	c.mu.Lock()
	c.ln = ln
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", c.target)
			if err != nil {
				in.Close()
				continue
			}
			c.mu.Lock()
			c.conns[in], c.conns[out] = true, true
			c.mu.Unlock()
			c.wg.Add(2)
			go func() { defer c.wg.Done(); _, _ = io.Copy(out, in); out.Close() }()
			go func() { defer c.wg.Done(); _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
}

// cut closes the listener and every proxied connection.
func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ln != nil {
		c.ln.Close()
		c.ln = nil
	}
	for conn := range c.conns {
		conn.Close()
	}
	clear(c.conns)
}

func (c *cutter) restore() { c.listen(c.addr) }

// TestDatabaseOutage: with PostgreSQL unreachable, keys without a limit keep
// working from cache within the staleness window (and are refused with a
// typed 503 after it), a key with a limit keeps serving from the budget
// lease its replica holds (already reserved in the ledger, so the limit
// still holds), a limited key that would need a new lease is refused with
// 503 budget_unavailable, /readyz says so; when the database returns
// everything recovers by itself and no record of a served request is lost.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	var proxy *cutter
	const window = 3 * time.Second
	e := setupWith(t, nil, func(o *Options) {
		cfg := o.Pool.Config().Copy()
		proxy = newCutter(t, net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))))
		host, port, _ := net.SplitHostPort(proxy.addr)
		p, _ := strconv.Atoi(port)
		cfg.ConnConfig.Host, cfg.ConnConfig.Port = host, uint16(p)
		cfg.ConnConfig.ConnectTimeout = time.Second
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		o.Pool, o.StaleWindow = pool, window
	})
	_, limited := e.newKey(`{"name":"limited","limit":1}`)
	_, cold := e.newKey(`{"name":"cold","limit":1}`)
	_, free := e.newKey(`{"name":"free"}`)
	served := 0
	ask := func(key string) (int, map[string]any) {
		status, doc := call(t, e.srv.URL, "POST", "/v1/chat/completions", key, chatBody)
		if status == 200 {
			served++
		}
		return status, doc
	}
	for _, k := range []string{limited, free} { // warm the caches (and the limited key's lease)
		status, _ := ask(k)
		require.Equal(t, 200, status)
	}
	status, doc := call(t, e.srv.URL, "GET", "/v1/key", cold, "") // the cold key is known, but has no lease
	require.Equal(t, 200, status, "%v", doc)

	proxy.cut()
	began := time.Now()
	require.Eventually(t, func() bool { return !e.app.Listener.Fresh() }, 5*time.Second, 10*time.Millisecond,
		"the listener notices the outage")
	// Under load: several clients at once, with and without a limit.
	var mu sync.Mutex
	statuses := map[string][]int{}
	var wg sync.WaitGroup
	for range 4 {
		for name, k := range map[string]string{"free": free, "limited": limited, "cold": cold} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 5 {
					status, doc := call(t, e.srv.URL, "POST", "/v1/chat/completions", k, chatBody)
					mu.Lock()
					statuses[name] = append(statuses[name], status)
					if status == 200 {
						served++
					} else if status == 503 && name == "cold" {
						er := doc["error"].(map[string]any)
						statuses["cold-type:"+er["type"].(string)] = append(statuses["cold-type:"+er["type"].(string)], status)
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	require.Equal(t, slices.Repeat([]int{200}, 20), statuses["free"], "keys without a limit keep working")
	require.Equal(t, slices.Repeat([]int{200}, 20), statuses["limited"], "a limited key serves from its replica's lease")
	require.Equal(t, slices.Repeat([]int{503}, 20), statuses["cold"], "a limited key that needs the ledger fails closed")
	require.Len(t, statuses["cold-type:budget_unavailable"], 20)
	_, doc0 := ask(cold)
	require.Contains(t, requireEnvelope(t, doc0, 503, "budget_unavailable")["message"], "budget store is unavailable")
	status, doc = call(t, e.srv.URL, "GET", "/readyz", "", "")
	require.Equal(t, 503, status)
	requireEnvelope(t, doc, 503, "unavailable")
	require.Less(t, time.Since(began), window, "the checks above ran inside the window")

	time.Sleep(window - time.Since(began) + 100*time.Millisecond)
	status, doc = ask(free)
	require.Equal(t, 503, status, "past the staleness window a key that cannot be checked is refused")
	requireEnvelope(t, doc, 503, "unavailable")

	proxy.restore()
	require.Eventually(t, func() bool {
		s1, _ := call(t, e.srv.URL, "POST", "/v1/chat/completions", cold, chatBody)
		s2, _ := call(t, e.srv.URL, "GET", "/readyz", "", "")
		if s1 == 200 {
			served++
		}
		return s1 == 200 && s2 == 200
	}, 15*time.Second, 100*time.Millisecond, "everything recovers by itself")
	require.Eventually(t, func() bool { return e.app.Recorder.Pending() == 0 }, 10*time.Second, 20*time.Millisecond)
	var n int
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*) FROM generations WHERE status = 200`).Scan(&n))
	require.Equal(t, served, n, "every served request has its record")
}
