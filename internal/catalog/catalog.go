// Package catalog holds what Perpetuo knows about the world: providers (with
// their API family and data policy), models, and each model's endpoints (the
// upstream model id, exact per-token prices, limits, supported parameters).
//
// A Catalog is immutable once loaded; replacing it means loading a new one.
// Prices are decimals in OpenRouter's units (USD per token, per request), so
// costs computed from them are exact.
package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/shopspring/decimal"
)

// Provider is an upstream company or server that serves models.
type Provider struct {
	Slug       string     `json:"slug"`
	Name       string     `json:"name"`
	API        string     `json:"api"` // the wire family its adapter speaks: "openai", "anthropic", "gemini"
	BaseURL    string     `json:"base_url"`
	DataPolicy DataPolicy `json:"data_policy"`
	// Demo marks Perpetuo's own mock upstream, shown as such everywhere.
	Demo bool `json:"demo,omitempty"`
	// Compat is how the provider departs from OpenAI's wire format.
	Compat Compat `json:"compat,omitzero"`
}

// Compat declares an OpenAI-compatible provider's quirks; the zero value is
// OpenAI's own Chat Completions behaviour as most compatible servers
// implement it.
type Compat struct {
	// AuthHeader is the header the key goes in: "" or "authorization" as
	// "Bearer <key>"; any other name (api-key, x-api-key) carries the key
	// as it is.
	AuthHeader string `json:"auth_header,omitempty"`
	// MaxTokensField is the name the provider reads the output cap from:
	// "max_tokens" (the default) or "max_completion_tokens". A client's
	// cap under either name is sent under this one.
	MaxTokensField string `json:"max_tokens_field,omitempty"`
	// StreamUsage is how a stream reports usage: "include_usage" (the
	// default: when stream_options.include_usage asks), "always" (unasked,
	// and stream_options is refused), "none" (never: usage is estimated).
	StreamUsage string `json:"stream_usage,omitempty"`
	// ReasoningField is where the provider puts reasoning text in a message
	// and a delta: "reasoning" (the default, OpenRouter's) or
	// "reasoning_content" (DeepSeek's, vLLM's, xAI's); clients always get
	// it as reasoning.
	ReasoningField string `json:"reasoning_field,omitempty"`
}

// The values of Compat's fields.
const (
	StreamUsageAsked  = "include_usage"
	StreamUsageAlways = "always"
	StreamUsageNone   = "none"
	ReasoningContent  = "reasoning_content"
)

// MaxTokens is the name of the output cap's field.
func (c Compat) MaxTokens() string {
	if c.MaxTokensField == "" {
		return "max_tokens"
	}
	return c.MaxTokensField
}

// DataPolicy is what a provider (or one endpoint, or a workspace
// credential's own base URL) does with prompts and outputs. What is not
// stated fails closed: not ZDR, trains on data, retention unknown (-1).
type DataPolicy struct {
	ZDR           bool `json:"zdr"`
	TrainsOnData  bool `json:"trains_on_data"`
	RetentionDays int  `json:"retention_days"` // -1: unknown
	// Source is where the policy was read (the provider's published
	// policy page, "openrouter /endpoints/zdr", or "declared" for a
	// credential's), and UpdatedAt the date (YYYY-MM-DD) it was checked.
	Source    string `json:"source,omitempty"`
	UpdatedAt string `json:"updated_at,omitempty"`
}

// Unknown is the policy of a provider nothing is known about: it retains
// and trains.
var Unknown = DataPolicy{TrainsOnData: true, RetentionDays: -1}

// UnmarshalJSON reads a policy; the fields it lacks fail closed.
func (d *DataPolicy) UnmarshalJSON(b []byte) error {
	type plain DataPolicy
	x := plain(Unknown)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&x); err != nil {
		return err
	}
	*d = DataPolicy(x)
	return nil
}

// UnmarshalJSON reads a provider; without a data_policy it retains and
// trains.
func (p *Provider) UnmarshalJSON(b []byte) error {
	type plain Provider
	x := plain{DataPolicy: Unknown}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&x); err != nil {
		return err
	}
	*p = Provider(x)
	return nil
}

// Policy is the data policy of endpoint e of provider p: the endpoint's own
// where it differs, else the provider's.
func Policy(p *Provider, e *Endpoint) DataPolicy {
	if e != nil && e.DataPolicy != nil {
		return *e.DataPolicy
	}
	return p.DataPolicy
}

// Model is a model as clients name it ("author/slug"), with the endpoints
// that serve it.
type Model struct {
	ID               string     `json:"id"`
	Name             string     `json:"name"`
	Created          int64      `json:"created"`
	Description      string     `json:"description,omitempty"`
	ContextLength    int        `json:"context_length"`
	InputModalities  []string   `json:"input_modalities"`
	OutputModalities []string   `json:"output_modalities"`
	Tokenizer        string     `json:"tokenizer,omitempty"`
	Endpoints        []Endpoint `json:"endpoints"`
}

// Endpoint is one provider's offer of a model.
type Endpoint struct {
	Provider            string   `json:"provider"`
	UpstreamModel       string   `json:"upstream_model"`
	Pricing             Pricing  `json:"pricing"`
	ContextLength       int      `json:"context_length"`
	MaxCompletionTokens int      `json:"max_completion_tokens,omitempty"`
	Quantization        string   `json:"quantization,omitempty"`
	SupportedParameters []string `json:"supported_parameters,omitempty"`
	// Source says where the prices and limits came from (a pricing page URL,
	// "openrouter /models/{id}/endpoints", or "estimate").
	Source string `json:"source,omitempty"`
	// UpdatedAt is the date (YYYY-MM-DD) they were last checked.
	UpdatedAt string `json:"updated_at,omitempty"`
	// LatencyMs is the typical time to first token in milliseconds, and
	// Throughput the typical output tokens per second: defaults the router
	// uses before it has live measurements. 0 means unknown.
	LatencyMs  int `json:"latency_ms,omitempty"`
	Throughput int `json:"throughput,omitempty"`
	// DataPolicy overrides the provider's for this endpoint, where it
	// differs (a provider that is ZDR for some of its models only).
	DataPolicy *DataPolicy `json:"data_policy,omitempty"`
}

// Pricing is USD per token (Prompt, Completion) and per request (Request),
// with the token classes some providers price apart: cache reads and writes
// (prompt tokens) and internal reasoning (completion tokens). A class
// without a price of its own costs what its parent class costs.
type Pricing struct {
	Prompt            decimal.Decimal  `json:"prompt"`
	Completion        decimal.Decimal  `json:"completion"`
	Request           decimal.Decimal  `json:"request"`
	InputCacheRead    *decimal.Decimal `json:"input_cache_read,omitempty"`
	InputCacheWrite   *decimal.Decimal `json:"input_cache_write,omitempty"`
	InternalReasoning *decimal.Decimal `json:"internal_reasoning,omitempty"`
}

// Tokens are a call's token counts in OpenAI's convention, whatever the
// provider's: Prompt includes CacheRead and CacheWrite, Completion
// includes Reasoning. Adapters convert to it (Anthropic's input_tokens
// exclude cached ones; Gemini's candidates exclude thoughts), so pricing
// has one set of disjoint classes: uncached prompt, cache read, cache
// write, reasoning, the rest of the completion.
type Tokens struct {
	Prompt, Completion, CacheRead, CacheWrite, Reasoning int
}

// Approx is the prices as floats, for ordering endpoints (never for
// charging: Cost is exact).
func (p Pricing) Approx() (prompt, completion, request float64) {
	return p.Prompt.InexactFloat64(), p.Completion.InexactFloat64(), p.Request.InexactFloat64()
}

// Cost is the exact price of a call with these token counts: its Parts
// and the per-request price.
func (p Pricing) Cost(t Tokens) decimal.Decimal {
	prompt, completion := p.Parts(t)
	return prompt.Add(completion).Add(p.Request)
}

// Parts are the exact prices of the prompt and of the completion tokens,
// each class at its own price. Counts outside their parent (more cached
// than prompt tokens) are the caller's to clamp; here a class never goes
// below zero.
func (p Pricing) Parts(t Tokens) (prompt, completion decimal.Decimal) {
	read, write := max(t.CacheRead, 0), max(t.CacheWrite, 0)
	uncached := max(t.Prompt-read-write, 0)
	reasoning := max(t.Reasoning, 0)
	visible := max(t.Completion-reasoning, 0)
	prompt = times(p.Prompt, uncached).Add(times(or(p.InputCacheRead, p.Prompt), read)).
		Add(times(or(p.InputCacheWrite, p.Prompt), write))
	completion = times(p.Completion, visible).Add(times(or(p.InternalReasoning, p.Completion), reasoning))
	return prompt, completion
}

// Bound is the most a call with at most prompt and output tokens can cost:
// every prompt token at the dearest prompt class (a cache write costs more
// than a plain token at Anthropic) and every output token at the dearest
// completion class.
func (p Pricing) Bound(prompt, output int) decimal.Decimal {
	in := decimal.Max(p.Prompt, or(p.InputCacheRead, p.Prompt), or(p.InputCacheWrite, p.Prompt))
	out := decimal.Max(p.Completion, or(p.InternalReasoning, p.Completion))
	return times(in, prompt).Add(times(out, output)).Add(p.Request)
}

// negative reports a negative price in any class.
func (p Pricing) negative() bool {
	for _, d := range []*decimal.Decimal{&p.Prompt, &p.Completion, &p.Request, p.InputCacheRead, p.InputCacheWrite, p.InternalReasoning} {
		if d != nil && d.IsNegative() {
			return true
		}
	}
	return false
}

func times(price decimal.Decimal, n int) decimal.Decimal {
	return price.Mul(decimal.NewFromInt(int64(n)))
}

func or(d *decimal.Decimal, def decimal.Decimal) decimal.Decimal {
	if d == nil {
		return def
	}
	return *d
}

// Catalog is an immutable, indexed set of providers and models.
type Catalog struct {
	providers map[string]*Provider
	models    map[string]*Model
	order     []string // model ids, sorted
}

// Provider returns the provider with that slug.
func (c *Catalog) Provider(slug string) (*Provider, bool) {
	p, ok := c.providers[slug]
	return p, ok
}

// Model returns the model with that id.
func (c *Catalog) Model(id string) (*Model, bool) {
	m, ok := c.models[id]
	return m, ok
}

// Models returns every model, sorted by id.
func (c *Catalog) Models() []*Model {
	out := make([]*Model, len(c.order))
	for i, id := range c.order {
		out[i] = c.models[id]
	}
	return out
}

// Providers returns every provider, sorted by slug.
func (c *Catalog) Providers() []*Provider {
	out := make([]*Provider, 0, len(c.providers))
	for _, p := range c.providers {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Slug < out[j].Slug })
	return out
}

// New indexes and validates providers and models.
func New(providers []Provider, models []Model) (*Catalog, error) {
	c := &Catalog{providers: map[string]*Provider{}, models: map[string]*Model{}}
	for i := range providers {
		p := &providers[i]
		if err := p.validate(); err != nil {
			return nil, err
		}
		if _, dup := c.providers[p.Slug]; dup {
			return nil, fmt.Errorf("provider %q: listed twice", p.Slug)
		}
		c.providers[p.Slug] = p
	}
	for i := range models {
		m := &models[i]
		if err := c.validateModel(m); err != nil {
			return nil, err
		}
		if _, dup := c.models[m.ID]; dup {
			return nil, fmt.Errorf("model %q: listed twice", m.ID)
		}
		c.models[m.ID] = m
		c.order = append(c.order, m.ID)
	}
	sort.Strings(c.order)
	return c, nil
}
