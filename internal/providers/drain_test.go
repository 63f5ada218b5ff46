package providers

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
)

// TestAFinishedStreamKeepsItsConnection: streams one after another reuse
// one HTTP/1.1 connection even when the upstream's last chunk (the chunked
// body's terminator) comes after its end marker has been read. Closing the
// body before that chunk closes the connection, and every stream then dials
// the upstream anew.
func TestAFinishedStreamKeepsItsConnection(t *testing.T) {
	t.Parallel()
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			fake := f.fake(mockupstream.Config{})
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fake.ServeHTTP(w, r)
				// The end marker went out flushed; the terminator follows
				// once the handler returns.
				time.Sleep(5 * time.Millisecond)
			}))
			var conns atomic.Int64
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			t.Cleanup(srv.Close)
			a := f.adapter(NewHTTPClient())
			call := withBody(Call{Provider: "p", BaseURL: srv.URL + f.path(), UpstreamModel: "mock-model", MaxOutput: 8192, Compat: f.compat},
				`{"messages":[{"role":"user","content":"a b"}]}`)
			for range 4 {
				st, err := a.Stream(context.Background(), call)
				require.NoError(t, err)
				msg, _, _, _, err := streamed(t, st)
				require.NoError(t, err)
				require.Equal(t, "a b", msg["content"])
			}
			require.Equal(t, int64(1), conns.Load(), "each stream dialled its own connection")
		})
	}
}

// TestClosingAFinishedStreamDoesNotWaitForTheUpstream: an upstream that
// keeps a stream open after its [DONE] holds Close only briefly; the
// connection is then given up.
func TestClosingAFinishedStreamDoesNotWaitForTheUpstream(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n")
		w.(http.Flusher).Flush()
		select { // the stream never ends
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	st, err := NewOpenAI(NewHTTPClient(), nil).Stream(context.Background(),
		Call{Provider: "p", BaseURL: srv.URL + "/v1", UpstreamModel: "m", Body: []byte(`{"messages":[]}`)})
	require.NoError(t, err)
	_, err = st.Next()
	require.NoError(t, err)
	_, err = st.Next()
	require.ErrorIs(t, err, io.EOF)
	closed := make(chan error, 1)
	go func() { closed <- st.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for an upstream that never ends its stream")
	}
}
