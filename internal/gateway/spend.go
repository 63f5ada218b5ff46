package gateway

import (
	"context"
	"time"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/internal/budget"
	"github.com/perpetuo/perpetuo/internal/routing"
)

// budgetScopes drops the scopes a request cannot spend against: when every
// candidate uses the workspace's own provider key, scopes that do not count
// BYOK spend are not at stake.
func budgetScopes(scopes []budget.Scope, plan routing.Plan) []budget.Scope {
	allBYOK := true
	for _, c := range plan.Candidates {
		allBYOK = allBYOK && c.Credential.BYOK
	}
	if !allBYOK {
		return scopes
	}
	var out []budget.Scope
	for _, s := range scopes {
		if s.CountsBYOK {
			out = append(out, s)
		}
	}
	return out
}

// worstCase bounds a request's cost over every candidate it may reach: at
// most one prompt token per body byte, and the most completion tokens the
// request or the endpoint allows.
func worstCase(plan routing.Plan, bodyBytes, maxTokens int) decimal.Decimal {
	worst := decimal.Zero
	for _, c := range plan.Candidates {
		out := maxTokens
		if out <= 0 {
			out = c.Endpoint.MaxCompletionTokens
		}
		if out <= 0 || out > c.Endpoint.ContextLength {
			out = c.Endpoint.ContextLength
		}
		worst = decimal.Max(worst, c.Endpoint.Pricing.Cost(bodyBytes, out))
	}
	return worst
}

// settleTimeout bounds settlement, which runs detached from the request so
// a client that hung up is still charged.
const settleTimeout = 10 * time.Second

// settle releases the reservation and records the actual cost, retrying
// briefly: a lost settlement would leave spend unrecorded.
func (r *run) settle() {
	if r.hold == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	var err error
	for attempt := range 3 {
		if err = r.hold.Settle(ctx, r.rec.Cost, r.rec.BYOK); err == nil {
			return
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
	r.g.log.Error("settle spend: the reservation stays held and the cost is unrecorded in the ledger",
		"generation", r.rec.ID, "cost", r.rec.Cost.String(), "err", err)
}
