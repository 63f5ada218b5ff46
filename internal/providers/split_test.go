package providers

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestABurstToAnHTTP2HostDialsFewConnections: a burst of requests to an
// HTTP/2 host that overflows its connections' streams opens about as many
// connections as the streams need, not one per request (which is what
// net/http's transport alone does): once the host answered over HTTP/2, and
// also when the burst is the first the host gets.
func TestABurstToAnHTTP2HostDialsFewConnections(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		learned bool
	}{{"host learnt", true}, {"host never called", false}} {
		t.Run(tc.name, func(t *testing.T) { t.Parallel(); burstToHTTP2(t, tc.learned) })
	}
}

// burstToHTTP2 sends the burst to a host first called just before
// (learned) or not at all.
func burstToHTTP2(t *testing.T, learned bool) {
	// perConn is at least what a client assumes before the server's
	// SETTINGS arrive (100), or the first streams of each connection would
	// be refused and retried.
	const burst, perConn = 600, 100
	release := make(chan struct{})
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_ = http.NewResponseController(w).Flush()
		if r.URL.Path == "/hold" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	srv.EnableHTTP2 = true
	srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: perConn}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	c := NewHTTPClient()
	BaseTransport(c).TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	defer c.CloseIdleConnections()

	get := func(path string) *http.Response {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+path, nil)
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err)
		return resp
	}
	if learned {
		first := get("/")
		_, _ = io.Copy(io.Discard, first.Body)
		first.Body.Close()
		require.Equal(t, 2, first.ProtoMajor)
	}

	var wg sync.WaitGroup
	bodies := make(chan io.ReadCloser, burst)
	for range burst {
		wg.Go(func() {
			resp := get("/hold")
			require.Equal(t, 2, resp.ProtoMajor)
			bodies <- resp.Body
		})
	}
	wg.Wait() // every stream is open
	opened := conns.Load()
	t.Logf("%d connections for %d streams of %d per connection", opened, burst, perConn)
	close(release)
	close(bodies)
	for b := range bodies {
		_, _ = io.Copy(io.Discard, b)
		b.Close()
	}
	require.GreaterOrEqual(t, opened, int64(burst/perConn))
	require.LessOrEqual(t, opened, int64(burst/perConn+3), "about one dial per connection the streams need, not one per request")
}

// TestAHostThatStopsOfferingHTTP2IsCalledOverHTTP1: a host learnt as
// HTTP/2 that comes back without it (same address, HTTP/1.1 only) is
// called over HTTP/1.1, without a failed request.
func TestAHostThatStopsOfferingHTTP2IsCalledOverHTTP1(t *testing.T) {
	t.Parallel()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	h2 := httptest.NewUnstartedServer(ok)
	h2.EnableHTTP2 = true
	h2.StartTLS()
	c := NewHTTPClient()
	BaseTransport(c).TLSClientConfig = h2.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	defer c.CloseIdleConnections()
	get := func(url string) *http.Response {
		resp, err := c.Get(url)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	url := h2.URL
	require.Equal(t, 2, get(url).ProtoMajor)
	require.Equal(t, 2, get(url).ProtoMajor)

	addr := h2.Listener.Addr().String()
	h2.Close()
	c.CloseIdleConnections()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	h1 := httptest.NewUnstartedServer(ok) // the same test certificate, HTTP/1.1 only
	h1.Listener.Close()
	h1.Listener = ln
	h1.StartTLS()
	defer h1.Close()
	require.Equal(t, 1, get(url).ProtoMajor)
	require.Equal(t, 1, get(url).ProtoMajor)
}

// TestHTTP2ConnectionsOfTheGuardedClientAreGuarded: the HTTP/2 transport
// dials through the guarded client's dialer too.
func TestHTTP2ConnectionsOfTheGuardedClientAreGuarded(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	var dials atomic.Int64
	var d net.Dialer
	g := NewGuardedClient(NewHTTPClient(), func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return d.DialContext(ctx, network, addr)
	})
	BaseTransport(g).TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	for i := range 3 {
		resp, err := g.Get(srv.URL)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 2, resp.ProtoMajor)
		g.CloseIdleConnections() // the next request dials again
		require.EqualValues(t, i+1, dials.Load(), "every connection is dialed through the guard")
	}
	_, learnt := g.Transport.(*protoSplit).hosts.Load(srv.Listener.Addr().String())
	require.True(t, learnt, "the later requests went through the HTTP/2 transport")
}

// TestFirstContactWithoutHTTP2: the requests that wait for a host's first
// connection go on over HTTP/1.1 when the host offers only that, and fail
// (instead of waiting for each other) when it cannot be reached.
func TestFirstContactWithoutHTTP2(t *testing.T) {
	t.Parallel()
	h1 := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer h1.Close()
	gone := httptest.NewTLSServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()
	c := NewHTTPClient()
	BaseTransport(c).TLSClientConfig = h1.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	defer c.CloseIdleConnections()

	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			resp, err := c.Get(h1.URL)
			if !assert.NoError(t, err) {
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			assert.Equal(t, 1, resp.ProtoMajor)
		})
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, goneURL, nil)
			_, err := c.Do(req)
			assert.Error(t, err)
			assert.NoError(t, ctx.Err(), "a request to a host that cannot be reached waited for the others")
		})
	}
	wg.Wait()
	_, learnt := c.Transport.(*protoSplit).h1only.Load(h1.Listener.Addr().String())
	require.True(t, learnt)
}
