// Package gateway is the inference pipeline: plan the endpoints for a
// request, call them in order until one answers, relay the answer (JSON or
// SSE) with Perpetuo's additions (generation id, provider, model, exact cost),
// and record the generation off the critical path.
//
// Fallback happens only before any data reached the client: on a retryable
// failure (no answer, timeout, 429, 5xx) the next endpoint is tried, unless
// the request disabled fallbacks. A stream's failure is a plain HTTP error
// while nothing was sent; once anything was (a keep-alive comment during a
// silent upstream, or a chunk), it becomes an in-band error chunk.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/shopspring/decimal"
	"go.opentelemetry.io/otel/trace"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/attribution"
	"github.com/perpetuo/perpetuo/internal/budget"
	"github.com/perpetuo/perpetuo/internal/ids"
	"github.com/perpetuo/perpetuo/internal/jsonedit"
	"github.com/perpetuo/perpetuo/internal/policy"
	"github.com/perpetuo/perpetuo/internal/providers"
	"github.com/perpetuo/perpetuo/internal/records"
	"github.com/perpetuo/perpetuo/internal/routing"
	"github.com/perpetuo/perpetuo/internal/safetext"
)

// StatusClientClosed is recorded when the client hung up before any answer
// (nginx's convention; no response was sent).
const StatusClientClosed = 499

// Recorder receives generation records; neither method may block.
type Recorder interface {
	Record(g records.Generation)
	// Started marks a stream whose id is out before its record exists.
	Started(s records.Start)
}

// Planner turns a request's models and preferences into endpoints, and
// learns from what happened.
type Planner interface {
	Plan(ctx context.Context, workspaceID string, models []string, f routing.Facts) (routing.Plan, error)
	// Observe feeds one attempt's outcome to the endpoint's health.
	Observe(provider, model string, o routing.Outcome)
	// Served records the endpoint that answered a session.
	Served(workspaceID, session string, c routing.Candidate)
}

// Caller is who is asking (the authenticated key) and the policy its
// requests run under.
type Caller struct {
	KeyID       string
	WorkspaceID string
	MemberID    string
	Policy      policy.Policy
}

// Request is a validated chat completion request.
type Request struct {
	Body      []byte   // the client's JSON, passed through minus extensions
	Models    []string // model, or the models[] chain, in order
	Stream    bool
	MaxTokens int // the smaller of max_completion_tokens and max_tokens; 0 when unset
	// NonText: a message has image, audio or file parts, whose token cost
	// its bytes do not bound.
	NonText   bool
	Prefs     routing.Prefs
	Strategy  string // routing strategy; "" is balanced
	User      string
	SessionID string
	App       attribution.App
	Metadata  map[string]string
}

// Gateway runs requests through the pipeline.
type Gateway struct {
	budgets  *budget.Budgets
	planner  Planner
	adapters providers.Registry
	recorder Recorder
	log      *slog.Logger
	now      func() time.Time
	tel      *Telemetry

	streamIdle     time.Duration
	firstByte      time.Duration
	attemptTimeout time.Duration
	keepAlive      time.Duration
}

// Deps are what a Gateway is built from.
type Deps struct {
	Planner  Planner
	Adapters providers.Registry
	Recorder Recorder
	Budgets  *budget.Budgets
	Log      *slog.Logger
	// Telemetry measures and traces the pipeline (nil: none).
	Telemetry *Telemetry
	Now       func() time.Time
	// StreamIdle cuts a stream silent for this long between chunks (0: 2
	// minutes); FirstByteTimeout bounds the wait for a stream's first chunk
	// (0: StreamIdle), after which the next endpoint is tried;
	// AttemptTimeout bounds a non-streaming call (0: 10 minutes).
	StreamIdle       time.Duration
	FirstByteTimeout time.Duration
	AttemptTimeout   time.Duration
	// KeepAlive is the client-side silence after which a stream gets a
	// keep-alive comment (0: DefaultKeepAlive; negative: never).
	KeepAlive time.Duration
}

// New returns a Gateway.
func New(d Deps) *Gateway {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.StreamIdle <= 0 {
		d.StreamIdle = defaultStreamIdle
	}
	if d.AttemptTimeout <= 0 {
		d.AttemptTimeout = defaultAttemptTimeout
	}
	if d.FirstByteTimeout <= 0 {
		d.FirstByteTimeout = d.StreamIdle
	}
	switch {
	case d.KeepAlive == 0:
		d.KeepAlive = DefaultKeepAlive
	case d.KeepAlive < 0:
		d.KeepAlive = 0
	}
	return &Gateway{planner: d.Planner, adapters: d.Adapters, recorder: d.Recorder, budgets: d.Budgets,
		log: d.Log, now: d.Now, tel: d.Telemetry, streamIdle: d.StreamIdle, attemptTimeout: d.AttemptTimeout,
		firstByte: d.FirstByteTimeout, keepAlive: d.KeepAlive}
}

// run is the state of one request through the pipeline.
type run struct {
	g      *Gateway
	caller Caller
	req    Request
	start  time.Time
	rec    records.Generation
	// promptCost and completionCost are the parts of rec.Cost priced per
	// token, for the response's cost_details.
	promptCost, completionCost decimal.Decimal
	hold                       *budget.Reservation
	// inFlight is the candidate being called when the client hung up.
	inFlight *routing.Candidate
	began    time.Time // of the current attempt
	// span is the serving attempt's, ended with the generation (nil when
	// not tracing).
	span trace.Span
	// inBand: the client already has a 200 (a stream's keep-alives went
	// out), so a failure is reported in the stream.
	inBand bool
}

func (g *Gateway) newRun(c Caller, req Request) *run {
	start := g.now()
	r := &run{g: g, caller: c, req: req, start: start}
	r.rec = records.Generation{
		ID: ids.New(ids.Generation, start), WorkspaceID: c.WorkspaceID, KeyID: c.KeyID, MemberID: c.MemberID,
		RequestedModel: req.Models[0], App: req.App, User: req.User, SessionID: req.SessionID, Metadata: req.Metadata,
		Streamed: req.Stream, CreatedAt: start.UTC(), ZDR: req.Prefs.ZDR || c.Policy.ZDR,
	}
	if len(c.Policy.Guardrails) > 0 {
		r.rec.Guardrails = make([]string, len(c.Policy.Guardrails))
		for i, g := range c.Policy.Guardrails {
			r.rec.Guardrails[i] = g.ID
		}
	}
	return r
}

// plan resolves the candidates under the caller's policy (the models its
// guardrails allow, their provider lists, its ZDR requirement), then
// reserves the worst-case cost against every budget that governs the caller.
func (r *run) plan(ctx context.Context) (routing.Plan, error) {
	models, err := r.caller.Policy.CheckModels(r.req.Models)
	if err != nil {
		return routing.Plan{}, err
	}
	prefs := r.caller.Policy.Prefs(r.req.Prefs)
	f := routing.Facts{Strategy: r.req.Strategy, Prefs: prefs, PromptTokens: estimateTokens(len(r.req.Body)),
		MaxOutput: r.req.MaxTokens, Session: r.req.SessionID}
	if pf := r.caller.Policy.Filter(); pf != nil {
		f.Filters = []routing.Filter{pf}
	}
	if prefs.ZDR {
		f.ZDRBy = r.zdrBy()
	}
	f.Params = usedParams(r.req.Body)
	plan, err := r.g.planner.Plan(ctx, r.caller.WorkspaceID, models, f)
	if plan.Decision.Strategy != "" { // also when no endpoint was left: it says why
		r.rec.Routing = decisionJSON(plan.Decision)
		r.g.tel.planned(ctx, r, plan)
	}
	if err != nil {
		return routing.Plan{}, err
	}
	scopes := r.caller.Policy.ScopesFor(plan)
	if len(scopes) == 0 || r.g.budgets == nil {
		return plan, nil
	}
	r.hold, err = r.g.budgets.Reserve(ctx, scopes, r.worstCase(plan))
	if err != nil {
		return routing.Plan{}, err
	}
	return plan, nil
}

// zdrBy names who required zero data retention: the request, then the
// policy's (key, guardrails, workspace).
func (r *run) zdrBy() []string {
	if !r.req.Prefs.ZDR {
		return r.caller.Policy.ZDRBy
	}
	return append([]string{"request"}, r.caller.Policy.ZDRBy...)
}

// attempt records one upstream call's outcome. A failed attempt's span
// ends now, the serving one's with the generation.
func (r *run) attempt(ctx context.Context, c routing.Candidate, span trace.Span, began time.Time, err error) {
	a := records.Attempt{Provider: c.Provider.Slug, Model: c.Model.ID, Status: 200,
		LatencyMs: r.g.now().Sub(began).Milliseconds(), Class: "served"}
	if err != nil {
		a.Status, a.ErrorType, a.Class = 0, string(apierr.From(err).Type), providers.ClassOf(err)
		var pe *providers.Error
		if errors.As(err, &pe) {
			a.Status = pe.Status
		}
	}
	r.rec.Attempts = append(r.rec.Attempts, a)
	r.g.tel.attempt(ctx, a)
	if err == nil {
		r.span = span
	} else {
		endFailed(span, a)
	}
	if err != nil && endpointFault(err) {
		r.g.planner.Observe(c.Provider.Slug, c.Model.ID, routing.Outcome{Total: time.Duration(a.LatencyMs) * time.Millisecond})
	}
}

// decisionJSON is the routing decision as stored with the record. The
// request's provider.order is the one text from the client in it: bounded
// and cleaned like every stored string.
func decisionJSON(d routing.Decision) json.RawMessage {
	if len(d.Order) > 0 {
		order := make([]string, 0, min(len(d.Order), maxStoredOrder))
		for _, o := range d.Order[:min(len(d.Order), maxStoredOrder)] {
			order = append(order, safetext.Clean(o, 64))
		}
		d.Order = order
	}
	// 512 bytes: a few candidates fit in one allocation.
	b, ok := d.AppendJSON(make([]byte, 0, 512))
	if !ok { // a score that is not a number: keep the record without it
		return nil
	}
	return b
}

// maxStoredOrder bounds the provider.order entries a record keeps.
const maxStoredOrder = 16

// endpointFault reports whether a failed attempt speaks of the endpoint's
// health (unreachable, timed out, overloaded, failing), not of the request
// or the caller's credential.
func endpointFault(err error) bool {
	var pe *providers.Error
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Retryable || pe.Status >= 500
}

// served fills the record with the candidate that answered.
func (r *run) served(c routing.Candidate) {
	r.rec.Model, r.rec.Provider, r.rec.BYOK = c.Model.ID, c.Provider.Slug, c.Credential.BYOK
}

// healthy tells routing that c answered: the session stays on it, and its
// health learns the answer's speed (ttft 0 when only the whole answer's
// time is known).
func (r *run) healthy(c routing.Candidate, ttft, total time.Duration, outputTokens int) {
	r.g.planner.Served(r.caller.WorkspaceID, r.req.SessionID, c)
	r.g.planner.Observe(c.Provider.Slug, c.Model.ID, routing.Outcome{OK: true, TTFT: ttft, Total: total, OutputTokens: outputTokens})
}

// routingParams are the request parameters require_parameters checks
// against an endpoint's supported_parameters (OpenRouter's names).
var routingParams = []string{"max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "stop",
	"presence_penalty", "frequency_penalty", "repetition_penalty", "seed", "tools", "tool_choice",
	"response_format", "logit_bias", "logprobs", "top_logprobs", "min_p", "top_a", "structured_outputs",
	"reasoning", "include_reasoning", "parallel_tool_calls"}

// usedParams lists the routing parameters the body sets (to a non-null
// value), in one pass over its top-level keys that copies nothing.
func usedParams(body []byte) []string {
	var out []string
	_ = jsonedit.Members(body, func(k, v []byte) bool {
		if string(v) == "null" {
			return true
		}
		for _, p := range routingParams {
			if string(k) == p && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
		return true
	})
	return out
}

// try calls the plan's candidates in order until one succeeds, moving on
// after retryable failures only, and records every attempt. When none
// succeeds it returns the last error, for the caller to fail with.
func (r *run) try(ctx context.Context, plan routing.Plan, call func(routing.Candidate) error) (routing.Candidate, error) {
	var last error
	for i, cand := range plan.Candidates {
		span := r.g.tel.attemptSpan(ctx, r, cand, i)
		began := r.g.now()
		r.began = began
		r.inFlight = &cand
		err := call(cand)
		r.attempt(ctx, cand, span, began, err)
		if ctx.Err() == nil {
			r.inFlight = nil
		}
		if err == nil {
			return cand, nil
		}
		last = err
		if !r.retryable(ctx, err) {
			break
		}
	}
	return routing.Candidate{}, last
}

// retryable reports whether the loop may move on to the next candidate.
func (r *run) retryable(ctx context.Context, err error) bool {
	var pe *providers.Error
	return ctx.Err() == nil && errors.As(err, &pe) && pe.Retryable
}

// fail records a request that ended in err before any output and returns the
// client-facing error.
func (r *run) fail(ctx context.Context, err error) error {
	e := apierr.From(err)
	r.rec.Status, r.rec.ErrorType = e.Status, string(e.Type)
	switch {
	case ctx.Err() != nil && r.inBand: // the client hung up after its 200
		r.rec.Cancelled, r.rec.Status, r.rec.ErrorType = true, http.StatusOK, ""
		r.hungUp()
	case ctx.Err() != nil: // the client hung up: it got no answer at all
		r.rec.Cancelled, r.rec.Status, r.rec.ErrorType = true, StatusClientClosed, ""
		r.hungUp()
	case r.inBand:
		r.rec.Status = http.StatusOK
		r.failedInBand(e)
	}
	r.finish()
	return e
}

// hungUp charges a call the client abandoned while an upstream was working
// on it: the provider bills the prompt it read, so its estimate is charged
// and marked as estimated (the completion is unknown and counts zero).
func (r *run) hungUp() {
	if r.inFlight == nil {
		return // no upstream call had started
	}
	r.served(*r.inFlight)
	r.rec.UsageEstimated = true
	r.usage(*r.inFlight, providers.Usage{PromptTokens: estimateTokens(len(r.req.Body))})
}

// finish stamps the latency, hands the record over and settles the budgets.
// It runs when the answer is complete, just before its last bytes are sent
// (or when the client is gone): both are in memory, so a client never
// waits on them, and once it holds its whole answer its record and usage
// are readable.
func (r *run) finish() {
	r.rec.Latency = r.g.now().Sub(r.start)
	r.g.recorder.Record(r.rec)
	endServed(r.span, r.rec)
	r.span = nil
	r.g.tel.generation(r.rec)
	r.hold.Settle(r.rec.Cost, r.rec.BYOK) // charged even when the client hung up
}

func (r *run) call(c routing.Candidate) providers.Call {
	return providers.Call{
		Provider: c.Provider.Slug, BaseURL: c.BaseURL(), APIKey: c.Credential.APIKey,
		UpstreamModel: c.Endpoint.UpstreamModel, Body: r.req.Body, Edits: r.edits(c), Stream: r.req.Stream,
		Compat:     c.Provider.Compat,
		MaxOutput:  r.boundsFor(c).output,
		Deployment: c.Credential.Deployments[c.Endpoint.UpstreamModel], APIVersion: c.Credential.APIVersion,
		// A workspace chose this address only when its own credential
		// overrides the catalog's (operator's) base URL.
		Untrusted: c.Credential.BYOK && c.Credential.BaseURL != "",
		BYOK:      c.Credential.BYOK,
	}
}

// edits are the gateway's changes to c's upstream body: the output cap
// under the name c's provider reads, and the parameters c does not support
// removed (the decision lists them).
func (r *run) edits(c routing.Candidate) []jsonedit.Edit {
	out := r.capEdits(c)
	for _, p := range c.Drop {
		out = append(out, jsonedit.Delete(p))
	}
	return out
}

// estimateTokens approximates a token count from text length (4 bytes per
// token) for upstreams that report no usage.
func estimateTokens(n int) int { return (n + 3) / 4 }
