package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/perpetuo/perpetuo/internal/apierr"

	"github.com/perpetuo/perpetuo/internal/jsonedit"
	"github.com/perpetuo/perpetuo/internal/providers"
	"github.com/perpetuo/perpetuo/internal/routing"
)

// Response is a finished non-streaming completion, ready to send. Finish
// must be called just before the body is written: it records the
// generation and settles the spend in the background.
type Response struct {
	GenerationID string
	Body         []byte
	// ZDR: only zero-data-retention endpoints could serve it.
	ZDR    bool
	finish func()
}

// Finish settles and records the generation; it is safe to call once.
func (r *Response) Finish() {
	if r.finish != nil {
		r.finish()
		r.finish = nil
	}
}

// Complete serves a non-streaming request.
func (g *Gateway) Complete(ctx context.Context, c Caller, req Request) (*Response, error) {
	r := g.newRun(c, req)
	plan, err := r.plan(ctx)
	if err != nil {
		return nil, r.fail(ctx, err)
	}
	var comp *providers.Completion
	served, err := r.try(ctx, plan, func(cand routing.Candidate) (err error) {
		actx, wd := watch(ctx, g.attemptTimeout)
		defer wd.stop()
		comp, err = g.adapters[cand.Provider.API].Complete(actx, r.call(cand))
		return wd.explain(cand.Provider.Slug, err)
	})
	if err != nil {
		return nil, r.fail(ctx, err)
	}
	return r.completed(served, comp)
}

// completed rewrites the upstream body with Perpetuo's fields and records it.
func (r *run) completed(c routing.Candidate, comp *providers.Completion) (*Response, error) {
	r.served(c)
	u := comp.Usage
	if !comp.HasUsage {
		r.rec.UsageEstimated = true
		u = providers.Usage{
			PromptTokens:     estimateTokens(len(r.req.Body)),
			CompletionTokens: estimateTokens(generatedBytes(gjson.GetBytes(comp.Body, "choices.#.message|@flatten"))),
		}
	}
	r.usage(c, r.clamp(c, u))
	r.healthy(c, 0, r.g.now().Sub(r.began), r.rec.CompletionTokens)
	r.rec.UpstreamID, r.rec.FinishReason = comp.UpstreamID, comp.FinishReason
	r.rec.NativeFinishReason = comp.FinishReason
	r.rec.Status = 200
	doc := comp.Body
	if comp.Failure != nil {
		doc = r.partialFailure(doc, comp.Failure)
	}
	body, err := r.decorate(doc, jsonedit.Raw("usage", r.usageJSON()), jsonedit.Default("system_fingerprint", jsonNull))
	if err != nil {
		return nil, r.fail(context.Background(), fmt.Errorf("decorate response: %w", err))
	}
	return &Response{GenerationID: r.rec.ID, Body: body, ZDR: r.rec.ZDR, finish: r.finish}, nil
}

// partialFailure handles an upstream's 200 with partial output and an
// error: the record says which error, and the answer's choice carries
// Perpetuo's error (the upstream's own text is not relayed).
func (r *run) partialFailure(doc []byte, f *providers.Error) []byte {
	e := f.Client
	r.failedInBand(e)
	last := &r.rec.Attempts[len(r.rec.Attempts)-1]
	last.ErrorType = string(e.Type)
	errJSON, err := json.Marshal(e.Body())
	if err != nil {
		errJSON, _ = json.Marshal(apierr.New(e.Status, e.Type, "%s", e.Message).Body())
	}
	if out, err := sjson.SetRawBytes(doc, "choices.0.error", errJSON); err == nil {
		doc = out
	}
	if out, err := sjson.DeleteBytes(doc, "error"); err == nil {
		doc = out
	}
	return doc
}

var jsonNull = []byte("null")

// usage fills the record's token counts and exact cost.
func (r *run) usage(c routing.Candidate, u providers.Usage) {
	r.rec.PromptTokens, r.rec.CompletionTokens = u.PromptTokens, u.CompletionTokens
	r.rec.ReasoningTokens, r.rec.CachedTokens = u.ReasoningTokens, u.CachedTokens
	r.rec.CacheWriteTokens = u.CacheWriteTokens
	r.promptCost, r.completionCost = c.Endpoint.Pricing.Parts(u.Tokens())
	r.rec.Cost = r.promptCost.Add(r.completionCost).Add(c.Endpoint.Pricing.Request)
}

// decorate sets the generation id, the served model and the provider on a
// chat.completion or chunk document, with the further edits in the same
// pass.
func (r *run) decorate(doc []byte, more ...jsonedit.Edit) ([]byte, error) {
	var buf [4]jsonedit.Edit // on the stack for what the callers pass
	edits := append(buf[:0], jsonedit.String("id", r.rec.ID), jsonedit.String("model", r.rec.Model),
		jsonedit.String("provider", r.rec.Provider))
	return jsonedit.Object(doc, append(edits, more...)...)
}

// usageJSON renders usage in OpenAI's shape plus cost, is_byok and
// cost_details; the cost is written from the decimal, so it is exact.
func (r *run) usageJSON() []byte {
	g := r.rec
	cost := g.Cost.String()
	b := make([]byte, 0, 384)
	b = strconv.AppendInt(append(b, `{"prompt_tokens":`...), int64(g.PromptTokens), 10)
	b = strconv.AppendInt(append(b, `,"completion_tokens":`...), int64(g.CompletionTokens), 10)
	b = strconv.AppendInt(append(b, `,"total_tokens":`...), int64(g.PromptTokens+g.CompletionTokens), 10)
	b = append(append(b, `,"cost":`...), cost...)
	b = strconv.AppendBool(append(b, `,"is_byok":`...), g.BYOK)
	b = append(append(b, `,"cost_details":{"upstream_inference_cost":`...), cost...)
	b = append(append(b, `,"upstream_inference_prompt_cost":`...), r.promptCost.String()...)
	b = append(append(b, `,"upstream_inference_completions_cost":`...), r.completionCost.String()...)
	b = strconv.AppendInt(append(b, `},"prompt_tokens_details":{"cached_tokens":`...), int64(g.CachedTokens), 10)
	b = strconv.AppendInt(append(b, `,"cache_write_tokens":`...), int64(g.CacheWriteTokens), 10)
	b = strconv.AppendInt(append(b, `},"completion_tokens_details":{"reasoning_tokens":`...), int64(g.ReasoningTokens), 10)
	b = append(b, '}')
	if g.UsageEstimated {
		b = append(b, `,"usage_estimated":true`...)
	}
	return append(b, '}')
}

// generatedBytes counts the bytes of everything a model generated in a
// message or delta: content, reasoning, refusals and tool calls (names and
// arguments), so an estimate bills all of it, not only the visible text. It
// walks each object once (it runs on every streamed chunk).
func generatedBytes(msgs ...gjson.Result) int {
	n := 0
	for _, m := range msgs {
		if m.IsArray() {
			m.ForEach(func(_, e gjson.Result) bool { n += generatedBytes(e); return true })
			continue
		}
		m.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "content", "reasoning", "reasoning_content", "refusal":
				n += len(v.Str)
			case "tool_calls":
				v.ForEach(func(_, tc gjson.Result) bool {
					f := tc.Get("function")
					n += len(f.Get("name").Str) + len(f.Get("arguments").Str)
					return true
				})
			}
			return true
		})
	}
	return n
}

// since is a small helper for durations from the run's start.
func (r *run) since() time.Duration { return r.g.now().Sub(r.start) }
