package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// lockedBuf is a log destination shared by the server's goroutines and the test.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records parses the JSON log lines written so far.
func (l *lockedBuf) records(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
		out = append(out, rec)
	}
	return out
}

// recoverSetup is a Server with only what the outer middleware uses, serving
// h through that middleware in the order handler (server.go) chains it.
type recoverSetup struct {
	url         string
	client      *http.Client
	reg         *prometheus.Registry
	log, access *lockedBuf
}

func newRecoverSetup(t *testing.T, h http.Handler) recoverSetup {
	t.Helper()
	st := recoverSetup{reg: prometheus.NewRegistry(), log: &lockedBuf{}, access: &lockedBuf{}}
	s := &Server{
		log:     slog.New(slog.NewJSONHandler(st.log, nil)),
		access:  slog.New(slog.NewJSONHandler(st.access, nil)),
		metrics: newHTTPMetrics(st.reg),
	}
	srv := httptest.NewServer(chain(h, s.recoverer, requestIDs, s.accessLog, openRouterPrefix))
	t.Cleanup(srv.Close)
	st.url, st.client = srv.URL, srv.Client()
	return st
}

// counter reads a counter from the registry (0 when it has no such series).
func (st recoverSetup) counter(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := st.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestRecoverer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		handler  http.HandlerFunc
		status   int    // what the client sees
		body     string // what the client reads before the body ends or breaks
		cut      bool   // the body must end in an error, not a clean end
		envelope bool   // the body is the JSON error envelope
	}{
		{
			name: "panic after the body started cuts the connection",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write([]byte("partial"))
				w.(http.Flusher).Flush()
				panic("boom")
			},
			status: http.StatusOK, body: "partial", cut: true,
		},
		{
			name: "panic after a flush sent the header cuts the connection",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.(http.Flusher).Flush()
				panic("boom")
			},
			status: http.StatusOK, cut: true,
		},
		{
			name: "panic before the header is a 500 envelope",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "3") // meant for a response that never went out
				panic("boom")
			},
			status: http.StatusInternalServerError, envelope: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := newRecoverSetup(t, tc.handler)
			req, err := http.NewRequest(http.MethodGet, st.url+"/v1/boom", nil)
			require.NoError(t, err)
			req.Header.Set("X-Request-Id", "req_recover_test")
			resp, err := st.client.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)

			require.Equal(t, tc.status, resp.StatusCode)
			if tc.cut {
				require.ErrorIs(t, err, io.ErrUnexpectedEOF, "the client must see the response broke")
				require.Equal(t, tc.body, string(body), "nothing is appended to a body under way")
			} else {
				require.NoError(t, err)
			}
			if tc.envelope {
				var env struct {
					Error struct {
						Code int    `json:"code"`
						Type string `json:"type"`
					} `json:"error"`
				}
				require.NoError(t, json.Unmarshal(body, &env), "body %q", body)
				require.Equal(t, http.StatusInternalServerError, env.Error.Code)
				require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			}

			require.Equal(t, 1.0, st.counter(t, "perpetuo_http_panics_total", nil))
			require.Equal(t, 1.0, st.counter(t, "perpetuo_http_requests_total",
				map[string]string{"route": "other", "status": strconv.Itoa(tc.status)}), "the request is counted")
			access := st.access.records(t)
			require.Len(t, access, 1, "the request is in the access log")
			require.Equal(t, "req_recover_test", access[0]["request_id"])
			require.EqualValues(t, tc.status, access[0]["status"])

			var panics []map[string]any
			for _, rec := range st.log.records(t) {
				if rec["msg"] == "panic serving request" {
					panics = append(panics, rec)
				}
			}
			require.Len(t, panics, 1)
			require.Equal(t, "ERROR", panics[0]["level"])
			require.Equal(t, "req_recover_test", panics[0]["request_id"])
			require.Contains(t, panics[0]["stack"], "TestRecoverer", "the stack points at the panicking handler")
		})
	}
}

func TestRecovererLetsAbortHandlerThrough(t *testing.T) {
	t.Parallel()
	st := newRecoverSetup(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(http.ErrAbortHandler) // a deliberate hang-up, not a bug
	}))
	resp, err := st.client.Get(st.url + "/v1/abort")
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err, "the connection is cut without a response")
	require.Zero(t, st.counter(t, "perpetuo_http_panics_total", nil))
	require.Empty(t, st.log.records(t))
}
