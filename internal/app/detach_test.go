package app

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/sse"
)

// held is an upstream that sends one chunk, then holds the stream until
// released, then ends it.
type held struct {
	release chan struct{}
	once    sync.Once
}

// newHeld returns a held upstream; e.hold releases it when the test ends.
func newHeld() *held { return &held{release: make(chan struct{})} }

// hold releases up when the test ends, before the gateway is closed (which
// waits for the streams up holds).
func (e *env) hold(up *held) { e.t.Cleanup(up.free) }

func (h *held) free() { h.once.Do(func() { close(h.release) }) }

func (h *held) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	_, _ = io.WriteString(w, textEvent("held "))
	_ = rc.Flush()
	select {
	case <-h.release:
	case <-r.Context().Done():
		return
	}
	_, _ = io.WriteString(w, textEvent("done")+stopEvent+"data: [DONE]\n\n")
}

// serverGoroutines counts the gateway's goroutines serving streams: on a
// connection's handler (net/http's conn.serve, with the handler's whole
// stack under it) and relayed off it.
func serverGoroutines() (onHandler, detached int) {
	buf := make([]byte, 16<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		switch {
		case strings.Contains(g, "net/http.(*conn).serve") && strings.Contains(g, "perpetuo/internal/gateway.(*stream).relay"):
			onHandler++
		case strings.Contains(g, "perpetuo/internal/server.(*Server).relayDetached"):
			detached++
		}
	}
	return onHandler, detached
}

// streamContent reads a stream to its end and returns its text.
func streamContent(t *testing.T, body io.Reader) string {
	t.Helper()
	raw, err := io.ReadAll(body)
	require.NoError(t, err)
	var text strings.Builder
	for _, ev := range events(t, raw) {
		text.WriteString(gjson.GetBytes(ev.Data, "choices.0.delta.content").String())
	}
	return text.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestHeldStreamsLeaveTheirHandlers: a stream over HTTP/1.1 whose first
// chunk went out is relayed off its handler (which is what keeps a held
// stream small: no handler stack, no connection buffers), and still ends
// whole, with its record, its access log line covering the whole stream,
// and its connection carrying the client's next requests.
func TestHeldStreamsLeaveTheirHandlers(t *testing.T) { // not parallel: it counts the process's goroutines
	up := newHeld()
	var access bytes.Buffer
	var accessMu sync.Mutex
	e := setupWith(t, map[string]http.Handler{"flaky": up}, func(o *Options) {
		o.AccessLog = slog.New(slog.NewTextHandler(lockedWriter{&accessMu, &access}, nil))
		o.StreamsOnHandlers = -1
	})
	e.hold(up)
	tr := &http.Transport{MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	post := func(ctx context.Context, body string) *http.Response {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+e.key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		return resp
	}
	var conns []string
	traced := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { conns = append(conns, i.Conn.LocalAddr().String()) },
	})

	resp := post(traced, leaky)
	r := bufio.NewReader(resp.Body)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, line, "held")
	var onHandler, detached int
	within(t, 2*time.Second, func() bool { onHandler, detached = serverGoroutines(); return detached == 1 },
		"the held stream is relayed off its handler")
	require.Zero(t, onHandler, "no handler holds the stream")

	up.free()
	rest, err := io.ReadAll(r)
	require.NoError(t, err, "the chunked body ends cleanly")
	require.NoError(t, resp.Body.Close())
	require.Equal(t, "held done", streamContent(t, strings.NewReader(line+string(rest))))
	g := e.waitGeneration(resp.Header.Get("X-Generation-Id"))
	require.False(t, g.Cancelled)
	require.Equal(t, "stop", g.FinishReason)
	within(t, 2*time.Second, func() bool { _, detached = serverGoroutines(); return detached == 0 }, "the relay ends with its stream")

	accessMu.Lock()
	logged := access.String()
	accessMu.Unlock()
	require.Contains(t, logged, "path=/v1/chat/completions status=200")
	require.Contains(t, logged, " bytes="+itoa(len(line)+len(rest))+"\n", "the access log counts the whole stream: %s", logged)

	// The same connection carries the next requests, JSON and stream.
	resp = post(traced, chatBody)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	resp = post(traced, leaky)
	require.Equal(t, "held done", streamContent(t, resp.Body))
	resp.Body.Close()
	require.Len(t, conns, 3)
	require.Equal(t, []string{conns[0], conns[0], conns[0]}, conns, "one keep-alive connection for all three")
}

// TestPipelinedRequestAfterADetachedStream: a request the client sent
// before the stream ended (bytes net/http had read ahead) is served after
// it, on the same connection.
func TestPipelinedRequestAfterADetachedStream(t *testing.T) {
	t.Parallel()
	e := setupWith(t, map[string]http.Handler{"flaky": script{textEvent("one "), 50 * time.Millisecond, textEvent("two"), stopEvent, "data: [DONE]\n\n"}},
		detachAll)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	request := func(body string) string {
		return "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + e.key +
			"\r\nContent-Type: application/json\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body
	}
	_, err = io.WriteString(conn, request(leaky)+request(chatBody))
	require.NoError(t, err)
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	first, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, 200, first.StatusCode)
	require.Equal(t, []string{"chunked"}, first.TransferEncoding)
	require.Equal(t, "one two", streamContent(t, first.Body))
	second, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, 200, second.StatusCode)
	require.Equal(t, "application/json", second.Header.Get("Content-Type"))
	body, err := io.ReadAll(second.Body)
	require.NoError(t, err)
	require.Contains(t, string(body), `"chat.completion"`)
}

// TestShutdownWaitsForDetachedStreamsThenCutsThem: http.Server.Shutdown
// does not know the streams relayed off their handlers; ShutdownStreams
// waits for them within its deadline, then cuts them, and their records
// say the client went away.
func TestShutdownWaitsForDetachedStreamsThenCutsThem(t *testing.T) {
	t.Parallel()
	up := newHeld()
	e := setupWith(t, map[string]http.Handler{"flaky": up}, detachAll)
	e.hold(up)
	resp := e.streamBody(context.Background(), leaky)
	defer resp.Body.Close()
	r := sse.NewReader(resp.Body)
	_, err := r.Next()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	require.ErrorIs(t, e.app.ShutdownStreams(ctx), context.DeadlineExceeded)
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "it waited for the stream first")
	_, err = io.ReadAll(resp.Body)
	require.Error(t, err, "the cut stream does not end like a whole one")
	g := e.waitGeneration(resp.Header.Get("X-Generation-Id"))
	require.True(t, g.Cancelled)
	up.free()
}

// detachAll relays every stream off its handler.
func detachAll(o *Options) { o.StreamsOnHandlers = -1 }

// TestStreamsDetachOnlyBeyondTheHandlersQuota: the first StreamsOnHandlers
// streams stay on their handlers (detaching costs short streams CPU and
// their first chunk latency); the ones beyond detach.
func TestStreamsDetachOnlyBeyondTheHandlersQuota(t *testing.T) { // not parallel: it counts the process's goroutines
	up := newHeld()
	e := setupWith(t, map[string]http.Handler{"flaky": up}, func(o *Options) { o.StreamsOnHandlers = 2 })
	e.hold(up)
	var bodies []io.ReadCloser
	for range 3 {
		resp := e.streamBody(context.Background(), leaky)
		bodies = append(bodies, resp.Body)
		_, err := sse.NewReader(resp.Body).Next()
		require.NoError(t, err)
	}
	var onHandler, detached int
	within(t, 2*time.Second, func() bool { onHandler, detached = serverGoroutines(); return onHandler == 2 && detached == 1 },
		"two streams on their handlers, one off")
	up.free()
	for _, b := range bodies {
		_, _ = io.Copy(io.Discard, b)
		b.Close()
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
