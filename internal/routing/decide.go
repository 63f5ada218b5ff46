package routing

import (
	"cmp"
	"math"
	"slices"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/internal/catalog"
)

// Strategies order the endpoints that pass the filters.
const (
	Cheapest = "cheapest" // lowest expected cost of this request
	Fastest  = "fastest"  // shortest expected completion time
	Reliable = "reliable" // highest recent success rate, then latency
	Balanced = "balanced" // price-weighted random among healthy endpoints (the default)
)

// Sort keys of OpenRouter's provider.sort, and their partitions.
const (
	SortPrice      = "price"
	SortThroughput = "throughput"
	SortLatency    = "latency"

	PartitionModel = "model" // order within each model, models in order (the default)
	PartitionNone  = "none"  // order every endpoint of every model together
)

// Reasons the core adds to those of the planner (routing.go).
const (
	ReasonQuantization = "quantization"
	ReasonMaxPrice     = "max_price"
	ReasonParameters   = "require_parameters"
	ReasonTools        = "tools"
	ReasonContext      = "context_length"
	ReasonCircuit      = "circuit_open"
)

// MaxPrice is provider.max_price: USD per million prompt or completion
// tokens, and per request. Nil fields do not limit.
type MaxPrice struct {
	Prompt, Completion, Request *decimal.Decimal
}

// Sort is provider.sort.
type Sort struct {
	By        string // SortPrice, SortThroughput or SortLatency
	Partition string // PartitionModel (default) or PartitionNone
}

// Stats is what health knows of one endpoint. Known is false before any
// traffic; zero speeds are unmeasured. The core uses the catalog's
// defaults for what is not measured.
type Stats struct {
	Known        bool
	SuccessRate  float64 // 0..1 over the recent window
	TTFTMs       float64 // time to first token (moving average)
	Throughput   float64 // output tokens per second (moving average)
	CircuitOpen  bool    // refused until its cool-down ends
	RecentlyFail bool    // failed within the last minute: tried after the others
}

// Health reports endpoint statistics; the zero value of Stats is "unknown".
type Health interface {
	Stats(provider, model string) Stats
}

// Filter is a hook for policy filters (guardrails): Exclude names the
// reason an endpoint is left out, or "" to keep it.
type Filter interface {
	Exclude(c *Candidate) string
}

// Facts are what the core decides from, besides the candidates.
type Facts struct {
	Strategy string // "" = Balanced
	Prefs    Prefs
	// PromptTokens estimates the prompt (a quarter of the body's bytes,
	// JSON included): the expected cost, and context_length, which leaves
	// out endpoints whose context it plus the output cap exceeds.
	PromptTokens int
	MaxOutput    int // the request's output cap, 0 when unset
	// Params are the routing parameters the request sets: each endpoint
	// is sent only those its supported_parameters lists (the others are
	// dropped, or it is excluded under require_parameters; without tools
	// support it is excluded when the request has tools).
	Params  []string
	Session string // session_id: stay on its endpoint while healthy
	// Filters are the policy's (guardrails' provider lists), applied after
	// the request's own.
	Filters []Filter
	// ZDRBy names who required zero data retention ("request", "key",
	// "guardrail:<name>", "workspace") when Prefs.ZDR is set, for the
	// decision and the refusal.
	ZDRBy []string
}

// expectedOutput is the output the cost and time estimates assume when the
// request sets no cap.
const expectedOutput = 1000

// Scored is one candidate as the decision saw it.
type Scored struct {
	Model      string `json:"model"`
	Provider   string `json:"provider"`
	ExcludedBy string `json:"excluded_by,omitempty"`
	// Dropped are the request's parameters the endpoint does not support,
	// removed from what it is sent.
	Dropped []string `json:"dropped_parameters,omitempty"`
	Score   float64  `json:"score"`          // the strategy's key, lower is better (see Decision.Key)
	Rank    int      `json:"rank,omitempty"` // 1-based position in the plan, 0 when not in it
}

// Decision explains a plan: the strategy and its inputs, and every
// candidate with its score or the filter that excluded it.
type Decision struct {
	Strategy string `json:"strategy"`
	// Key says what Score is: expected_cost_usd, expected_ms (time to
	// first token plus the expected output at the endpoint's throughput),
	// failure_rate_then_ms, -throughput, ttft_ms, or draw (the balanced
	// draw's position).
	Key          string   `json:"key"`
	Sort         string   `json:"sort,omitempty"`
	Partition    string   `json:"partition,omitempty"`
	Order        []string `json:"order,omitempty"` // provider.order
	Fallbacks    bool     `json:"allow_fallbacks"`
	PromptTokens int      `json:"prompt_tokens"`
	MaxOutput    int      `json:"max_output,omitempty"`
	Session      bool     `json:"session,omitempty"`
	// ZDRRequiredBy: only zero-data-retention endpoints could serve, as
	// these required.
	ZDRRequiredBy []string `json:"zdr_required_by,omitempty"`
	Candidates    []Scored `json:"candidates"`
}

// entry is a candidate under decision.
type entry struct {
	c        *Candidate
	modelIdx int
	rank     int     // in provider.order; len(Order) when absent
	costF    float64 // expected USD: ordering only, never charged
	ttft     float64 // ms
	tput     float64 // tokens/s
	success  float64
	failing  bool
	preferOK bool
	score    float64
	scored   int // index in Decision.Candidates
}

// decide filters and orders the candidates of models (in models[] order)
// and returns the plan and its explanation. rnd draws balanced orders.
func decide(cands [][]Candidate, f Facts, h Health, extra []Filter, rnd func() float64, sticky func(string) (string, bool)) (Plan, Decision) {
	p := f.Prefs
	d := Decision{Strategy: cmp.Or(f.Strategy, Balanced), Order: p.Order, Fallbacks: p.Fallbacks(),
		PromptTokens: f.PromptTokens, MaxOutput: f.MaxOutput}
	if p.ZDR {
		d.ZDRRequiredBy = f.ZDRBy
		if len(d.ZDRRequiredBy) == 0 {
			d.ZDRRequiredBy = []string{"request"}
		}
	}
	if p.Sort != nil {
		d.Sort, d.Partition = p.Sort.By, cmp.Or(p.Sort.Partition, PartitionModel)
	}
	total := 0
	for _, g := range cands {
		total += len(g)
	}
	var plan Plan
	d.Candidates = make([]Scored, 0, total)
	live := make([]entry, 0, total)
	for mi := range cands {
		for ci := range cands[mi] {
			c := &cands[mi][ci]
			var st Stats
			if h != nil {
				st = h.Stats(c.Provider.Slug, c.Model.ID)
			}
			s := Scored{Model: c.Model.ID, Provider: c.Provider.Slug}
			if reason := exclude(c, f, st, extra); reason != "" {
				s.ExcludedBy = reason
				d.Candidates = append(d.Candidates, s)
				plan.Excluded = append(plan.Excluded, Exclusion{Model: c.Model.ID, Provider: c.Provider.Slug, Reason: reason})
				continue
			}
			c.Drop = unsupported(c.Endpoint.SupportedParameters, f.Params)
			s.Dropped = c.Drop
			e := measure(c, f, st)
			e.modelIdx, e.scored = mi, len(d.Candidates)
			d.Candidates = append(d.Candidates, s)
			live = append(live, e)
		}
	}
	d.Key = order(live, f, d, rnd)
	if f.Session != "" && sticky != nil {
		if key, ok := sticky(f.Session); ok {
			for i, e := range live {
				if endpointKey(*e.c) == key && !e.failing {
					d.Session = true
					copy(live[1:i+1], live[:i])
					live[0] = e
					break
				}
			}
		}
	}
	if !d.Fallbacks { // only the first endpoint of each model (models[] still falls back)
		kept := live[:0]
		var seen []int
		for _, e := range live {
			if !slices.Contains(seen, e.modelIdx) {
				seen = append(seen, e.modelIdx)
				kept = append(kept, e)
			}
		}
		live = kept
	}
	plan.Candidates = make([]Candidate, len(live))
	for i, e := range live {
		d.Candidates[e.scored].Score = e.score
		d.Candidates[e.scored].Rank = i + 1
		plan.Candidates[i] = *e.c
	}
	return plan, d
}

func endpointKey(c Candidate) string { return c.Model.ID + "@" + c.Provider.Slug }

// exclude names the first filter that removes c, or "".
func exclude(c *Candidate, f Facts, st Stats, extra []Filter) string {
	p, e := f.Prefs, c.Endpoint
	switch {
	case len(p.Only) > 0 && !slices.Contains(p.Only, c.Provider.Slug):
		return ReasonOnly
	case slices.Contains(p.Ignore, c.Provider.Slug):
		return ReasonIgnore
	case len(p.Quantizations) > 0 && !slices.Contains(p.Quantizations, cmp.Or(e.Quantization, "unknown")):
		return ReasonQuantization
	case p.MaxPrice != nil && overPrice(e.Pricing, *p.MaxPrice):
		return ReasonMaxPrice
	case p.DataCollection == "deny" && c.DataPolicy().TrainsOnData:
		return ReasonDataCollection
	case p.ZDR && !c.DataPolicy().ZDR:
		return ReasonZDR
	case p.RequireParameters && !supportsAll(e.SupportedParameters, f.Params):
		return ReasonParameters
	case len(e.SupportedParameters) > 0 && slices.Contains(f.Params, "tools") && !supports(e.SupportedParameters, "tools"):
		return ReasonTools
	case e.ContextLength > 0 && f.PromptTokens+f.MaxOutput > e.ContextLength:
		return ReasonContext
	}
	for _, x := range extra {
		if r := x.Exclude(c); r != "" {
			return r
		}
	}
	if st.CircuitOpen {
		return ReasonCircuit
	}
	return ""
}

var million = decimal.NewFromInt(1_000_000)

// overPrice compares per-token prices with limits per million tokens.
func overPrice(pr catalog.Pricing, m MaxPrice) bool {
	return m.Prompt != nil && pr.Prompt.Mul(million).GreaterThan(*m.Prompt) ||
		m.Completion != nil && pr.Completion.Mul(million).GreaterThan(*m.Completion) ||
		m.Request != nil && pr.Request.GreaterThan(*m.Request)
}

// paramAliases are parameters with two names (OpenAI's older and newer,
// OpenRouter's two reasoning switches): an endpoint supporting either
// supports both.
var paramAliases = map[string]string{
	"max_tokens": "max_completion_tokens", "max_completion_tokens": "max_tokens",
	"reasoning": "include_reasoning", "include_reasoning": "reasoning",
}

// supports reports whether an endpoint's supported_parameters has param
// under either of its names.
func supports(supported []string, param string) bool {
	return slices.Contains(supported, param) ||
		paramAliases[param] != "" && slices.Contains(supported, paramAliases[param])
}

// supportsAll is require_parameters' test: every used parameter listed (an
// endpoint that lists none supports none, as far as anyone said).
func supportsAll(supported, used []string) bool {
	for _, u := range used {
		if !supports(supported, u) {
			return false
		}
	}
	return true
}

// unsupported lists the used parameters an endpoint does not support and
// that can be dropped from what it is sent: not the output cap (the
// gateway writes it under the name the provider reads, and a budget's
// bound depends on it) and not tools (an endpoint without them is
// excluded instead: an answer without the tools is not the one asked for).
// An endpoint that lists no parameters is sent them all.
func unsupported(supported, used []string) []string {
	if len(supported) == 0 {
		return nil
	}
	var out []string
	for _, u := range used {
		switch u {
		case "max_tokens", "max_completion_tokens", "tools":
			continue
		}
		if !supports(supported, u) {
			out = append(out, u)
		}
	}
	return out
}

// measure fills an entry's expected cost and speed: live health when
// measured, the catalog's defaults before that.
func measure(c *Candidate, f Facts, st Stats) entry {
	out := f.MaxOutput
	if out == 0 {
		out = expectedOutput
	}
	in, o, req := c.Endpoint.Pricing.Approx()
	e := entry{c: c, costF: in*float64(f.PromptTokens) + o*float64(out) + req, success: 1, failing: st.RecentlyFail}
	e.ttft, e.tput = float64(c.Endpoint.LatencyMs), float64(c.Endpoint.Throughput)
	e.rank = len(f.Prefs.Order)
	if i := slices.Index(f.Prefs.Order, c.Provider.Slug); i >= 0 {
		e.rank = i
	}
	if st.Known {
		e.success = st.SuccessRate
		if st.TTFTMs > 0 { // measured speeds replace the catalog's
			e.ttft = st.TTFTMs
		}
		if st.Throughput > 0 {
			e.tput = st.Throughput
		}
	}
	if e.ttft <= 0 {
		e.ttft = unknownTTFT
	}
	if e.tput <= 0 {
		e.tput = unknownThroughput
	}
	p := f.Prefs
	e.preferOK = (p.PreferredMinThroughput <= 0 || e.tput >= p.PreferredMinThroughput) &&
		(p.PreferredMaxLatency <= 0 || e.ttft <= p.PreferredMaxLatency*1000)
	return e
}

// Speeds assumed for an endpoint nobody measured and the catalog does not
// describe: slow enough that any known endpoint ranks before it.
const (
	unknownTTFT       = 5000 // ms
	unknownThroughput = 10   // tokens/s
)

// order sorts live in place: provider.order first, then by the sort key
// or strategy (per model unless partition is none), preferences that are
// not met and recent failures last. It returns what the scores are.
func order(live []entry, f Facts, d Decision, rnd func() float64) string {
	keyName, key, random := scoreFunc(f, d)
	for i := range live {
		live[i].score = key(&live[i], f)
	}
	if random {
		drawBalanced(live, rnd)
	}
	byModel := d.Partition != PartitionNone
	slices.SortStableFunc(live, func(a, b entry) int {
		if byModel && a.modelIdx != b.modelIdx {
			return cmp.Compare(a.modelIdx, b.modelIdx)
		}
		if a.rank != b.rank {
			return cmp.Compare(a.rank, b.rank)
		}
		if a.failing != b.failing {
			return boolOrder(a.failing)
		}
		if a.preferOK != b.preferOK {
			return boolOrder(!a.preferOK)
		}
		if random {
			return 0 // keep the draw's order
		}
		if r := cmp.Compare(a.score, b.score); r != 0 {
			return r
		}
		if r := cmp.Compare(a.costF, b.costF); r != 0 {
			return r
		}
		return strings.Compare(a.c.Provider.Slug, b.c.Provider.Slug)
	})
	return keyName
}

func boolOrder(aLast bool) int {
	if aLast {
		return 1
	}
	return -1
}

// scoreFunc is the ordering key (lower is better) of the sort or
// strategy in force, with its name; random says the order is a balanced
// draw.
func scoreFunc(f Facts, d Decision) (string, func(*entry, Facts) float64, bool) {
	by := d.Sort
	if by == "" {
		switch d.Strategy {
		case Cheapest:
			by = SortPrice
		case Fastest:
			return "expected_ms", func(e *entry, f Facts) float64 { return expectedMs(e, f) }, false
		case Reliable:
			// Failure rate first; latency breaks ties (a millisecond never
			// outweighs a thousandth of success rate).
			return "failure_rate_then_ms", func(e *entry, f Facts) float64 { return (1-e.success)*1e9 + expectedMs(e, f) }, false
		default:
			return "draw", func(e *entry, f Facts) float64 { return e.costF }, true
		}
	}
	switch by {
	case SortThroughput:
		return "-throughput", func(e *entry, f Facts) float64 { return -e.tput }, false
	case SortLatency:
		return "ttft_ms", func(e *entry, f Facts) float64 { return e.ttft }, false
	}
	return "expected_cost_usd", func(e *entry, f Facts) float64 { return e.costF }, false
}

// expectedMs is the time to first token plus the expected output at the
// endpoint's throughput.
func expectedMs(e *entry, f Facts) float64 {
	out := f.MaxOutput
	if out == 0 || out > expectedOutput {
		out = expectedOutput
	}
	return e.ttft + float64(out)/e.tput*1000
}

// drawBalanced orders live by successive weighted draws without
// replacement, weight 1/price² (OpenRouter's load balancing): cheaper
// endpoints come first more often, dearer ones still get traffic. Free
// endpoints share the first places evenly.
func drawBalanced(live []entry, rnd func() float64) {
	n := len(live)
	if n < 2 {
		return
	}
	weights := make([]float64, n)
	minPositive := math.Inf(1)
	for _, e := range live {
		if e.costF > 0 && e.costF < minPositive {
			minPositive = e.costF
		}
	}
	for i, e := range live {
		switch {
		case e.costF > 0:
			r := minPositive / e.costF // normalised, so weights stay in range
			weights[i] = r * r
		default:
			weights[i] = 1e6 // free: ahead of any paid endpoint
		}
	}
	for i := 0; i < n-1; i++ {
		total := 0.0
		for _, w := range weights[i:] {
			total += w
		}
		x := rnd() * total
		j := i
		for ; j < n-1; j++ {
			x -= weights[j]
			if x < 0 {
				break
			}
		}
		live[i], live[j] = live[j], live[i]
		weights[i], weights[j] = weights[j], weights[i]
	}
	for i := range live {
		live[i].score = float64(i) // the draw's order, for the record
	}
}
