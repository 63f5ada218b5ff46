package app

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// TestAttributionReachesTheRecord: an app's headers, its request's user and
// metadata are on the generation record (API and row), normalised and
// bounded; a request without them is unattributed.
func TestAttributionReachesTheRecord(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	post := func(h map[string]string, body string) string { return postAs(t, e, e.key, h, body) }
	id := post(map[string]string{
		"HTTP-Referer": "https://www.acme.dev:3000/app?session=secret#x", "X-Title": "Acme Chat",
		"X-OpenRouter-Categories": "Coding,CLI-agent", "X-Client-Name": "acme-sdk", "X-Client-Version": "2.1.0",
	}, `{"model":"mock/echo","user":"user-7","metadata":{"team":"search","ticket":"T-12"},"messages":[{"role":"user","content":"hi"}]}`)
	_, _, raw := send(t, e.srv.URL, "GET", "/v1/generation?id="+id, e.key, "")
	g := gjson.GetBytes(raw, "data")
	require.Equal(t, "acme.dev", g.Get("app").String(), "%s", raw)
	require.Equal(t, "acme.dev", g.Get("app").String())
	require.Equal(t, "Acme Chat", g.Get("app_title").String())
	require.Equal(t, "https://www.acme.dev:3000/app", g.Get("http_referer").String(), "no query string or fragment")
	require.Equal(t, `["coding","cli-agent"]`, g.Get("app_categories").Raw)
	require.Equal(t, "acme-sdk", g.Get("client_name").String())
	require.Equal(t, "2.1.0", g.Get("client_version").String())
	require.Equal(t, "user-7", g.Get("user").String())
	require.Equal(t, `{"team":"search","ticket":"T-12"}`, g.Get("metadata").Raw)
	// OpenRouter's generation fields.
	require.Equal(t, g.Get("tokens_prompt").Int(), g.Get("native_tokens_prompt").Int())
	require.Equal(t, g.Get("tokens_completion").Int(), g.Get("native_tokens_completion").Int())
	require.Equal(t, g.Get("total_cost").Raw, g.Get("upstream_inference_cost").Raw)
	require.Equal(t, gjson.Null, g.Get("generation_time").Type, "unknown for a non-streaming answer")
	require.Equal(t, `[{"endpoint_id":"mock/echo@mock","is_byok":false,"latency":`+g.Get("attempts.0.latency").Raw+
		`,"model_permaslug":"mock/echo","provider_name":"mock","status":200}]`, g.Get("provider_responses").Raw)
	row := gjson.Parse(e.storedRow(id))
	require.Equal(t, "acme.dev", row.Get("app").String())
	require.Equal(t, "https://www.acme.dev:3000/app", row.Get("http_referer").String())
	require.NotContains(t, row.Raw, "secret")

	id = post(nil, `{"model":"mock/echo","stream":true,"messages":[{"role":"user","content":"a b c"}]}`)
	_, _, raw = send(t, e.srv.URL, "GET", "/v1/generation?id="+id, e.key, "")
	require.Equal(t, gjson.Number, gjson.GetBytes(raw, "data.generation_time").Type, "a stream's time after its first token: %s", raw)

	// The client's name names the app when there is no referer.
	id = post(map[string]string{"X-Client-Name": "My Agent"}, chatBody)
	_, _, raw = send(t, e.srv.URL, "GET", "/v1/generation?id="+id, e.key, "")
	require.Equal(t, "my-agent", gjson.GetBytes(raw, "data.app").String())

	// Unattributed.
	id = post(nil, chatBody)
	_, _, raw = send(t, e.srv.URL, "GET", "/v1/generation?id="+id, e.key, "")
	require.Equal(t, gjson.Null, gjson.GetBytes(raw, "data.app").Type, "%s", raw)
	require.Equal(t, `[]`, gjson.GetBytes(raw, "data.app_categories").Raw)

	// More than 16 metadata tags is a clear refusal, not a silent cut.
	many := `{"model":"mock/echo","metadata":{`
	for i := range 17 {
		if i > 0 {
			many += ","
		}
		many += `"k` + string(rune('a'+i)) + `":"v"`
	}
	status, _, raw := e.postRaw("/v1/chat/completions", many+`},"messages":[{"role":"user","content":"x"}]}`)
	require.Equal(t, 400, status, "%s", raw)
	require.Equal(t, "/metadata", gjson.GetBytes(raw, "error.metadata.field").String())
}
