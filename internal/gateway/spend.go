package gateway

import (
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/internal/jsonedit"
	"github.com/perpetuo/perpetuo/internal/providers"
	"github.com/perpetuo/perpetuo/internal/routing"
)

// bounds are the most tokens a request can use on one endpoint: what the
// reservation is priced at, what is written upstream as the output cap, and
// what reported usage is clamped to.
type bounds struct{ prompt, output int }

// boundsFor bounds a request on endpoint c.
//
// Output: the smaller of max_tokens and max_completion_tokens where set
// (a provider may read either), else the endpoint's max output, never over
// the context length. Prompt: one token per body byte for text (every token
// covers at least one byte, and the JSON around each message covers its role
// tokens), but images, audio and files cost tokens out of all proportion to
// their bytes, so a body with such parts is bounded by the whole context.
func (r *run) boundsFor(c routing.Candidate) bounds {
	ctxLen := c.Endpoint.ContextLength
	out := r.req.MaxTokens
	if out <= 0 {
		out = c.Endpoint.MaxCompletionTokens
	}
	if out <= 0 || (ctxLen > 0 && out > ctxLen) {
		out = ctxLen
	}
	prompt := len(r.req.Body)
	if r.req.NonText || (ctxLen > 0 && prompt > ctxLen) {
		prompt = ctxLen
	}
	return bounds{prompt: prompt, output: out}
}

// worstCase is the most the request can cost on any candidate it may reach.
func (r *run) worstCase(plan routing.Plan) decimal.Decimal {
	worst := decimal.Zero
	for _, c := range plan.Candidates {
		b := r.boundsFor(c)
		worst = decimal.Max(worst, c.Endpoint.Pricing.Bound(b.prompt, b.output))
	}
	return worst
}

// capEdits writes the output cap into the upstream body under the one name
// c's provider reads (compat's max_tokens_field: OpenAI's reasoning models
// refuse max_tokens, Mistral refuses max_completion_tokens), replacing
// either name the client used: the cap reserved for c when a budget holds
// the request, so no provider can produce more than was paid for, else the
// client's own cap.
func (r *run) capEdits(c routing.Candidate) []jsonedit.Edit {
	out := r.req.MaxTokens
	if r.hold != nil {
		out = r.boundsFor(c).output
	}
	if out <= 0 {
		return nil
	}
	field, other := c.Provider.Compat.MaxTokens(), "max_completion_tokens"
	if field == other {
		other = "max_tokens"
	}
	return []jsonedit.Edit{jsonedit.Delete(other), jsonedit.Int(field, out)}
}

// clamp keeps reported usage within what the request could possibly use on
// c (0 ≤ n ≤ the bound; reasoning within completion, cached within prompt),
// and says so on the record when it had to: an upstream's report is never
// trusted past what was reserved.
func (r *run) clamp(c routing.Candidate, u providers.Usage) providers.Usage {
	b := r.boundsFor(c)
	orig := u
	limit := func(n, hi int) int { return min(max(n, 0), hi) }
	if b.prompt > 0 {
		u.PromptTokens = limit(u.PromptTokens, b.prompt)
	} else {
		u.PromptTokens = max(u.PromptTokens, 0)
	}
	if b.output > 0 {
		u.CompletionTokens = limit(u.CompletionTokens, b.output)
	} else {
		u.CompletionTokens = max(u.CompletionTokens, 0)
	}
	u.ReasoningTokens = limit(u.ReasoningTokens, u.CompletionTokens)
	u.CachedTokens = limit(u.CachedTokens, u.PromptTokens)
	u.CacheWriteTokens = limit(u.CacheWriteTokens, u.PromptTokens-u.CachedTokens)
	if u != orig {
		r.rec.Anomaly = fmt.Sprintf("usage reported by %s was impossible for this request and was clamped: prompt %d→%d, completion %d→%d, reasoning %d→%d, cached %d→%d, cache writes %d→%d",
			c.Provider.Slug, orig.PromptTokens, u.PromptTokens, orig.CompletionTokens, u.CompletionTokens,
			orig.ReasoningTokens, u.ReasoningTokens, orig.CachedTokens, u.CachedTokens, orig.CacheWriteTokens, u.CacheWriteTokens)
		r.g.log.Warn("clamped impossible upstream usage", "generation", r.rec.ID, "provider", c.Provider.Slug)
	}
	return u
}
