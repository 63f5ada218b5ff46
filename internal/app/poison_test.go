package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// poisonUpstream answers like OpenAI, with an id holding a NUL when the
// request's user asks for it.
func poisonUpstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body struct{ User string }
		_ = json.Unmarshal(raw, &body)
		id := "chatcmpl-ok"
		if body.User == "poison-upstream" {
			id = `chatcmpl-\u0000evil`
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"%s","object":"chat.completion","created":1,"model":"echo",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":3,"completion_tokens":1}}`, id)
	})
}

// TestPoisonedRequestsNeverStopRecording: values PostgreSQL refuses, from
// the body, the headers and the upstream, are stored sanitised, and the
// records of another workspace's requests that follow are all written and
// readable from another replica (as after a restart).
func TestPoisonedRequestsNeverStopRecording(t *testing.T) {
	t.Parallel()
	e := setup(t, map[string]http.Handler{"mock": poisonUpstream()})
	status, doc := call(t, e.srv.URL, "POST", "/v1/workspaces", e.key, `{"name":"victim","use_operator_credentials":true,"owner":{"name":"v"}}`)
	require.Equal(t, http.StatusCreated, status, "%v", doc)
	victim := data(doc)["key"].(map[string]any)["key"].(string)

	poisons := []struct {
		name, user, session, title string
	}{
		{"NUL in user", "alice\\u0000", "", ""},
		{"NUL in session_id", "", "s\\u0000", ""},
		{"raw invalid byte in X-Title", "", "", "App \xff"},
		{"character cut at byte 128 in X-Title", "", "", strings.Repeat("a", 127) + "€"},
		{"NUL in the upstream id", "poison-upstream", "", ""},
	}
	var ids []string
	for _, p := range poisons {
		body := `{"model":"mock/echo","max_tokens":10,"messages":[{"role":"user","content":"hi"}]`
		if p.user != "" {
			body += `,"user":"` + p.user + `"`
		}
		if p.session != "" {
			body += `,"session_id":"` + p.session + `"`
		}
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/chat/completions", strings.NewReader(body+"}"))
		req.Header.Set("Authorization", "Bearer "+e.key)
		req.Header.Set("Content-Type", "application/json")
		if p.title != "" {
			req.Header.Set("X-Title", p.title)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, p.name)
		ids = append(ids, resp.Header.Get("X-Generation-Id"))
	}
	var victims []string
	for range 5 {
		status, _, raw := send(t, e.srv.URL, "POST", "/v1/chat/completions", victim, chatBody)
		require.Equal(t, 200, status, "%s", raw)
		var d map[string]any
		require.NoError(t, json.Unmarshal(raw, &d))
		victims = append(victims, d["id"].(string))
	}
	require.NoError(t, e.app.Recorder.Flush(context.Background()))
	require.Zero(t, e.app.Recorder.Pending())

	other := e.replica()
	for _, id := range victims {
		status, doc := call(t, other.URL, "GET", "/v1/generation?id="+id, victim, "")
		require.Equal(t, 200, status, "%v", doc)
	}
	for i, id := range ids {
		status, doc := call(t, other.URL, "GET", "/v1/generation?id="+id, e.key, "")
		require.Equal(t, 200, status, "%s: %v", poisons[i].name, doc)
	}
	var bad int
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*) FROM generations
		WHERE position(chr(65533) in coalesce(app_title, '')) > 0 OR length(app_title) > 128`).Scan(&bad))
	require.Equal(t, 1, bad, "the invalid byte became U+FFFD; the cut character was dropped, not split")
}
