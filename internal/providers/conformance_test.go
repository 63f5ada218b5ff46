package providers

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/mockupstream"
)

// family is one adapter with the fake that speaks its provider's wire
// format. Every family runs the whole conformance suite: requests in
// OpenAI's shape, answers checked in OpenAI's shape, whatever went over
// the wire in between.
type family struct {
	name    string
	adapter func(*http.Client) Adapter
	fake    func(mockupstream.Config) http.Handler
	// compat is the provider's catalog entry's quirks (OpenAI family).
	compat catalog.Compat
	// overloaded is the status the provider answers when overloaded.
	overloaded int
	// reasoningTokens: the provider reports reasoning tokens apart
	// (Anthropic counts thinking in output_tokens without a split).
	reasoningTokens bool
	// pricing is a real price list of the provider, for the golden cost.
	pricing catalog.Pricing
	// goldenCost is the cost of the cached case's second call.
	goldenCost string
}

// path is the API's base path on the fake.
func (f family) path() string {
	switch f.name {
	case "gemini":
		return "/v1beta"
	case "azure":
		return "" // the resource's endpoint
	}
	return "/v1"
}

func dec(s string) *decimal.Decimal { d := decimal.RequireFromString(s); return &d }

var families = []family{
	{
		name:    "openai",
		adapter: func(c *http.Client) Adapter { return NewOpenAI(c, nil) },
		fake:    mockupstream.New, overloaded: 503, reasoningTokens: true,
		// GPT-4.1: $2/M, cached $0.50/M, $8/M.
		pricing:    catalog.Pricing{Prompt: *dec("0.000002"), Completion: *dec("0.000008"), InputCacheRead: dec("0.0000005")},
		goldenCost: "0.00005", // 6×2e-6 + 44×5e-7 + 2×8e-6
	},
	{
		name:    "anthropic",
		adapter: func(c *http.Client) Adapter { return NewAnthropic(c, nil) },
		fake:    mockupstream.NewAnthropic, overloaded: 529,
		// Claude Sonnet 4: $3/M, cache read $0.30/M, write $3.75/M, $15/M.
		pricing: catalog.Pricing{Prompt: *dec("0.000003"), Completion: *dec("0.000015"),
			InputCacheRead: dec("0.0000003"), InputCacheWrite: dec("0.00000375")},
		goldenCost: "0.0000612", // 6×3e-6 + 44×3e-7 + 2×15e-6
	},
	{
		name:    "azure",
		adapter: func(c *http.Client) Adapter { return NewAzure(c, nil) },
		fake:    mockupstream.NewAzure, overloaded: 503, reasoningTokens: true,
		// GPT-4.1 on Azure: the same prices as OpenAI's.
		pricing:    catalog.Pricing{Prompt: *dec("0.000002"), Completion: *dec("0.000008"), InputCacheRead: dec("0.0000005")},
		goldenCost: "0.00005", // 6×2e-6 + 44×5e-7 + 2×8e-6
	},
	{
		name:    "gemini",
		adapter: func(c *http.Client) Adapter { return NewGemini(c, nil) },
		fake:    mockupstream.NewGemini, overloaded: 503, reasoningTokens: true,
		// Gemini 2.5 Flash: $0.30/M, cached $0.075/M, $2.50/M (thoughts too).
		pricing:    catalog.Pricing{Prompt: *dec("0.0000003"), Completion: *dec("0.0000025"), InputCacheRead: dec("0.000000075")},
		goldenCost: "0.0000101", // 6×3e-7 + 44×7.5e-8 + 2×2.5e-6
	},
	{
		// Mistral refuses what it does not know (stream_options among it)
		// and sends usage in every stream unasked.
		name:    "mistral",
		adapter: func(c *http.Client) Adapter { return NewOpenAI(c, nil) },
		fake: func(cfg mockupstream.Config) http.Handler {
			return mockupstream.NewCompatible(cfg, mockupstream.Dialect{StreamUsage: "always",
				Forbid: []string{"stream_options", "max_completion_tokens", "reasoning_effort", "include_reasoning"}})
		},
		compat:     catalog.Compat{StreamUsage: catalog.StreamUsageAlways},
		overloaded: 503, reasoningTokens: true,
		// Mistral Medium 3: $0.40/M, $2/M; no cache price, so cached
		// tokens cost the prompt's.
		pricing:    catalog.Pricing{Prompt: *dec("0.0000004"), Completion: *dec("0.000002")},
		goldenCost: "0.000024", // 50×4e-7 + 2×2e-6
	},
	{
		// DeepSeek names reasoning reasoning_content and cached tokens
		// prompt_cache_hit_tokens.
		name:    "deepseek",
		adapter: func(c *http.Client) Adapter { return NewOpenAI(c, nil) },
		fake: func(cfg mockupstream.Config) http.Handler {
			return mockupstream.NewCompatible(cfg, mockupstream.Dialect{AuthHeader: "", ReasoningField: "reasoning_content", CacheHitFields: true})
		},
		compat:     catalog.Compat{ReasoningField: catalog.ReasoningContent},
		overloaded: 503, reasoningTokens: true,
		// DeepSeek V3.2: $0.28/M, cache hit $0.028/M, $0.42/M.
		pricing:    catalog.Pricing{Prompt: *dec("0.00000028"), Completion: *dec("0.00000042"), InputCacheRead: dec("0.000000028")},
		goldenCost: "0.000003752", // 6×2.8e-7 + 44×2.8e-8 + 2×4.2e-7
	},
}

// conformance runs body against a fresh fake of each family.
func conformance(t *testing.T, cfg mockupstream.Config, body func(t *testing.T, f family, a Adapter, call Call)) {
	t.Helper()
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(f.fake(cfg))
			t.Cleanup(srv.Close)
			call := Call{Provider: "p", BaseURL: srv.URL + f.path(), APIKey: cfg.APIKey, UpstreamModel: "mock-model", MaxOutput: 8192, Compat: f.compat}
			body(t, f, f.adapter(NewHTTPClient()), call)
		})
	}
}

func withBody(c Call, body string) Call {
	c.Body = []byte(body)
	return c
}

// streamed reads a stream to its end, returning the assembled message (in
// a chat.completion's message shape), the finish reason, the usage and
// the first error other than io.EOF.
func streamed(t *testing.T, st Stream) (msg map[string]any, finish string, u Usage, hasUsage bool, err error) {
	t.Helper()
	defer st.Close()
	content, reasoning := "", ""
	var tools []map[string]any
	for {
		var chunk []byte
		chunk, err = st.Next()
		if err == io.EOF {
			err = nil
			break
		}
		if err != nil {
			break
		}
		require.Equal(t, "chat.completion.chunk", gjson.GetBytes(chunk, "object").String(), "%s", chunk)
		require.NotEmpty(t, gjson.GetBytes(chunk, "id").String())
		if uu, ok := ParseUsage(gjson.GetBytes(chunk, "usage")); ok {
			u, hasUsage = uu, true
			require.Empty(t, gjson.GetBytes(chunk, "choices").Array(), "usage rides a usage-only chunk")
		}
		d := gjson.GetBytes(chunk, "choices.0.delta")
		content += d.Get("content").String()
		reasoning += d.Get("reasoning").String()
		for _, tc := range d.Get("tool_calls").Array() {
			i := int(tc.Get("index").Int())
			for len(tools) <= i {
				tools = append(tools, map[string]any{"function": map[string]any{"arguments": ""}})
			}
			if id := tc.Get("id").String(); id != "" {
				tools[i]["id"] = id
			}
			fn := tools[i]["function"].(map[string]any)
			if n := tc.Get("function.name").String(); n != "" {
				fn["name"] = n
			}
			fn["arguments"] = fn["arguments"].(string) + tc.Get("function.arguments").String()
		}
		if fr := gjson.GetBytes(chunk, "choices.0.finish_reason").String(); fr != "" {
			finish = fr
		}
	}
	msg = map[string]any{"content": content, "reasoning": reasoning}
	if tools != nil {
		msg["tool_calls"] = tools
	}
	return msg, finish, u, hasUsage, err
}

// both calls c without and with streaming and checks that the two agree:
// the same text, tool calls, finish reason and usage. It returns the
// non-streaming completion.
func both(t *testing.T, a Adapter, c Call) *Completion {
	t.Helper()
	comp, err := a.Complete(context.Background(), c)
	require.NoError(t, err)
	require.True(t, comp.HasUsage)
	require.Equal(t, "chat.completion", gjson.GetBytes(comp.Body, "object").String())
	st, err := a.Stream(context.Background(), c)
	require.NoError(t, err)
	msg, finish, u, hasUsage, err := streamed(t, st)
	require.NoError(t, err)
	require.True(t, hasUsage, "streams always report usage")
	require.Equal(t, comp.FinishReason, finish)
	require.Equal(t, comp.Usage, u)
	m := gjson.GetBytes(comp.Body, "choices.0.message")
	require.Equal(t, m.Get("content").String(), msg["content"])
	require.Equal(t, m.Get("reasoning").String(), msg["reasoning"])
	if tcs := m.Get("tool_calls").Array(); len(tcs) > 0 {
		got := msg["tool_calls"].([]map[string]any)
		require.Len(t, got, len(tcs))
		for i, tc := range tcs {
			require.NotEmpty(t, got[i]["id"], "ids are the upstream's, one per call")
			require.Equal(t, tc.Get("function.name").String(), got[i]["function"].(map[string]any)["name"])
			require.JSONEq(t, tc.Get("function.arguments").String(), got[i]["function"].(map[string]any)["arguments"].(string))
		}
	}
	return comp
}

func content(comp *Completion) string {
	return gjson.GetBytes(comp.Body, "choices.0.message.content").String()
}

func TestConformanceText(t *testing.T) {
	t.Parallel()
	conformance(t, mockupstream.Config{APIKey: "sk-test"}, func(t *testing.T, f family, a Adapter, call Call) {
		comp := both(t, a, withBody(call, `{"model":"x/y","messages":[{"role":"user","content":"a b c"}],"provider":{"only":["p"]},"n":1}`))
		require.Equal(t, "a b c", content(comp))
		require.Equal(t, "stop", comp.FinishReason)
		require.Equal(t, Usage{PromptTokens: 7, CompletionTokens: 3}, comp.Usage)
		require.NotEmpty(t, comp.UpstreamID)
		require.Equal(t, comp.UpstreamID, gjson.GetBytes(comp.Body, "id").String())
	})
}

func TestConformanceMultiTurnAndSystem(t *testing.T) {
	t.Parallel()
	conformance(t, mockupstream.Config{}, func(t *testing.T, f family, a Adapter, call Call) {
		comp := both(t, a, withBody(call, `{"messages":[
			{"role":"system","content":"be brief"},
			{"role":"user","content":"one"},
			{"role":"assistant","content":"two"},
			{"role":"user","content":[{"type":"text","text":"three"},{"type":"text","text":"four"}]}]}`))
		require.Equal(t, "three four", content(comp))
		// Every turn reached the upstream: system 2+4, one 1+4, two 1+4, three four 2+4.
		require.Equal(t, 22, comp.Usage.PromptTokens)
	})
}

var weatherTool = `"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather of a city","parameters":{"type":"object","properties":{"query":{"type":"string"}}}}}]`

func TestConformanceToolsRoundTrip(t *testing.T) {
	t.Parallel()
	conformance(t, mockupstream.Config{}, func(t *testing.T, f family, a Adapter, call Call) {
		comp := both(t, a, withBody(call, `{"messages":[{"role":"user","content":"weather in Paris"}],`+weatherTool+`,"tool_choice":"auto"}`))
		require.Equal(t, "tool_calls", comp.FinishReason)
		tc := gjson.GetBytes(comp.Body, "choices.0.message.tool_calls.0")
		require.Equal(t, "function", tc.Get("type").String())
		require.Equal(t, "get_weather", tc.Get("function.name").String())
		require.JSONEq(t, `{"query":"weather in Paris"}`, tc.Get("function.arguments").String())
		id := tc.Get("id").String()
		require.NotEmpty(t, id)

		// The result goes back in OpenAI's shape; the upstream must see it
		// answer its own call.
		back := `{"messages":[{"role":"user","content":"weather in Paris"},
			{"role":"assistant","content":null,"tool_calls":[{"id":"` + id + `","type":"function","function":{"name":"get_weather","arguments":` + tc.Get("function.arguments").Raw + `}}]},
			{"role":"tool","tool_call_id":"` + id + `","content":"sunny 21C"}],` + weatherTool + `}`
		comp = both(t, a, withBody(call, back))
		require.Equal(t, "Tool said: sunny 21C", content(comp))
		require.Equal(t, "stop", comp.FinishReason)

		// A named tool is forced; "none" forbids tools.
		comp = both(t, a, withBody(call, `{"messages":[{"role":"user","content":"x"}],`+weatherTool+`,"tool_choice":{"type":"function","function":{"name":"get_weather"}}}`))
		require.Equal(t, "tool_calls", comp.FinishReason)
		comp = both(t, a, withBody(call, `{"messages":[{"role":"user","content":"x"}],`+weatherTool+`,"tool_choice":"none"}`))
		require.Equal(t, "x", content(comp))
	})
}

func TestConformanceImages(t *testing.T) {
	t.Parallel()
	conformance(t, mockupstream.Config{}, func(t *testing.T, f family, a Adapter, call Call) {
		comp := both(t, a, withBody(call, `{"messages":[{"role":"user","content":[
			{"type":"text","text":"look"},
			{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
			{"type":"image_url","image_url":{"url":"https://images.example/cat.jpg"}}]}]}`))
		require.Equal(t, "look [image base64 image/png] [image url https://images.example/cat.jpg]", content(comp))
	})
}

func TestConformanceStopAndLength(t *testing.T) {
	t.Parallel()
	conformance(t, mockupstream.Config{}, func(t *testing.T, f family, a Adapter, call Call) {
		comp := both(t, a, withBody(call, `{"messages":[{"role":"user","content":"alpha beta STOP gamma"}],"stop":["STOP"]}`))
		require.Equal(t, "alpha beta", content(comp))
		require.Equal(t, "stop", comp.FinishReason)
		comp = both(t, a, withBody(call, `{"messages":[{"role":"user","content":"alpha beta"}],"stop":"beta"}`))
		require.Equal(t, "alpha", content(comp))

		comp = both(t, a, withBody(call, `{"messages":[{"role":"user","content":"a b c d e"}],"max_tokens":2}`))
		require.Equal(t, "a b", content(comp))
		require.Equal(t, "length", comp.FinishReason)
		require.Equal(t, 2, comp.Usage.CompletionTokens)
	})
}

func TestConformanceReasoning(t *testing.T) {
	t.Parallel()
	conformance(t, mockupstream.Config{}, func(t *testing.T, f family, a Adapter, call Call) {
		comp := both(t, a, withBody(call, `{"messages":[{"role":"user","content":"think about x"}],"max_tokens":4000,"reasoning":{"effort":"high"}}`))
		msg := gjson.GetBytes(comp.Body, "choices.0.message")
		require.Equal(t, "Considering think about x", msg.Get("reasoning").String())
		require.Equal(t, "think about x", msg.Get("content").String())
		require.Equal(t, 7, comp.Usage.CompletionTokens, "reasoning is part of the completion")
		if f.reasoningTokens {
			require.Equal(t, 4, comp.Usage.ReasoningTokens)
		}
		details := msg.Get("reasoning_details").Array()
		require.NotEmpty(t, details)
		require.Equal(t, "reasoning.text", details[0].Get("type").String())

		// With tools, the reasoning goes back with the call, as the
		// upstream requires it (Anthropic checks its signature).
		comp = both(t, a, withBody(call, `{"messages":[{"role":"user","content":"weather"}],"max_tokens":4000,"reasoning":{"effort":"low"},`+weatherTool+`}`))
		require.Equal(t, "tool_calls", comp.FinishReason)
		assistant := gjson.GetBytes(comp.Body, "choices.0.message").Raw
		id := gjson.GetBytes(comp.Body, "choices.0.message.tool_calls.0.id").String()
		comp = both(t, a, withBody(call, `{"messages":[{"role":"user","content":"weather"},`+assistant+`,
			{"role":"tool","tool_call_id":"`+id+`","content":"rain"}],"max_tokens":4000,"reasoning":{"effort":"low"},`+weatherTool+`}`))
		require.Equal(t, "Tool said: rain", content(comp))

		// Without room for a budget, no reasoning (and no error).
		comp = both(t, a, withBody(call, `{"messages":[{"role":"user","content":"x"}],"max_tokens":100,"reasoning":{"effort":"high"}}`))
		require.Equal(t, "x", content(comp))
	})
}

func TestConformanceErrorClasses(t *testing.T) {
	t.Parallel()
	conformance(t, mockupstream.Config{APIKey: "sk-test"}, func(t *testing.T, f family, a Adapter, call Call) {
		cases := []struct {
			status, client int
			typ            apierr.Type
		}{
			{400, 400, apierr.InvalidRequest},
			{401, 502, apierr.ProviderError},
			{403, 502, apierr.ProviderError},
			{404, 502, apierr.ProviderError},
			{413, 413, apierr.PayloadTooLarge},
			{429, 429, apierr.RateLimitExceeded},
			{500, 502, apierr.ProviderUnavailable},
			{f.overloaded, 503, apierr.ProviderOverloaded},
		}
		for _, tc := range cases {
			c := withBody(call, `{"messages":[{"role":"user","content":"x"}]}`)
			c.UpstreamModel = "mock-fail-" + strconv.Itoa(tc.status)
			for _, stream := range []bool{false, true} {
				var err error
				if stream {
					_, err = a.Stream(context.Background(), c)
				} else {
					_, err = a.Complete(context.Background(), c)
				}
				var pe *Error
				require.ErrorAs(t, err, &pe, "status %d", tc.status)
				require.Equal(t, tc.status, pe.Status)
				require.Equal(t, tc.client, pe.Client.Status, "status %d", tc.status)
				require.Equal(t, tc.typ, pe.Client.Type, "status %d", tc.status)
				require.Equal(t, Refused, pe.Class)
				require.NotContains(t, pe.Client.Message, "{", "no raw upstream body")
				if tc.status == 429 {
					require.Equal(t, 1, pe.Client.RetryAfter, "the provider's retry-after")
				}
			}
		}
		// A wrong key is the credential's problem, named as such.
		bad := withBody(call, `{"messages":[{"role":"user","content":"x"}]}`)
		bad.APIKey = "sk-wrong"
		_, err := a.Complete(context.Background(), bad)
		var ke *Error
		require.ErrorAs(t, err, &ke)
		require.Equal(t, apierr.ProviderError, ke.Client.Type)
		require.True(t, ke.Retryable)
		require.Contains(t, err.Error(), "operator's credential", "Google's 400 API_KEY_INVALID too")

		// An error event mid-stream, after some output.
		mid := withBody(call, `{"messages":[{"role":"user","content":"a b c d e f"}],"stream":true}`)
		mid.UpstreamModel = "mock-midstream-error"
		st, err := a.Stream(context.Background(), mid)
		require.NoError(t, err)
		msg, _, _, _, err := streamed(t, st)
		require.NotEmpty(t, msg["content"])
		var pe *Error
		require.ErrorAs(t, err, &pe)
		require.Equal(t, 200, pe.Status, "in-band")
		require.Equal(t, apierr.ProviderOverloaded, pe.Client.Type)

		// A connection cut mid-stream is an error, not an end.
		cut := withBody(call, `{"messages":[{"role":"user","content":"a b c d e f"}]}`)
		cut.UpstreamModel = "mock-midstream-fail"
		st, err = a.Stream(context.Background(), cut)
		require.NoError(t, err)
		_, _, _, _, err = streamed(t, st)
		require.ErrorAs(t, err, &pe)
		require.Equal(t, apierr.ProviderUnavailable, pe.Client.Type)

		// A request the provider's rules refuse comes back as 400 naming
		// its reason (the fake enforces the documented rules).
		c := withBody(call, `{"messages":[{"role":"user","content":"x"}],"temperature":-1}`)
		_, err = a.Complete(context.Background(), c)
		requireUpstreamError(t, err, 400, apierr.InvalidRequest, false)
		require.Contains(t, err.Error(), "temperature")
	})
}

// TestConformanceCancellationClosesTheUpstream: cancelling a slow stream's
// context ends the upstream's handler (its connection closed) at once.
func TestConformanceCancellationClosesTheUpstream(t *testing.T) {
	t.Parallel()
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			done := make(chan struct{}, 1)
			fake := f.fake(mockupstream.Config{TokensPerSecond: 1})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fake.ServeHTTP(w, r)
				done <- struct{}{}
			}))
			defer srv.Close()
			ctx, cancel := context.WithCancel(context.Background())
			st, err := f.adapter(NewHTTPClient()).Stream(ctx, Call{Provider: "p", BaseURL: srv.URL + f.path(), UpstreamModel: "m", Compat: f.compat,
				Body: []byte(`{"messages":[{"role":"user","content":"one two three four five six"}]}`)})
			require.NoError(t, err)
			_, err = st.Next()
			require.NoError(t, err)
			cancel()
			start := time.Now()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the upstream kept streaming after the cancel")
			}
			require.Less(t, time.Since(start), 900*time.Millisecond, "closed before the next paced token")
			for err == nil { // what was buffered before the cancel, then the error
				_, err = st.Next()
			}
			require.NotEqual(t, io.EOF, err)
			require.NoError(t, st.Close())
		})
	}
}

// TestConformanceCachedTokensAndGoldenCost: a prompt sent twice is cached
// by the provider (Anthropic at its cache_control breakpoints, OpenAI on
// its own): the second call reads it. Usage is reported in one convention,
// and the provider's real prices give a golden cost.
func TestConformanceCachedTokensAndGoldenCost(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("context ", 40)
	conformance(t, mockupstream.Config{}, func(t *testing.T, f family, a Adapter, call Call) {
		body := `{"messages":[{"role":"system","content":[{"type":"text","text":"` + long + `","cache_control":{"type":"ephemeral"}}]},
			{"role":"user","content":"hello there"}]}`
		first, err := a.Complete(context.Background(), withBody(call, body))
		require.NoError(t, err)
		second := both(t, a, withBody(call, body))
		// system 40 words + 4, user 2 + 4.
		require.Equal(t, 50, first.Usage.PromptTokens)
		require.Equal(t, 50, second.Usage.PromptTokens, "prompt tokens include the cached ones")
		require.Equal(t, 0, first.Usage.CachedTokens)
		require.Equal(t, 44, second.Usage.CachedTokens)
		require.Equal(t, 0, second.Usage.CacheWriteTokens)
		if f.name == "anthropic" {
			require.Equal(t, 44, first.Usage.CacheWriteTokens, "Anthropic bills the write (its breakpoint is after the system text)")
		}
		require.Equal(t, 2, second.Usage.CompletionTokens)
		require.Equal(t, f.goldenCost, f.pricing.Cost(second.Usage.Tokens()).String())
		// The rendered usage carries the classes (under DeepSeek's names
		// from DeepSeek; the gateway renders OpenAI's from Usage).
		rendered, ok := ParseUsage(gjson.GetBytes(second.Body, "usage"))
		require.True(t, ok)
		require.Equal(t, 44, rendered.CachedTokens)
	})
}
