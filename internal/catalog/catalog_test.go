package catalog

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
)

func TestDefaultCatalogLoads(t *testing.T) {
	t.Parallel()
	c, err := Default()
	require.NoError(t, err)
	m, ok := c.Model("mock/echo")
	require.True(t, ok)
	p, ok := c.Provider(m.Endpoints[0].Provider)
	require.True(t, ok)
	require.True(t, p.Demo, "the mock provider must be labelled as a demo")
	_, ok = c.Model("openai/gpt-4o-mini")
	require.True(t, ok)
	// Cached tokens are priced at the providers' cache prices: a prompt
	// of 50 tokens, 44 of them read from the cache, and 2 out.
	for id, want := range map[string]string{
		"anthropic/claude-sonnet-4": "0.0000612", // 6×3e-6 + 44×3e-7 + 2×15e-6
		"openai/gpt-4o":             "0.00009",   // 6×2.5e-6 + 44×1.25e-6 + 2×1e-5
		"google/gemini-2.5-flash":   "0.0000101", // 6×3e-7 + 44×7.5e-8 + 2×2.5e-6
	} {
		m, ok := c.Model(id)
		require.True(t, ok, id)
		require.Equal(t, want, m.Endpoints[0].Pricing.Cost(Tokens{Prompt: 50, CacheRead: 44, Completion: 2}).String(), id)
	}
	// The OpenAI-compatible providers' quirks are declared.
	for slug, want := range map[string]Compat{
		"openai":   {MaxTokensField: "max_completion_tokens"},
		"mistral":  {StreamUsage: StreamUsageAlways},
		"deepseek": {ReasoningField: ReasoningContent},
		"xai":      {ReasoningField: ReasoningContent},
		"vllm":     {ReasoningField: ReasoningContent},
		"groq":     {},
	} {
		p, ok := c.Provider(slug)
		require.True(t, ok, slug)
		require.Equal(t, want, p.Compat, slug)
	}
}

// The embedded catalog ships open-weight models served by several providers,
// each endpoint with its provenance, so that routing strategies differ.
func TestDefaultCatalogHasMultiProviderModels(t *testing.T) {
	t.Parallel()
	c, err := Default()
	require.NoError(t, err)
	multi := 0
	for _, m := range c.Models() {
		if len(m.Endpoints) < 3 {
			continue
		}
		multi++
		for _, e := range m.Endpoints {
			require.NotEmpty(t, e.Source, "model %s, provider %s: source", m.ID, e.Provider)
			require.NotEmpty(t, e.UpdatedAt, "model %s, provider %s: updated_at", m.ID, e.Provider)
			require.Positive(t, e.LatencyMs, "model %s, provider %s: latency_ms", m.ID, e.Provider)
			require.Positive(t, e.Throughput, "model %s, provider %s: throughput", m.ID, e.Provider)
			for _, price := range []decimal.Decimal{e.Pricing.Prompt, e.Pricing.Completion, e.Pricing.Request} {
				require.LessOrEqual(t, -price.Exponent(), int32(10), "model %s, provider %s: at most 10 decimal places", m.ID, e.Provider)
			}
		}
		// The cheapest and the fastest endpoint are different providers.
		cheapest, fastest := m.Endpoints[0], m.Endpoints[0]
		for _, e := range m.Endpoints[1:] {
			if e.Pricing.Prompt.Add(e.Pricing.Completion).LessThan(cheapest.Pricing.Prompt.Add(cheapest.Pricing.Completion)) {
				cheapest = e
			}
			if e.Throughput > fastest.Throughput {
				fastest = e
			}
		}
		require.NotEqual(t, cheapest.Provider, fastest.Provider, "model %s: cheapest and fastest should differ", m.ID)
	}
	require.GreaterOrEqual(t, multi, 4, "models with at least 3 endpoints")
	for _, slug := range []string{"fireworks", "deepinfra", "groq", "together"} {
		p, ok := c.Provider(slug)
		require.True(t, ok, slug)
		require.Equal(t, "openai", p.API, slug)
		require.NotEmpty(t, p.BaseURL, slug)
	}
}

func TestParseEndpointProvenanceAndSpeed(t *testing.T) {
	t.Parallel()
	doc := func(extra string) string {
		return `{"providers":[{"slug":"p","name":"P","api":"openai","base_url":"http://x"}],
		"models":[{"id":"a/m","name":"M","endpoints":[{"provider":"p","upstream_model":"m","context_length":1` + extra + `}]}]}`
	}
	c, err := Parse([]byte(doc(`,"source":"estimate","updated_at":"2026-11-30","latency_ms":250,"throughput":120`)))
	require.NoError(t, err)
	m, _ := c.Model("a/m")
	e := m.Endpoints[0]
	require.Equal(t, "estimate", e.Source)
	require.Equal(t, "2026-11-30", e.UpdatedAt)
	require.Equal(t, 250, e.LatencyMs)
	require.Equal(t, 120, e.Throughput)
	_, err = Parse([]byte(doc(`,"latency_ms":0,"throughput":0`)))
	require.NoError(t, err, "0 means unknown")

	for _, tc := range []struct{ name, extra, want string }{
		{"bad updated_at", `,"updated_at":"30/11/2026"`, "updated_at"},
		{"updated_at with time", `,"updated_at":"2026-11-30T00:00:00Z"`, "updated_at"},
		{"impossible date", `,"updated_at":"2026-02-30"`, "updated_at"},
		{"negative latency", `,"latency_ms":-1`, "latency_ms must not be negative"},
		{"negative throughput", `,"throughput":-5`, "throughput must not be negative"},
		{"unknown field", `,"latency":5`, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(doc(tc.extra)))
			require.ErrorContains(t, err, tc.want)
			if tc.name != "unknown field" {
				require.ErrorContains(t, err, `model "a/m", provider "p"`)
			}
		})
	}
}

func TestPricingCostIsExact(t *testing.T) {
	t.Parallel()
	p := Pricing{
		Prompt:     decimal.RequireFromString("0.00000015"),
		Completion: decimal.RequireFromString("0.0000006"),
		Request:    decimal.RequireFromString("0.0001"),
	}
	// 3*0.00000015 + 195*0.0000006 + 0.0001, with no float rounding.
	require.Equal(t, "0.00021745", p.Cost(Tokens{Prompt: 3, Completion: 195}).String())
	require.True(t, p.Cost(Tokens{}).Equal(p.Request))
	// Without prices of their own, cached and reasoning tokens cost what
	// their parent class costs: the same total.
	require.Equal(t, "0.00021745", p.Cost(Tokens{Prompt: 3, CacheRead: 2, CacheWrite: 1, Completion: 195, Reasoning: 100}).String())
}

// TestPricingTokenClasses: golden costs per provider convention, every
// class at its own price and no token counted twice (the counts are in
// OpenAI's convention: prompt includes the cache classes, completion
// includes reasoning).
func TestPricingTokenClasses(t *testing.T) {
	t.Parallel()
	d := decimal.RequireFromString
	ptr := func(s string) *decimal.Decimal { v := d(s); return &v }
	cases := []struct {
		name  string
		p     Pricing
		t     Tokens
		cost  string
		parts [2]string
		bound string // Bound(1000, 100)
	}{
		{
			// Claude Sonnet 4: $3/M in, $15/M out, cache read $0.30/M, cache write $3.75/M.
			// 100 uncached + 2000 read + 500 written; 300 out of which 120 thinking.
			name: "anthropic cache read and write",
			p:    Pricing{Prompt: d("0.000003"), Completion: d("0.000015"), InputCacheRead: ptr("0.0000003"), InputCacheWrite: ptr("0.00000375")},
			t:    Tokens{Prompt: 2600, CacheRead: 2000, CacheWrite: 500, Completion: 300, Reasoning: 120},
			// 100*3e-6 + 2000*3e-7 + 500*3.75e-6 = 0.0003 + 0.0006 + 0.001875; 300*15e-6 = 0.0045
			parts: [2]string{"0.002775", "0.0045"}, cost: "0.007275",
			// every prompt token as a cache write: 1000*3.75e-6 + 100*15e-6
			bound: "0.00525",
		},
		{
			// GPT-4.1: $2/M in, cached $0.50/M, $8/M out; reasoning is output.
			name: "openai cached prompt",
			p:    Pricing{Prompt: d("0.000002"), Completion: d("0.000008"), InputCacheRead: ptr("0.0000005")},
			t:    Tokens{Prompt: 1500, CacheRead: 1024, Completion: 50, Reasoning: 30},
			// 476*2e-6 + 1024*5e-7 = 0.000952 + 0.000512; 50*8e-6
			parts: [2]string{"0.001464", "0.0004"}, cost: "0.001864",
			bound: "0.0028",
		},
		{
			// Gemini 2.5 Flash: $0.30/M in, cached $0.075/M, $2.50/M out, thoughts at the output price.
			name: "gemini cached and thinking",
			p:    Pricing{Prompt: d("0.0000003"), Completion: d("0.0000025"), InputCacheRead: ptr("0.000000075"), InternalReasoning: ptr("0.0000025")},
			t:    Tokens{Prompt: 4000, CacheRead: 3000, Completion: 900, Reasoning: 800},
			// 1000*3e-7 + 3000*7.5e-8 = 0.0003 + 0.000225; 100*2.5e-6 + 800*2.5e-6
			parts: [2]string{"0.000525", "0.00225"}, cost: "0.002775",
			bound: "0.00055",
		},
		{
			// A provider pricing reasoning apart (dearer than visible output).
			name: "reasoning priced apart",
			p:    Pricing{Prompt: d("0.000001"), Completion: d("0.000002"), InternalReasoning: ptr("0.000004"), Request: d("0.001")},
			t:    Tokens{Prompt: 10, Completion: 10, Reasoning: 4},
			// 10*1e-6; 6*2e-6 + 4*4e-6; + 0.001
			parts: [2]string{"0.00001", "0.000028"}, cost: "0.001038",
			bound: "0.0024",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prompt, completion := c.p.Parts(c.t)
			require.Equal(t, c.parts[0], prompt.String())
			require.Equal(t, c.parts[1], completion.String())
			require.Equal(t, c.cost, c.p.Cost(c.t).String())
			require.Equal(t, c.bound, c.p.Bound(1000, 100).String())
			require.True(t, c.p.Bound(c.t.Prompt, c.t.Completion).GreaterThanOrEqual(c.p.Cost(c.t)), "the bound covers every mix of classes")
		})
	}
}

func TestParseRejectsBadCatalogs(t *testing.T) {
	t.Parallel()
	prov := `{"slug":"p","name":"P","api":"openai","base_url":"http://x"}`
	ep := `{"provider":"p","upstream_model":"m","pricing":{"prompt":"0.1","completion":"0.2"},"context_length":10}`
	cases := []struct{ name, doc, want string }{
		{"unknown field", `{"providers":[` + prov + `],"models":[],"pricez":1}`, "unknown field"},
		{"bad api family", `{"providers":[{"slug":"p","name":"P","api":"soap"}],"models":[]}`, "api \"soap\""},
		{"bad base url", `{"providers":[{"slug":"p","name":"P","api":"openai","base_url":"ftp://x"}],"models":[]}`, "base_url"},
		{"bad compat value", `{"providers":[{"slug":"p","name":"P","api":"openai","compat":{"stream_usage":"sometimes"}}],"models":[]}`, "compat.stream_usage \"sometimes\" is not one of include_usage, always, none"},
		{"bad compat header", `{"providers":[{"slug":"p","name":"P","api":"openai","compat":{"auth_header":"x key"}}],"models":[]}`, "compat.auth_header"},
		{"bad compat field", `{"providers":[{"slug":"p","name":"P","api":"openai","compat":{"max_tokens_field":"max_output_tokens"}}],"models":[]}`, "compat.max_tokens_field"},
		{"compat outside the openai family", `{"providers":[{"slug":"p","name":"P","api":"anthropic","compat":{"reasoning_field":"reasoning_content"}}],"models":[]}`, "compat is for the openai and azure families"},
		{"model id without author", `{"providers":[` + prov + `],"models":[{"id":"m","name":"M","endpoints":[` + ep + `]}]}`, "author/slug"},
		{"endpoint of unknown provider", `{"providers":[` + prov + `],"models":[{"id":"a/m","name":"M","endpoints":[{"provider":"q","upstream_model":"m","context_length":1}]}]}`, "not in providers"},
		{"negative price", `{"providers":[` + prov + `],"models":[{"id":"a/m","name":"M","endpoints":[{"provider":"p","upstream_model":"m","pricing":{"prompt":"-1"},"context_length":1}]}]}`, "negative"},
		{"duplicate model", `{"providers":[` + prov + `],"models":[{"id":"a/m","name":"M","endpoints":[` + ep + `]},{"id":"a/m","name":"M","endpoints":[` + ep + `]}]}`, "twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.doc))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestLoadReplacesDefault(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "catalog.json")
	doc := `{"providers":[{"slug":"local","name":"Local vLLM","api":"openai","base_url":"http://127.0.0.1:8000/v1"}],
	"models":[{"id":"local/qwen","name":"Qwen","context_length":32768,"endpoints":[{"provider":"local","upstream_model":"Qwen/Qwen2.5-7B","pricing":{"prompt":"0","completion":"0"},"context_length":32768}]}]}`
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
	c, err := Load(path)
	require.NoError(t, err)
	require.Len(t, c.Models(), 1)
	_, ok := c.Model("openai/gpt-4o")
	require.False(t, ok, "a catalog file replaces the default, it does not merge")
}
