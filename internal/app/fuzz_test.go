package app

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzDecodeChatRequest throws arbitrary bodies at the chat route through
// the whole chain (limits, auth, validation, decoding, routing, the mock
// upstream). Whatever comes in, the answer is a completion or a 4xx in the
// error envelope: never a 5xx, never a hang, never the request echoed back
// in an error. Seeds run on every `go test`; `go test -fuzz` explores more.
func FuzzDecodeChatRequest(f *testing.F) {
	for _, seed := range []string{
		`{"model":"mock/echo","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"mock/echo","stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`,
		`{"models":["test/duo","mock/echo"],"provider":{"only":["steady"],"sort":{"by":"price"}},"messages":[{"role":"system","content":"s"},{"role":"user","content":"u"}]}`,
		`{"model":"mock/echo","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"1"}]},{"role":"tool","tool_call_id":"1","content":"x"}]}`,
		`{"model":"mock/echo","messages":[{"role":"user","content":"x"}],"max_tokens":-1}`,
		`{"model":"mock/echo","messages":[{"role":"user","content":"x"}],"provider":{"sort":"nonsense"}}`,
		`{"model":"","messages":[{"role":"user"}]}`,
		`{"messages":[{}]}`, `{"model":"mock/echo","messages":{}}`, `{}`, `[]`, `null`, `"x"`, `{`, ``, "\x00\xff",
		`{"model":"mock/echo","messages":[{"role":"user","content":"\ud800"}]}`,
		`{"model":"mock/echo","messages":[{"role":"user","content":"x"}],"temperature":1e999}`,
	} {
		f.Add(seed)
	}
	e := setup(f, nil)
	f.Fuzz(func(t *testing.T, body string) {
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e.key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 500 {
			t.Fatalf("status %d for %q: %s", resp.StatusCode, body, raw)
		}
		if resp.StatusCode == 200 {
			return
		}
		var env struct {
			Error struct {
				Code     int            `json:"code"`
				Type     string         `json:"type"`
				Message  string         `json:"message"`
				Metadata map[string]any `json:"metadata"`
			} `json:"error"`
		}
		if err := json.Unmarshal(raw, &env); err != nil || env.Error.Code != resp.StatusCode ||
			env.Error.Type == "" || env.Error.Metadata["error_type"] != env.Error.Type {
			t.Fatalf("status %d without a proper envelope for %q: %s", resp.StatusCode, body, raw)
		}
		if len(body) > 12 && strings.Contains(env.Error.Message, body) {
			t.Fatalf("the error echoes the request: %s", raw)
		}
	})
}
