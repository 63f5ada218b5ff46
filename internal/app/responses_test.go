package app

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
)

// TestResponsesOnThePipeline: /v1/responses is recorded and priced like a
// chat completion, and a stream cut after it began ends with an error
// event carrying the envelope's error (not response.completed).
func TestResponsesOnThePipeline(t *testing.T) {
	t.Parallel()
	e := setup(t, map[string]http.Handler{"flaky": mockupstream.New(mockupstream.Config{MidStreamFailAfter: 2})})
	status, hdr, raw := e.postRaw("/v1/responses", `{"model":"mock/echo","input":[{"role":"user","content":[{"type":"input_text","text":"priced and recorded"}]}],"max_output_tokens":2}`)
	require.Equal(t, 200, status, "%s", raw)
	g := e.waitGeneration(hdr.Get("X-Generation-Id"))
	require.Equal(t, g.ID, gjson.GetBytes(raw, "id").String())
	require.Equal(t, g.Cost.String(), gjson.GetBytes(raw, "usage.cost").Raw)
	require.Equal(t, "incomplete", gjson.GetBytes(raw, "status").String(), "max_output_tokens cut it")
	require.Equal(t, "max_output_tokens", gjson.GetBytes(raw, "incomplete_details.reason").String())
	require.Equal(t, "priced and", gjson.GetBytes(raw, "output.0.content.0.text").String())

	status, _, raw = e.postRaw("/v1/responses", `{"model":"test/leaky","stream":true,"provider":{"allow_fallbacks":false},"input":"one two three four"}`)
	require.Equal(t, 200, status, "%s", raw)
	body := string(raw)
	require.Contains(t, body, "event: response.output_text.delta")
	require.Contains(t, body, "event: error\n")
	require.NotContains(t, body, "response.completed")
	i := strings.Index(body, "event: error\ndata: ")
	ev := gjson.Parse(strings.SplitN(body[i+len("event: error\ndata: "):], "\n", 2)[0])
	require.Equal(t, "provider_unavailable", ev.Get("error.type").String())
	require.Equal(t, "provider_unavailable", ev.Get("code").String())
}
