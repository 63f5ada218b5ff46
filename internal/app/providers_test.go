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

// claude asks for test/claude on its cheapest endpoint first, Anthropic's.
func claude(text string) openai.ChatCompletionNewParams {
	p := userMessage(text)
	p.Model = "test/claude"
	p.SetExtraFields(map[string]any{"strategy": "cheapest"})
	return p
}

// TestOpenAIClientThroughAnthropic: openai-go, speaking Chat Completions,
// is served by an Anthropic endpoint (the fake speaks Messages) and cannot
// tell but by the provider field: text, streaming, tools round trip, and
// usage and cost in OpenAI's convention with Anthropic's cache classes.
func TestOpenAIClientThroughAnthropic(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	ctx := context.Background()

	comp, err := e.openai.Chat.Completions.New(ctx, claude("hello from openai"))
	require.NoError(t, err)
	require.Equal(t, "hello from openai", comp.Choices[0].Message.Content)
	require.Equal(t, "stop", comp.Choices[0].FinishReason)
	require.Equal(t, "test/claude", comp.Model)
	require.JSONEq(t, `"claude"`, comp.JSON.ExtraFields["provider"].Raw())
	require.Equal(t, int64(7), comp.Usage.PromptTokens)
	g := e.waitGeneration(comp.ID)
	require.Equal(t, "claude", g.Provider)
	// 7 × 0.000003 + 3 × 0.000015
	require.Equal(t, "0.000066", g.Cost.String())

	st := e.openai.Chat.Completions.NewStreaming(ctx, claude("a streamed answer"))
	acc := openai.ChatCompletionAccumulator{}
	for st.Next() {
		acc.AddChunk(st.Current())
	}
	require.NoError(t, st.Err())
	require.Equal(t, "a streamed answer", acc.Choices[0].Message.Content)
	require.Equal(t, int64(3), acc.Usage.CompletionTokens)

	// Tools: the call comes back in OpenAI's shape, and the result goes to
	// Anthropic as a tool_result answering it.
	p := claude("weather in Paris")
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

	// Prompt caching: the second call reads what the first wrote, each
	// class priced at its own rate.
	long := strings.Repeat("context ", 40)
	body := `{"model":"test/claude","strategy":"cheapest","messages":[{"role":"system","content":[{"type":"text","text":"` + long +
		`","cache_control":{"type":"ephemeral"}}]},{"role":"user","content":"hello there"}]}`
	status, hdr, raw := e.postRaw("/v1/chat/completions", body)
	require.Equal(t, 200, status, "%s", raw)
	first := e.waitGeneration(hdr.Get("X-Generation-Id"))
	require.Equal(t, 50, first.PromptTokens)
	require.Equal(t, 44, first.CacheWriteTokens)
	// 6 × 0.000003 + 44 × 0.00000375 + 2 × 0.000015
	require.Equal(t, "0.000213", first.Cost.String())
	status, hdr, raw = e.postRaw("/v1/chat/completions", body)
	require.Equal(t, 200, status)
	second := e.waitGeneration(hdr.Get("X-Generation-Id"))
	require.Equal(t, 44, second.CachedTokens)
	require.Equal(t, 0, second.CacheWriteTokens)
	// 6 × 0.000003 + 44 × 0.0000003 + 2 × 0.000015
	require.Equal(t, "0.0000612", second.Cost.String())
	usage := gjson.GetBytes(raw, "usage")
	require.Equal(t, int64(50), usage.Get("prompt_tokens").Int())
	require.Equal(t, int64(44), usage.Get("prompt_tokens_details.cached_tokens").Int())
	require.Equal(t, "0.0000612", usage.Get("cost").Raw, "exact, from the decimal")
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
			require.Equal(t, "steady", *g.ProviderName)
			require.Len(t, g.Attempts, 2)
			require.Equal(t, "claude", g.Attempts[0].Provider)
			require.Equal(t, 529, g.Attempts[0].Status)
			require.Equal(t, "provider_overloaded", string(*g.Attempts[0].ErrorType))
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
