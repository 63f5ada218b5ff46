package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// streamOut starts a server whose one handler streams through an
// sseWriter with the given idle limit, on net/http's writer or detached,
// calling write(out) until it returns; it returns the client's connection,
// with the request sent, and what write returned.
func streamOut(t *testing.T, idle time.Duration, detached bool, write func(*sseWriter) error) (net.Conn, <-chan error) {
	t.Helper()
	result := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := &sseWriter{w: w, rc: http.NewResponseController(w), idle: idle}
		out.Open("gen-test", false)
		if detached {
			conn, _, err := out.detach()
			if err != nil {
				result <- err
				return
			}
			defer conn.Close()
		}
		result <- write(out)
	}))
	t.Cleanup(srv.Close)
	client, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	_, err = io.WriteString(client, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	return client, result
}

// eachWriter runs f on net/http's response writer and on a detached
// connection.
func eachWriter(t *testing.T, f func(t *testing.T, detached bool)) {
	for _, detached := range []bool{false, true} {
		name := "on the handler"
		if detached {
			name = "detached"
		}
		t.Run(name, func(t *testing.T) { t.Parallel(); f(t, detached) })
	}
}

// TestAStreamToAClientThatStopsReadingIsCut: once the client stops
// reading, the next write that cannot go out fails between 7/8 of the idle
// limit and the limit after the last one that did (plus the machine's
// scheduling), so a stalled client holds a stream no longer than that.
func TestAStreamToAClientThatStopsReadingIsCut(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	eachWriter(t, func(t *testing.T, detached bool) {
		chunk := []byte(`{"x":"` + strings.Repeat("y", 32<<10) + `"}`)
		var lastOK time.Time
		_, result := streamOut(t, idle, detached, func(out *sseWriter) error {
			for {
				if err := out.WriteChunk(chunk); err != nil {
					return err
				}
				if err := out.Flush(); err != nil {
					return err
				}
				lastOK = time.Now()
			}
		}) // the client never reads
		select {
		case err := <-result:
			var ne net.Error
			require.ErrorAs(t, err, &ne)
			require.True(t, ne.Timeout(), "%v", err)
			stalled := time.Since(lastOK)
			require.GreaterOrEqual(t, stalled, idle-idle/8, "cut before the idle limit")
			require.Less(t, stalled, 10*idle, "held far beyond the idle limit")
		case <-time.After(30 * idle):
			t.Fatal("a client that stopped reading held the stream")
		}
	})
}

// TestAStreamToAReadingClientOutlivesTheIdleLimit: a client that keeps
// reading is never cut, however long the stream lasts: the deadline moves
// with the writes.
func TestAStreamToAReadingClientOutlivesTheIdleLimit(t *testing.T) {
	t.Parallel()
	const idle = 200 * time.Millisecond
	eachWriter(t, func(t *testing.T, detached bool) {
		client, result := streamOut(t, idle, detached, func(out *sseWriter) error {
			for end := time.Now().Add(4 * idle); time.Now().Before(end); {
				if err := out.WriteChunk([]byte(`{"x":1}`)); err != nil {
					return err
				}
				if err := out.Flush(); err != nil {
					return err
				}
				time.Sleep(idle / 20)
			}
			return nil
		})
		go func() { _, _ = io.Copy(io.Discard, bufio.NewReader(client)) }()
		select {
		case err := <-result:
			require.NoError(t, err, "a client that reads was cut")
		case <-time.After(30 * idle):
			t.Fatal("the stream never ended")
		}
	})
}
