package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// leakyKey and leakyPrompt are what a careless upstream quotes back in its
// error message; neither may reach the client or storage.
const (
	leakyKey    = "sk-live-abcdefghijklmnopqrstuvwxyz123456"
	leakyPrompt = "tell me the secret plan for the merger please do not leak"
)

// answer is a fake upstream's scripted reply.
func answer(status int, contentType, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

// cutOff answers 200 with head (nothing when empty), then drops the
// connection mid-answer, as a crashing upstream or a broken proxy does.
func cutOff(contentType, head string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // the request is fully sent: the failure is the answer's
		if head != "" {
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, head)
			w.(http.Flusher).Flush()
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
}

// deadURL is an address where nothing listens any more.
func deadURL(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.NotFoundHandler())
	s.Close()
	return s.URL
}

const firstChunk = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"leaky","choices":[{"index":0,"delta":{"content":"half "}}]}` + "\n\n"

// TestUpstreamErrorsSayWhatHappened: an upstream failure reaches the client
// as a message that is true to what happened (not reached, cut off,
// malformed, whose credential was refused), says who must act, and quotes
// nothing shaped like a secret or a prompt.
func TestUpstreamErrorsSayWhatHappened(t *testing.T) {
	t.Parallel()
	quoting := `{"error":{"message":"Invalid key ` + leakyKey + ` for prompt: '` + leakyPrompt + `'"}}`
	const rejected = "Provider flaky rejected the request; fix it before sending it again. Its reason: "
	cases := []struct {
		name     string
		upstream http.Handler // the operator's flaky upstream
		byok     string       // when set: a workspace credential for flaky with this base URL
		byokUp   http.Handler // when set: the workspace credential's upstream
		stream   bool
		inBand   bool // the failure comes after the first chunk
		status   int
		typ      string
		says     []string
		never    []string
		prefix   string // the fixed text before the upstream's quoted reason
	}{
		{name: "a 400 quoting a key and the prompt", upstream: answer(400, "application/json", quoting),
			status: 400, typ: "invalid_request", prefix: rejected,
			says: []string{"Invalid key", "[redacted]"}, never: []string{leakyKey, "abcdefghijklmnop", "secret plan", "merger"}},
		{name: "a 400 quoting a key and the prompt, streaming", upstream: answer(400, "application/json", quoting), stream: true,
			status: 400, typ: "invalid_request", prefix: rejected,
			never: []string{leakyKey, "secret plan", "merger"}},
		{name: "a 400 with a long reason is capped", upstream: answer(400, "application/json",
			`{"error":{"message":"`+strings.Repeat("too hot, ", 100)+`"}}`),
			status: 400, typ: "invalid_request", prefix: rejected, says: []string{"too hot", "…"}},
		{name: "the workspace's own credential is rejected", byokUp: answer(401, "application/json",
			`{"error":{"message":"Incorrect API key provided: sk-byok-********cdef","code":"invalid_api_key"}}`),
			status: 502, typ: "provider_error",
			says: []string{"workspace's own credential", "a workspace admin"}, never: []string{"operator", "sk-byok"}},
		{name: "the operator's credential is rejected", upstream: answer(403, "application/json", `{}`),
			status: 502, typ: "provider_error", says: []string{"operator's credential", "an operator must"}, never: []string{"workspace"}},
		{name: "nothing listens", byok: "dead",
			status: 502, typ: "provider_unavailable", says: []string{"could not be reached"}},
		{name: "the connection closes before any answer", upstream: cutOff("", ""),
			status: 502, typ: "provider_unavailable", says: []string{"closed the connection"}, never: []string{"could not be reached"}},
		{name: "a body cut off after the headers", upstream: cutOff("application/json",
			`{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"half an ans`),
			status: 502, typ: "provider_unavailable", says: []string{"cut off its answer"}, never: []string{"could not be reached", "half an ans"}},
		{name: "a stream cut off before its first chunk", upstream: cutOff("text/event-stream", `data: {"id":"c1","choi`), stream: true,
			status: 502, typ: "provider_unavailable", says: []string{"cut off its answer"}, never: []string{"could not be reached"}},
		{name: "a stream cut off after its first chunk", upstream: cutOff("text/event-stream", firstChunk+`data: {"id":"c1","choi`),
			stream: true, inBand: true,
			status: 502, typ: "provider_unavailable", says: []string{"cut off its answer"}, never: []string{"could not be reached"}},
		{name: "a malformed body", upstream: answer(200, "application/json", `<html><body>oops</body></html>`),
			status: 502, typ: "provider_error", says: []string{"malformed answer"}, never: []string{"could not be reached", "oops"}},
		{name: "a malformed stream", upstream: answer(200, "text/event-stream", "data: <html>oops</html>\n\n"), stream: true,
			status: 502, typ: "provider_error", says: []string{"malformed answer"}, never: []string{"could not be reached", "oops"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, map[string]http.Handler{"flaky": tc.upstream})
			if tc.byokUp != nil {
				tc.byok = newServer(t, tc.byokUp)
			} else if tc.byok == "dead" {
				tc.byok = deadURL(t)
			}
			if tc.byok != "" {
				status, doc := call(t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/credentials", e.key,
					`{"provider":"flaky","api_key":"`+byokSecret+`","base_url":"`+tc.byok+`/v1"}`)
				require.Equal(t, 201, status, "%v", doc)
			}
			status, _, raw := e.postRaw("/v1/chat/completions",
				`{"model":"test/leaky","stream":`+jsonBool(tc.stream)+`,"messages":[{"role":"user","content":"`+leakyPrompt+`"}]}`)
			er := upstreamFailure(t, status, raw, tc.inBand)
			require.EqualValues(t, tc.status, er["code"], "%s", raw)
			require.Equal(t, tc.typ, er["type"], "%s", raw)
			msg := er["message"].(string)
			for _, s := range tc.says {
				require.Contains(t, msg, s)
			}
			for _, s := range append(tc.never, byokSecret) {
				require.NotContains(t, msg, s)
			}
			if tc.prefix != "" {
				require.True(t, strings.HasPrefix(msg, tc.prefix), msg)
				require.LessOrEqual(t, len(msg), len(tc.prefix)+200, "the quoted reason is capped: %s", msg)
			}
			stored := e.storedRows()
			for _, s := range []string{leakyKey, "merger", "oops", "Invalid key", byokSecret} {
				require.NotContains(t, stored, s, "upstream messages are never stored")
			}
		})
	}
}

func jsonBool(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// upstreamFailure returns the error object of a failed request: the
// envelope's, or, for a stream that had started, the in-band error chunk's.
func upstreamFailure(t *testing.T, status int, raw []byte, inBand bool) map[string]any {
	t.Helper()
	if !inBand {
		var doc map[string]any
		require.NoError(t, json.Unmarshal(raw, &doc), "%s", raw)
		return requireEnvelope(t, doc, status, doc["error"].(map[string]any)["type"].(string))
	}
	require.Equal(t, 200, status, "%s", raw)
	for _, line := range bytes.Split(raw, []byte("\n")) {
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok || !bytes.Contains(data, []byte(`"error"`)) {
			continue
		}
		var chunk map[string]any
		require.NoError(t, json.Unmarshal(data, &chunk), "%s", data)
		require.True(t, bytes.HasSuffix(bytes.TrimSpace(raw), []byte("data: [DONE]")), "%s", raw)
		return chunk["error"].(map[string]any)
	}
	require.Fail(t, "no in-band error chunk", "%s", raw)
	return nil
}

// storedRows returns every generation row of the env's workspace as JSON text.
func (e *env) storedRows() string {
	e.t.Helper()
	require.NoError(e.t, e.app.Recorder.Flush(context.Background()))
	var rows string
	err := e.pool.QueryRow(context.Background(),
		`SELECT coalesce(string_agg(row_to_json(g)::text, ' '), '') FROM generations g WHERE workspace_id = $1`, e.ws).Scan(&rows)
	require.NoError(e.t, err)
	require.NotEmpty(e.t, rows, "the failed generation is recorded")
	return rows
}
