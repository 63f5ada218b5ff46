package mockupstream_test

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
	"github.com/perpetuo/perpetuo/internal/sse"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// handlerDone wraps h and closes the returned channel each time a request
// finishes being handled, panics included; it serves one request.
func handlerDone(h http.Handler) (http.Handler, <-chan struct{}) {
	done := make(chan struct{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		h.ServeHTTP(w, r)
	}), done
}

// start serves cfg on a test server closed at cleanup.
func start(t *testing.T, cfg mockupstream.Config) *httptest.Server {
	t.Helper()
	return startHandler(t, mockupstream.New(cfg))
}

// startHandler serves h on a test server closed at cleanup.
func startHandler(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// flagSet is an empty flag set that reports errors instead of exiting.
func flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("mock-upstream", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// post sends a chat completion request with body and extra headers.
func post(t *testing.T, ctx context.Context, srv *httptest.Server, body string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// chatBody is a request with one user message.
func chatBody(model, content string, extra string) string {
	text, _ := json.Marshal(content)
	body := `{"model":"` + model + `","messages":[{"role":"user","content":` + string(text) + `}]`
	if extra != "" {
		body += "," + extra
	}
	return body + "}"
}

// decode reads a JSON response body into a generic map.
func decode(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var v map[string]any
	require.NoError(t, json.Unmarshal(body, &v), "body: %s", body)
	return v
}

// readStream reads every event of a streamed response, returning the data
// of each chunk, whether [DONE] arrived, and the error that ended reading
// (nil at a clean end of stream).
func readStream(t *testing.T, resp *http.Response) (chunks []map[string]any, done bool, err error) {
	t.Helper()
	r := sse.NewReader(resp.Body)
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return chunks, done, nil
		}
		if err != nil {
			return chunks, done, err
		}
		if ev.IsDone() {
			done = true
			continue
		}
		var c map[string]any
		require.NoError(t, json.Unmarshal(ev.Data, &c), "chunk: %s", ev.Data)
		chunks = append(chunks, c)
	}
}

// contentOf returns the delta content of a chunk's first choice.
func contentOf(t *testing.T, chunk map[string]any) string {
	t.Helper()
	choices := chunk["choices"].([]any)
	require.Len(t, choices, 1)
	delta := choices[0].(map[string]any)["delta"].(map[string]any)
	s, _ := delta["content"].(string)
	return s
}
