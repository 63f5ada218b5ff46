package mockupstream_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
)

func TestChatCompletionEcho(t *testing.T) {
	t.Parallel()
	srv := start(t, mockupstream.Config{})
	body := `{"model":"echo","messages":[` +
		`{"role":"system","content":"You are terse."},` +
		`{"role":"user","content":[{"type":"text","text":"hello there"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"general Kenobi"}]}` +
		`],"n":3}`
	resp := post(t, t.Context(), srv, body)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)

	got := decodeBytes(t, raw)
	id, _ := got["id"].(string)
	require.True(t, strings.HasPrefix(id, "chatcmpl-"), id)
	created := int64(got["created"].(float64))
	require.InDelta(t, time.Now().Unix(), created, 5)
	// system: 3 words + 4; user: 4 words + 4. The image is acknowledged
	// (one token).
	want := fmt.Sprintf(`{"id":%q,"object":"chat.completion","created":%d,"model":"echo",
		"choices":[{"index":0,"message":{"role":"assistant","content":"hello there general Kenobi [image url x]","refusal":null},
			"logprobs":null,"finish_reason":"stop"}],
		"usage":{"prompt_tokens":15,"completion_tokens":5,"total_tokens":20,
			"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},
		"system_fingerprint":"fp_mock"}`, id, created)
	require.JSONEq(t, want, string(raw))
}

func TestChatCompletionReply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		body       string
		wantText   string
		wantFinish string
		wantUsage  [3]float64
	}{
		{
			name:       "max_tokens truncates",
			body:       chatBody("echo", "one two three four", `"max_tokens":2`),
			wantText:   "one two",
			wantFinish: "length",
			wantUsage:  [3]float64{8, 2, 10},
		},
		{
			name:       "max_completion_tokens wins",
			body:       chatBody("echo", "one two three four", `"max_tokens":1,"max_completion_tokens":3`),
			wantText:   "one two three",
			wantFinish: "length",
			wantUsage:  [3]float64{8, 3, 11},
		},
		{
			name:       "limit not reached",
			body:       chatBody("echo", "one two", `"max_tokens":2`),
			wantText:   "one two",
			wantFinish: "stop",
			wantUsage:  [3]float64{6, 2, 8},
		},
		{
			name:       "empty message gets the greeting",
			body:       chatBody("echo", "  ", ""),
			wantText:   "Hello from the Perpetuo mock upstream.",
			wantFinish: "stop",
			wantUsage:  [3]float64{4, 6, 10},
		},
		{
			name: "last user message is echoed",
			body: `{"model":"m","messages":[{"role":"user","content":"first"},` +
				`{"role":"assistant","content":null},{"role":"user","content":"second  one"}]}`,
			wantText:   "second one",
			wantFinish: "stop",
			wantUsage:  [3]float64{15, 2, 17},
		},
	}
	srv := start(t, mockupstream.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := post(t, t.Context(), srv, tt.body)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			got := decode(t, resp)
			choice := got["choices"].([]any)[0].(map[string]any)
			require.Equal(t, tt.wantText, choice["message"].(map[string]any)["content"])
			require.Equal(t, tt.wantFinish, choice["finish_reason"])
			u := got["usage"].(map[string]any)
			require.Equal(t, tt.wantUsage, [3]float64{
				u["prompt_tokens"].(float64), u["completion_tokens"].(float64), u["total_tokens"].(float64),
			})
		})
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		body      string
		headers   []string
		wantParam any
		wantCode  any
		wantMsg   string
	}{
		{name: "bad json", body: `{"model":`, wantMsg: "We could not parse the JSON body"},
		{name: "not an object", body: `[]`, wantMsg: "We could not parse the JSON body"},
		{name: "missing messages", body: `{"model":"echo"}`, wantParam: "messages",
			wantCode: "missing_required_parameter", wantMsg: "Missing required parameter: 'messages'."},
		{name: "empty messages", body: `{"model":"echo","messages":[]}`, wantParam: "messages",
			wantCode: "empty_array", wantMsg: "Invalid 'messages': empty array."},
		{name: "missing model", body: `{"messages":[{"role":"user","content":"x"}]}`,
			wantMsg: "you must provide a model parameter"},
		{name: "max_tokens zero", body: chatBody("echo", "x", `"max_tokens":0`), wantParam: "max_tokens",
			wantCode: "integer_below_min_value", wantMsg: "Invalid 'max_tokens'"},
		{name: "content of wrong type", body: `{"model":"echo","messages":[{"role":"user","content":42}]}`,
			wantParam: "messages.[0].content", wantCode: "invalid_type", wantMsg: "Invalid type"},
		{name: "bad fail header", body: chatBody("echo", "x", ""), headers: []string{"X-Mock-Fail", "200"},
			wantMsg: "invalid X-Mock-Fail header"},
		{name: "bad ttft header", body: chatBody("echo", "x", ""), headers: []string{"X-Mock-TTFT", "soon"},
			wantMsg: "invalid X-Mock-TTFT header"},
		{name: "bad mid-stream header", body: chatBody("echo", "x", ""),
			headers: []string{"X-Mock-Mid-Stream-Fail-After", "-1"}, wantMsg: "invalid X-Mock-Mid-Stream-Fail-After"},
	}
	srv := start(t, mockupstream.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := post(t, t.Context(), srv, tt.body, tt.headers...)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			e := decode(t, resp)["error"].(map[string]any)
			require.Equal(t, "invalid_request_error", e["type"])
			require.Contains(t, e["message"], tt.wantMsg)
			require.Contains(t, e, "param")
			require.Contains(t, e, "code")
			require.Equal(t, tt.wantParam, e["param"])
			require.Equal(t, tt.wantCode, e["code"])
		})
	}
}

func TestModels(t *testing.T) {
	t.Parallel()
	srv := start(t, mockupstream.Config{})
	resp, err := srv.Client().Get(srv.URL + "/v1/models")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	got := decode(t, resp)
	require.Equal(t, "list", got["object"])
	var ids []string
	for _, m := range got["data"].([]any) {
		entry := m.(map[string]any)
		require.Equal(t, "model", entry["object"])
		require.Equal(t, "perpetuo", entry["owned_by"])
		ids = append(ids, entry["id"].(string))
	}
	require.Equal(t, mockupstream.Models(), ids)
	require.Contains(t, ids, "echo")
}

func TestUnknownRoute(t *testing.T) {
	t.Parallel()
	srv := start(t, mockupstream.Config{})
	resp, err := srv.Client().Get(srv.URL + "/v1/chat/completions")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	e := decode(t, resp)["error"].(map[string]any)
	require.Equal(t, "Invalid URL (GET /v1/chat/completions)", e["message"])
}

func decodeBytes(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var v map[string]any
	require.NoError(t, json.Unmarshal(raw, &v), "body: %s", raw)
	return v
}
