package app

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
)

// family asks for model on its cheapest endpoint first (the family's own).
func family(model, text string) openai.ChatCompletionNewParams {
	p := userMessage(text)
	p.Model = model
	p.SetExtraFields(map[string]any{"strategy": "cheapest"})
	return p
}

// TestOpenAIClientThroughEachFamily: openai-go, speaking Chat Completions,
// is served by an Anthropic and a Gemini endpoint (their fakes speak
// Messages and generateContent) and cannot tell but by the provider field:
// text, streaming, tools round trip, and usage and cost in OpenAI's
// convention with each provider's cache classes priced apart.
func TestOpenAIClientThroughEachFamily(t *testing.T) {
	t.Parallel()
	cases := []struct {
		model, provider string
		textCost        string // 7 prompt, 3 completion tokens
		// The cached prompt, sent twice: the first call's cache writes and
		// cost, the second's cost.
		writes                int
		firstCost, secondCost string
	}{
		// 7×3e-6 + 3×15e-6; 6×3e-6 + 44×3.75e-6 + 2×15e-6; 6×3e-6 + 44×3e-7 + 2×15e-6
		{"test/claude", "claude", "0.000066", 44, "0.000213", "0.0000612"},
		// 7×3e-7 + 3×2.5e-6; 50×3e-7 + 2×2.5e-6 (Gemini bills no writes); 6×3e-7 + 44×7.5e-8 + 2×2.5e-6
		{"test/gemini", "gemini", "0.0000096", 0, "0.00002", "0.0000101"},
	}
	e := setup(t, nil)
	for _, tc := range cases {
		t.Run(tc.provider, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			comp, err := e.openai.Chat.Completions.New(ctx, family(tc.model, "hello from openai"))
			require.NoError(t, err)
			require.Equal(t, "hello from openai", comp.Choices[0].Message.Content)
			require.Equal(t, "stop", comp.Choices[0].FinishReason)
			require.Equal(t, tc.model, comp.Model)
			require.JSONEq(t, `"`+tc.provider+`"`, comp.JSON.ExtraFields["provider"].Raw())
			require.Equal(t, int64(7), comp.Usage.PromptTokens)
			g := e.waitGeneration(comp.ID)
			require.Equal(t, tc.provider, g.Provider)
			require.Equal(t, tc.textCost, g.Cost.String())

			st := e.openai.Chat.Completions.NewStreaming(ctx, family(tc.model, "a streamed answer"))
			defer st.Close()
			acc := openai.ChatCompletionAccumulator{}
			for st.Next() {
				acc.AddChunk(st.Current())
			}
			require.NoError(t, st.Err())
			require.Equal(t, "a streamed answer", acc.Choices[0].Message.Content)
			require.Equal(t, int64(3), acc.Usage.CompletionTokens)

			// Tools: the call comes back in OpenAI's shape, and the result
			// goes upstream answering it.
			p := family(tc.model, "weather in Paris")
			p.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
				Name: "get_weather", Parameters: openai.FunctionParameters{"type": "object", "properties": map[string]any{"query": map[string]any{"type": "string"}}},
			})}
			comp, err = e.openai.Chat.Completions.New(ctx, p)
			require.NoError(t, err)
			require.Equal(t, "tool_calls", comp.Choices[0].FinishReason)
			call := comp.Choices[0].Message.ToolCalls[0]
			require.Equal(t, "get_weather", call.Function.Name)
			require.JSONEq(t, `{"query":"weather in Paris"}`, call.Function.Arguments)
			p.Messages = append(p.Messages, comp.Choices[0].Message.ToParam(), openai.ToolMessage("sunny", call.ID))
			comp, err = e.openai.Chat.Completions.New(ctx, p)
			require.NoError(t, err)
			require.Equal(t, "Tool said: sunny", comp.Choices[0].Message.Content)

			// Prompt caching: the second call reads what the first left,
			// each class priced at its own rate.
			long := strings.Repeat("context ", 40)
			body := `{"model":"` + tc.model + `","strategy":"cheapest","messages":[{"role":"system","content":[{"type":"text","text":"` + long +
				`","cache_control":{"type":"ephemeral"}}]},{"role":"user","content":"hello there"}]}`
			status, hdr, raw := e.postRaw("/v1/chat/completions", body)
			require.Equal(t, 200, status, "%s", raw)
			first := e.waitGeneration(hdr.Get("X-Generation-Id"))
			require.Equal(t, 50, first.PromptTokens)
			require.Equal(t, tc.writes, first.CacheWriteTokens)
			require.Equal(t, tc.firstCost, first.Cost.String())
			status, hdr, raw = e.postRaw("/v1/chat/completions", body)
			require.Equal(t, 200, status)
			second := e.waitGeneration(hdr.Get("X-Generation-Id"))
			require.Equal(t, 44, second.CachedTokens)
			require.Equal(t, 0, second.CacheWriteTokens)
			require.Equal(t, tc.secondCost, second.Cost.String())
			usage := gjson.GetBytes(raw, "usage")
			require.Equal(t, int64(50), usage.Get("prompt_tokens").Int())
			require.Equal(t, int64(44), usage.Get("prompt_tokens_details.cached_tokens").Int())
			require.Equal(t, tc.secondCost, usage.Get("cost").Raw, "exact, from the decimal")
		})
	}
}

// TestFallbackFromAnthropicToOpenAIFamily: one request, an overloaded
// Anthropic endpoint, then the OpenAI-family endpoint of the same model;
// the decision log holds both attempts.
func TestFallbackFromAnthropicToOpenAIFamily(t *testing.T) {
	t.Parallel()
	for _, stream := range []string{"false", "true"} {
		t.Run("stream="+stream, func(t *testing.T) {
			t.Parallel()
			e := setup(t, map[string]http.Handler{
				"claude": mockupstream.NewAnthropic(mockupstream.Config{FailureRate: 1, FailureStatus: 529}),
			})
			status, hdr, body := e.postRaw("/v1/chat/completions",
				`{"model":"test/claude","strategy":"cheapest","stream":`+stream+`,"messages":[{"role":"user","content":"hello"}]}`)
			require.Equal(t, 200, status, "%s", body)
			require.Contains(t, string(body), "hello")
			g := e.generation(hdr.Get("X-Generation-Id"))
			requireFellBackToSteady(t, g, "claude", 529, "provider_overloaded")
			require.Equal(t, "steady", g.Attempts[1].Provider)
			require.Equal(t, 200, g.Attempts[1].Status)
			require.Len(t, g.ProviderResponses, 2)
			require.NotNil(t, g.Routing)
			var order []string
			for _, c := range g.Routing.Candidates {
				order = append(order, c.Provider)
			}
			require.Equal(t, []string{"claude", "steady"}, order, "the cheaper Anthropic endpoint came first")
		})
	}
}

const weatherTools = `"tools":[{"type":"function","function":{"name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`

// mistralFake refuses, as Mistral does with a 422, what its endpoint in the
// test catalog does not list (frequency_penalty, seed) and stream_options
// and max_completion_tokens, and sends stream usage unasked.
func mistralFake() http.Handler {
	return mockupstream.NewCompatible(mockupstream.Config{}, mockupstream.Dialect{StreamUsage: "always",
		Forbid: []string{"stream_options", "max_completion_tokens", "frequency_penalty", "seed"}})
}

// TestUnsupportedParametersAreDropped: openai-go's parameters the endpoint
// does not support are dropped from what it is sent (the fake would refuse
// them) and the decision log says which; the cap is renamed to the one the
// provider reads, and a stream gets its usage without stream_options.
// Under require_parameters the endpoint is excluded instead, and a request
// with tools never goes to an endpoint without them.
func TestUnsupportedParametersAreDropped(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	ctx := context.Background()
	p := family("test/mistral", "bonjour")
	p.FrequencyPenalty = openai.Float(0.5)
	p.Seed = openai.Int(7)
	p.MaxCompletionTokens = openai.Int(20)
	p.Temperature = openai.Float(0.2)
	comp, err := e.openai.Chat.Completions.New(ctx, p)
	require.NoError(t, err)
	require.Equal(t, "bonjour", comp.Choices[0].Message.Content)
	require.JSONEq(t, `"mistral"`, comp.JSON.ExtraFields["provider"].Raw())
	g := e.generation(comp.ID)
	require.NotNil(t, g.Routing)
	require.Len(t, g.Routing.Candidates, 1)
	require.NotNil(t, g.Routing.Candidates[0].DroppedParameters)
	require.ElementsMatch(t, []string{"frequency_penalty", "seed"}, *g.Routing.Candidates[0].DroppedParameters)

	st := e.openai.Chat.Completions.NewStreaming(ctx, p)
	defer st.Close()
	text := ""
	var usage openai.CompletionUsage
	for st.Next() {
		c := st.Current()
		if len(c.Choices) > 0 {
			text += c.Choices[0].Delta.Content
		}
		if c.Usage.TotalTokens > 0 {
			usage = c.Usage
		}
	}
	require.NoError(t, st.Err())
	require.Equal(t, "bonjour", text)
	require.EqualValues(t, 1, usage.CompletionTokens, "the provider's own usage, not an estimate")

	status, doc := call(t, e.srv.URL, "POST", "/v1/chat/completions", e.key,
		`{"model":"test/mistral","seed":7,"provider":{"require_parameters":true},"messages":[{"role":"user","content":"x"}]}`)
	require.Equal(t, 404, status, "%v", doc)
	er := requireEnvelope(t, doc, 404, "no_endpoints")
	require.Equal(t, []any{"require_parameters"}, er["metadata"].(map[string]any)["excluded_by"])

	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", e.key,
		`{"model":"test/mistral","messages":[{"role":"user","content":"x"}],`+weatherTools+`}`)
	require.Equal(t, 404, status, "%v", doc)
	er = requireEnvelope(t, doc, 404, "no_endpoints")
	require.Equal(t, []any{"tools"}, er["metadata"].(map[string]any)["excluded_by"])
}
