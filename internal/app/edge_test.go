package app

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// unguarded serves the gateway without the test's spec guard, which reads
// every request body before the gateway sees it.
func unguarded(t *testing.T, e *env) string {
	srv := httptest.NewServer(e.app.Handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

// rawRequest opens a connection to srv, sends a POST's headers declaring
// length bytes of body, then the first sent bytes of it, and leaves the rest
// unsent. It returns the connection and a reader for the response.
func rawRequest(t *testing.T, srv, key string, length, sent int) (net.Conn, *bufio.Reader) {
	t.Helper()
	u, err := url.Parse(srv)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	auth := ""
	if key != "" {
		auth = "Authorization: Bearer " + key + "\r\n"
	}
	_, err = fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		u.Host, auth, length, strings.Repeat(" ", sent))
	require.NoError(t, err)
	return conn, bufio.NewReader(conn)
}

// TestUnauthenticatedBodiesAreNeverRead: a request without a valid key is
// refused on its headers, at once, and its connection closed, while its 8 MB
// body has not even been sent.
func TestUnauthenticatedBodiesAreNeverRead(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	srv := unguarded(t, e)
	for name, key := range map[string]string{"no key": "", "unknown key": "pk_unknown_0123456789abcdef"} {
		t.Run(name, func(t *testing.T) {
			conn, rd := rawRequest(t, srv, key, 8<<20, 0)
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(2*time.Second)))
			resp, err := http.ReadResponse(rd, nil)
			require.NoError(t, err, "answered before the body was sent")
			defer resp.Body.Close()
			require.Equal(t, 401, resp.StatusCode)
			require.True(t, resp.Close, "the connection is closed, not drained")
		})
	}
}

// TestBufferedBodiesAreBounded: while bodies the gateway holds reach the
// process-wide bound, further requests are refused with a typed 503 rather
// than growing memory; a body trickled too slowly is cut at its deadline.
func TestBufferedBodiesAreBounded(t *testing.T) {
	t.Parallel()
	e := setupWith(t, nil, func(o *Options) { o.MaxBufferedBytes, o.BodyReadTimeout = 1<<20, 500*time.Millisecond })
	// One authenticated request declares 900 KB and sends only part of it.
	conn, rd := rawRequest(t, unguarded(t, e), e.key, 900<<10, 1000)
	time.Sleep(100 * time.Millisecond) // its reservation is in place
	status, doc := call(t, e.srv.URL, "POST", "/v1/chat/completions", e.key,
		`{"model":"mock/echo","messages":[{"role":"user","content":"`+strings.Repeat("x", 200<<10)+`"}]}`)
	require.Equal(t, 503, status)
	requireEnvelope(t, doc, 503, "unavailable")

	// The trickled body misses its deadline: 400, and its bytes are free again.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(3*time.Second)))
	resp, err := http.ReadResponse(rd, nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, 400, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), "must arrive within")
	status, _ = call(t, e.srv.URL, "POST", "/v1/chat/completions", e.key, chatBody)
	require.Equal(t, 200, status, "the bound is released")
}

// TestMetricsCanBeProtected: with a metrics token, /metrics answers only
// to it; without one it stays open (the default).
func TestMetricsCanBeProtected(t *testing.T) {
	t.Parallel()
	e := setupWith(t, nil, func(o *Options) { o.MetricsToken = "metrics-secret-token" })
	for key, want := range map[string]int{"": 401, "wrong-token": 401, "metrics-secret-token": 200} {
		status, _, _ := send(t, e.srv.URL, "GET", "/metrics", key, "")
		require.Equal(t, want, status, "token %q", key)
	}
	open := setup(t, nil)
	status, _, _ := send(t, open.srv.URL, "GET", "/metrics", "", "")
	require.Equal(t, 200, status)
}

// TestTryItOutExampleWorks: the chat request example the served spec gives
// Swagger UI's "Try it out" is answered, not refused (it once asked for
// models ["string"]).
func TestTryItOutExampleWorks(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	status, doc := call(t, e.srv.URL, "GET", "/openapi.json", "", "")
	require.Equal(t, 200, status)
	post := doc["paths"].(map[string]any)["/v1/chat/completions"].(map[string]any)["post"].(map[string]any)
	example := post["requestBody"].(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any)["example"]
	require.NotNil(t, example)
	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", e.key, toJSON(t, example))
	require.Equal(t, 200, status, "%v", doc)
	require.Equal(t, "mock", doc["provider"])
}
