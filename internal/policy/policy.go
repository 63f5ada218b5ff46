// Package policy is the one place that turns who is asking into the rules
// a request runs under: the budgets its spend counts toward, whether it
// must stay on zero-data-retention endpoints and who required that. Today
// the inputs are the calling key (its own limit and require_zdr);
// guardrails, the member's and the workspace's settings join here. The
// gateway only consumes a Policy.
package policy

import (
	"github.com/perpetuo/perpetuo/internal/budget"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/routing"
)

// Policy is what governs one request.
type Policy struct {
	// Budgets are every limit the request's spend counts toward; each is
	// checked on its own.
	Budgets []budget.Scope
	// ZDR: only zero-data-retention endpoints may serve; ZDRBy names who
	// required it ("key"), for explanations.
	ZDR   bool
	ZDRBy []string
}

// ForKey is the policy of a request made with key k.
func ForKey(k keys.Key) Policy {
	var p Policy
	if k.Limit.Valid {
		p.Budgets = append(p.Budgets, budget.Scope{Kind: "key", ID: k.ID, Name: k.Label,
			Limit: k.Limit.Decimal, Reset: k.LimitReset, CountsBYOK: k.IncludeBYOKInLimit})
	}
	if k.RequireZDR {
		p.ZDR, p.ZDRBy = true, append(p.ZDRBy, "key")
	}
	return p
}

// Prefs is the request's own routing preferences under the policy: a ZDR
// requirement holds whatever the request asked.
func (p Policy) Prefs(r routing.Prefs) routing.Prefs {
	r.ZDR = r.ZDR || p.ZDR
	return r
}

// ScopesFor is the budgets a plan can spend against: when every candidate
// uses the workspace's own provider key, budgets that do not count BYOK
// spend are not at stake.
func (p Policy) ScopesFor(plan routing.Plan) []budget.Scope {
	allBYOK := len(plan.Candidates) > 0
	for _, c := range plan.Candidates {
		allBYOK = allBYOK && c.Credential.BYOK
	}
	if !allBYOK {
		return p.Budgets
	}
	var out []budget.Scope
	for _, s := range p.Budgets {
		if s.CountsBYOK {
			out = append(out, s)
		}
	}
	return out
}
