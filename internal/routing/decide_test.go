package routing

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/catalog"
)

// The fixture: model x/m at three providers that differ in price, speed,
// quantization, parameters and data policy, and x/n at one.
//
//	a: $1/M in and out, fp8,  500 ms TTFT,  50 tok/s, no tools, trains on data
//	b: $2/M,            bf16, 200 ms,      200 tok/s, tools, ZDR
//	c: $4/M,            none, 100 ms,      100 tok/s, tools, seed, reasoning
//	d (x/n): $3/M,      fp8,  300 ms,      100 tok/s
func fixture() [][]Candidate {
	prov := func(slug string, zdr, trains bool) *catalog.Provider {
		return &catalog.Provider{Slug: slug, Name: slug, API: "openai", DataPolicy: catalog.DataPolicy{ZDR: zdr, TrainsOnData: trains}}
	}
	ep := func(p string, perM string, quant string, ttft, tput int, params ...string) *catalog.Endpoint {
		price := decimal.RequireFromString(perM).Div(million)
		return &catalog.Endpoint{Provider: p, UpstreamModel: p, Pricing: catalog.Pricing{Prompt: price, Completion: price},
			ContextLength: 8000, Quantization: quant, LatencyMs: ttft, Throughput: tput, SupportedParameters: params}
	}
	m := &catalog.Model{ID: "x/m"}
	n := &catalog.Model{ID: "x/n"}
	pa, pb, pc, pd := prov("a", false, true), prov("b", true, false), prov("c", false, false), prov("d", false, false)
	return [][]Candidate{
		{
			{Model: m, Provider: pa, Endpoint: ep("a", "1", "fp8", 500, 50, "max_tokens", "temperature")},
			{Model: m, Provider: pb, Endpoint: ep("b", "2", "bf16", 200, 200, "max_tokens", "temperature", "tools")},
			{Model: m, Provider: pc, Endpoint: ep("c", "4", "", 100, 100, "max_tokens", "temperature", "tools", "seed", "reasoning")},
		},
		{{Model: n, Provider: pd, Endpoint: ep("d", "3", "fp8", 300, 100, "max_tokens")}},
	}
}

// health is a fixed Health.
type health map[string]Stats

func (h health) Stats(provider, _ string) Stats { return h[provider] }

func slugs(p Plan) []string {
	out := []string{}
	for _, c := range p.Candidates {
		out = append(out, c.Provider.Slug)
	}
	return out
}

func dec(s string) *decimal.Decimal { d := decimal.RequireFromString(s); return &d }

func noRand() float64 { panic("no random draw expected") }

// TestDecideDropsUnsupportedParameters: without require_parameters an
// endpoint is sent only the parameters it supports; the plan's candidate
// and the decision list what was dropped. Either name of a parameter with
// two is supported by an endpoint listing the other.
func TestDecideDropsUnsupportedParameters(t *testing.T) {
	t.Parallel()
	plan, d := decide(fixture()[:1], Facts{Strategy: Cheapest, Params: []string{"temperature", "seed", "include_reasoning", "max_completion_tokens"}}, nil, nil, noRand, nil)
	require.Equal(t, []string{"a", "b", "c"}, slugs(plan))
	drops := map[string][]string{}
	for _, c := range plan.Candidates {
		drops[c.Provider.Slug] = c.Drop
	}
	want := map[string][]string{"a": {"seed", "include_reasoning"}, "b": {"seed", "include_reasoning"}, "c": nil}
	require.Equal(t, want, drops)
	for _, s := range d.Candidates {
		require.Equal(t, want[s.Provider], s.Dropped, s.Provider)
	}
	// An endpoint that lists no parameters is sent them all.
	cands := fixture()[:1]
	cands[0][0].Endpoint.SupportedParameters = nil
	plan, _ = decide(cands, Facts{Strategy: Cheapest, Params: []string{"seed", "tools"}}, nil, nil, noRand, nil)
	require.Equal(t, "a", plan.Candidates[0].Provider.Slug)
	require.Empty(t, plan.Candidates[0].Drop)
}

func TestDecideFilters(t *testing.T) {
	t.Parallel()
	only := func(f Facts) Facts { return f }
	cases := []struct {
		name     string
		facts    Facts
		h        Health
		want     []string
		excluded map[string]string // provider -> reason
	}{
		{"none", only(Facts{Strategy: Cheapest}), nil, []string{"a", "b", "c"}, nil},
		{"provider:only", Facts{Strategy: Cheapest, Prefs: Prefs{Only: []string{"c", "b"}}}, nil, []string{"b", "c"}, map[string]string{"a": ReasonOnly}},
		{"provider:ignore", Facts{Strategy: Cheapest, Prefs: Prefs{Ignore: []string{"a"}}}, nil, []string{"b", "c"}, map[string]string{"a": ReasonIgnore}},
		{"quantization", Facts{Strategy: Cheapest, Prefs: Prefs{Quantizations: []string{"bf16", "unknown"}}}, nil, []string{"b", "c"}, map[string]string{"a": ReasonQuantization}},
		{"max_price prompt", Facts{Strategy: Cheapest, Prefs: Prefs{MaxPrice: &MaxPrice{Prompt: dec("2")}}}, nil, []string{"a", "b"}, map[string]string{"c": ReasonMaxPrice}},
		{"max_price exact boundary", Facts{Strategy: Cheapest, Prefs: Prefs{MaxPrice: &MaxPrice{Completion: dec("1.9999999999")}}}, nil, []string{"a"}, map[string]string{"b": ReasonMaxPrice, "c": ReasonMaxPrice}},
		{"max_price request", Facts{Strategy: Cheapest, Prefs: Prefs{MaxPrice: &MaxPrice{Request: dec("0")}}}, nil, []string{"a", "b", "c"}, nil},
		{"data_policy:training", Facts{Strategy: Cheapest, Prefs: Prefs{DataCollection: "deny"}}, nil, []string{"b", "c"}, map[string]string{"a": ReasonDataCollection}},
		{"data_policy:zdr", Facts{Strategy: Cheapest, Prefs: Prefs{ZDR: true}}, nil, []string{"b"}, map[string]string{"a": ReasonZDR, "c": ReasonZDR}},
		{"require_parameters", Facts{Strategy: Cheapest, Params: []string{"seed"}, Prefs: Prefs{RequireParameters: true}}, nil, []string{"c"}, map[string]string{"a": ReasonParameters, "b": ReasonParameters}},
		{"require_parameters, either name of the cap", Facts{Strategy: Cheapest, Params: []string{"max_completion_tokens"}, Prefs: Prefs{RequireParameters: true}}, nil, []string{"a", "b", "c"}, nil},
		{"parameters not required: dropped", Facts{Strategy: Cheapest, Params: []string{"seed"}}, nil, []string{"a", "b", "c"}, nil},
		{"tools are never dropped", Facts{Strategy: Cheapest, Params: []string{"tools"}}, nil, []string{"b", "c"}, map[string]string{"a": ReasonTools}},
		{"context_length", Facts{Strategy: Cheapest, PromptTokens: 7000, MaxOutput: 1001}, nil, []string{}, map[string]string{"a": ReasonContext, "b": ReasonContext, "c": ReasonContext}},
		{"context_length fits", Facts{Strategy: Cheapest, PromptTokens: 7000, MaxOutput: 1000}, nil, []string{"a", "b", "c"}, nil},
		{"circuit_open", Facts{Strategy: Cheapest}, health{"b": {CircuitOpen: true}}, []string{"a", "c"}, map[string]string{"b": ReasonCircuit}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			plan, d := decide(fixture()[:1], tc.facts, tc.h, nil, noRand, nil)
			require.Equal(t, tc.want, slugs(plan))
			got := map[string]string{}
			for _, x := range plan.Excluded {
				got[x.Provider] = x.Reason
			}
			if tc.excluded == nil {
				tc.excluded = map[string]string{}
			}
			require.Equal(t, tc.excluded, got)
			for _, s := range d.Candidates { // the decision says the same
				require.Equal(t, tc.excluded[s.Provider], s.ExcludedBy, s.Provider)
				require.Equal(t, s.ExcludedBy == "", s.Rank > 0, s.Provider)
			}
		})
	}
}

// policyFilter is a guardrail-style hook.
type policyFilter string

func (p policyFilter) Exclude(c *Candidate) string {
	if c.Provider.Slug == string(p) {
		return "guardrail:providers"
	}
	return ""
}

func TestDecideFilterHooks(t *testing.T) {
	t.Parallel()
	plan, _ := decide(fixture()[:1], Facts{Strategy: Cheapest}, nil, []Filter{policyFilter("a")}, noRand, nil)
	require.Equal(t, []string{"b", "c"}, slugs(plan))
	require.Equal(t, "guardrail:providers", plan.Excluded[0].Reason)
}

func TestDecideOrdering(t *testing.T) {
	t.Parallel()
	no := false
	slow := health{"b": {Known: true, SuccessRate: 1, TTFTMs: 3000, Throughput: 20}}
	cases := []struct {
		name  string
		two   bool // both models: x/m, then x/n
		facts Facts
		h     Health
		want  []string
	}{
		{"cheapest", false, Facts{Strategy: Cheapest}, nil, []string{"a", "b", "c"}},
		// expected time = TTFT + 1000 tokens / throughput: a 20.5 s, b 5.2 s, c 10.1 s
		{"fastest from catalog defaults", false, Facts{Strategy: Fastest}, nil, []string{"b", "c", "a"}},
		{"fastest learns from health", false, Facts{Strategy: Fastest}, slow, []string{"c", "a", "b"}},
		{"fastest with a small cap", false, Facts{Strategy: Fastest, MaxOutput: 10}, nil, []string{"c", "b", "a"}},
		{"reliable: success first, then time", false, Facts{Strategy: Reliable}, health{
			"a": {Known: true, SuccessRate: 0.99, TTFTMs: 500, Throughput: 50},
			"b": {Known: true, SuccessRate: 0.5, TTFTMs: 10, Throughput: 1000},
			"c": {Known: true, SuccessRate: 0.99, TTFTMs: 100, Throughput: 100}}, []string{"c", "a", "b"}},
		{"sort price", false, Facts{Strategy: Fastest, Prefs: Prefs{Sort: &Sort{By: SortPrice}}}, nil, []string{"a", "b", "c"}},
		{"sort throughput", false, Facts{Prefs: Prefs{Sort: &Sort{By: SortThroughput}}}, nil, []string{"b", "c", "a"}},
		{"sort latency", false, Facts{Prefs: Prefs{Sort: &Sort{By: SortLatency}}}, nil, []string{"c", "b", "a"}},
		{"order first, then the strategy", false, Facts{Strategy: Cheapest, Prefs: Prefs{Order: []string{"c"}}}, nil, []string{"c", "a", "b"}},
		{"order beats recent failure", false, Facts{Strategy: Cheapest, Prefs: Prefs{Order: []string{"a"}}}, health{"a": {RecentlyFail: true}}, []string{"a", "b", "c"}},
		{"recent failure last", false, Facts{Strategy: Cheapest}, health{"a": {RecentlyFail: true}}, []string{"b", "c", "a"}},
		{"preferred_min_throughput", false, Facts{Strategy: Cheapest, Prefs: Prefs{PreferredMinThroughput: 150}}, nil, []string{"b", "a", "c"}},
		{"preferred_max_latency", false, Facts{Strategy: Cheapest, Prefs: Prefs{PreferredMaxLatency: 0.15}}, nil, []string{"c", "a", "b"}},
		{"no fallbacks: first only", false, Facts{Strategy: Cheapest, Prefs: Prefs{AllowFallbacks: &no}}, nil, []string{"a"}},
		{"models in order (partition model)", true, Facts{Strategy: Cheapest}, nil, []string{"a", "b", "c", "d"}},
		{"partition none: across models", true, Facts{Prefs: Prefs{Sort: &Sort{By: SortPrice, Partition: PartitionNone}}}, nil, []string{"a", "b", "d", "c"}},
		{"no fallbacks keeps one per model", true, Facts{Strategy: Cheapest, Prefs: Prefs{AllowFallbacks: &no}}, nil, []string{"a", "d"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cands := fixture()
			if !tc.two {
				cands = cands[:1]
			}
			plan, d := decide(cands, tc.facts, tc.h, nil, noRand, nil)
			require.Equal(t, tc.want, slugs(plan))
			for i, c := range plan.Candidates { // ranks in the decision match the plan
				for _, s := range d.Candidates {
					if s.Provider == c.Provider.Slug {
						require.Equal(t, i+1, s.Rank)
					}
				}
			}
		})
	}
}

func TestDecideTiesBySlug(t *testing.T) {
	t.Parallel()
	cands := fixture()[:1]
	for i := range cands[0] {
		e := *cands[0][i].Endpoint
		e.Pricing = cands[0][0].Endpoint.Pricing
		cands[0][i].Endpoint = &e
	}
	slices.Reverse(cands[0])
	plan, _ := decide(cands, Facts{Strategy: Cheapest}, nil, nil, noRand, nil)
	require.Equal(t, []string{"a", "b", "c"}, slugs(plan))
}

func TestDecideSessionSticks(t *testing.T) {
	t.Parallel()
	sticky := func(string) (string, bool) { return "x/m@c", true }
	plan, d := decide(fixture()[:1], Facts{Strategy: Cheapest, Session: "s"}, nil, nil, noRand, sticky)
	require.Equal(t, []string{"c", "a", "b"}, slugs(plan))
	require.True(t, d.Session)
	// Not while it fails.
	plan, d = decide(fixture()[:1], Facts{Strategy: Cheapest, Session: "s"}, health{"c": {RecentlyFail: true}}, nil, noRand, sticky)
	require.Equal(t, []string{"a", "b", "c"}, slugs(plan))
	require.False(t, d.Session)
}

// TestBalancedConvergesToWeights: over many draws, each endpoint comes
// first in proportion to 1/price² (a $1, b $2, c $4: 16:4:1).
func TestBalancedConvergesToWeights(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 9))
	first := map[string]int{}
	const n = 40000
	for range n {
		plan, _ := decide(fixture()[:1], Facts{}, nil, nil, r.Float64, nil)
		require.Len(t, plan.Candidates, 3)
		first[plan.Candidates[0].Provider.Slug]++
	}
	want := map[string]float64{"a": 16.0 / 21, "b": 4.0 / 21, "c": 1.0 / 21}
	for slug, w := range want {
		got := float64(first[slug]) / n
		require.InDelta(t, w, got, 0.01, "%s first in %.3f of draws, want %.3f", slug, got, w)
	}
}

func TestBalancedPutsFailingLast(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 1))
	for range 200 {
		plan, _ := decide(fixture()[:1], Facts{}, health{"a": {RecentlyFail: true}}, nil, r.Float64, nil)
		require.Equal(t, "a", plan.Candidates[2].Provider.Slug)
	}
}

// TestDecideProperties: for random preferences, a plan never holds an
// excluded endpoint, every endpoint is either planned or excluded, and a
// deterministic strategy gives the same order whatever the input order.
func TestDecideProperties(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	pick := func(xs ...string) []string {
		var out []string
		for _, x := range xs {
			if r.IntN(3) == 0 {
				out = append(out, x)
			}
		}
		return out
	}
	strategies := []string{Cheapest, Fastest, Reliable}
	for range 2000 {
		f := Facts{
			Strategy:     strategies[r.IntN(len(strategies))],
			PromptTokens: r.IntN(8000), MaxOutput: r.IntN(2000),
			Params: pick("tools", "temperature", "seed"),
			Prefs: Prefs{Only: pick("a", "b", "c", "d"), Ignore: pick("a", "b", "c", "d"), Order: pick("c", "a", "d"),
				Quantizations: pick("fp8", "bf16", "unknown"), ZDR: r.IntN(4) == 0, RequireParameters: r.IntN(2) == 0,
				PreferredMinThroughput: float64(r.IntN(300))},
		}
		if r.IntN(3) == 0 {
			f.Prefs.MaxPrice = &MaxPrice{Prompt: dec([]string{"1", "2", "3", "4"}[r.IntN(4)])}
		}
		h := health{"b": {Known: true, SuccessRate: r.Float64(), TTFTMs: float64(r.IntN(1000)), Throughput: float64(1 + r.IntN(300)), CircuitOpen: r.IntN(5) == 0}}
		cands := fixture()
		plan, d := decide(cands, f, h, nil, noRand, nil)
		excluded := map[string]bool{}
		for _, x := range plan.Excluded {
			excluded[x.Provider] = true
		}
		for _, c := range plan.Candidates {
			require.False(t, excluded[c.Provider.Slug], "%+v", f)
		}
		require.Equal(t, 4, len(plan.Candidates)+len(plan.Excluded))
		require.Len(t, d.Candidates, 4)

		shuffled := fixture()
		for _, g := range shuffled {
			r.Shuffle(len(g), func(i, j int) { g[i], g[j] = g[j], g[i] })
		}
		again, _ := decide(shuffled, f, h, nil, noRand, nil)
		require.Equal(t, slugs(plan), slugs(again), "%+v", f)
	}
}

// TestCheapestScoresExpectedCost: the cheapest key is the expected cost
// of this request's tokens (an ordering estimate; charges use exact
// decimals), and the decision names it.
func TestCheapestScoresExpectedCost(t *testing.T) {
	t.Parallel()
	_, d := decide(fixture()[:1], Facts{Strategy: Cheapest, PromptTokens: 3, MaxOutput: 7}, nil, nil, noRand, nil)
	require.Equal(t, "expected_cost_usd", d.Key)
	require.InDelta(t, 0.00001, d.Candidates[0].Score, 1e-15) // 10 tokens × $1/M
	require.False(t, math.IsNaN(d.Candidates[0].Score))
}
