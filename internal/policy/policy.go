// Package policy is the one place that turns who is asking into the rules
// a request runs under. Its inputs are the calling key (its own limit and
// require_zdr), the key's guardrail, its member's guardrail (or the
// workspace default) and the workspace's budget; its output is a Policy:
// the budgets the request's spend counts toward, the models and providers
// it may use, and whether it must stay on zero-data-retention endpoints and
// who required that. The gateway only consumes a Policy.
//
// Combination: allowlists intersect (a model or provider must pass every
// governing guardrail's list), ignore lists unite, ZDR ORs, and every
// budget is checked on its own with the request's spend counting toward
// each.
package policy

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/budget"
	"github.com/perpetuo/perpetuo/internal/guardrails"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/routing"
)

// Governing is a guardrail that governs a request, and why.
type Governing struct {
	guardrails.Guardrail
	Via string // "key", "member" or "default"
}

// Policy is what governs one request.
type Policy struct {
	// Budgets are every limit the request's spend counts toward; each is
	// checked on its own.
	Budgets []budget.Scope
	// Guardrails govern the request; their model and provider lists all
	// apply.
	Guardrails []Governing
	// ZDR: only zero-data-retention endpoints may serve; ZDRBy names who
	// required it ("key", "guardrail:<name>", "workspace"), for
	// explanations.
	ZDR   bool
	ZDRBy []string
}

// Workspace is what a workspace contributes: its budget and the default
// guardrail for members without one.
type Workspace struct {
	ID, Name           string
	Limit              decimal.NullDecimal
	Reset              string
	DefaultGuardrailID string
	RequireZDR         bool
}

// Inputs are everything a request's policy is made of.
type Inputs struct {
	Key       keys.Key
	Workspace Workspace
	// Guardrails of the workspace by id (those the key or member names
	// must be here; a missing one governs nothing).
	Guardrails map[string]guardrails.Guardrail
}

// Resolve combines the inputs into the request's Policy.
func Resolve(in Inputs) Policy {
	p := ForKey(in.Key)
	add := func(id, via string) {
		g, ok := in.Guardrails[id]
		if !ok || slices.ContainsFunc(p.Guardrails, func(x Governing) bool { return x.ID == id }) {
			return // the same guardrail twice governs once
		}
		p.Guardrails = append(p.Guardrails, Governing{Guardrail: g, Via: via})
		if g.Limit.Valid {
			p.Budgets = append(p.Budgets, budget.Scope{Kind: "guardrail", ID: g.ID, Name: g.Name,
				Limit: g.Limit.Decimal, Reset: g.Reset, CountsBYOK: g.IncludeBYOK})
		}
		if g.EnforceZDR {
			p.ZDR, p.ZDRBy = true, append(p.ZDRBy, "guardrail:"+g.Name)
		}
	}
	if in.Key.GuardrailID != "" || in.Key.MemberGuardrailID != "" || in.Workspace.DefaultGuardrailID != "" {
		// At most two govern (the key's, and the member's or the default),
		// with a budget each besides the key's and the workspace's: sized
		// once rather than grown append by append on every request.
		p.Guardrails = make([]Governing, 0, 2)
		p.Budgets = slices.Grow(p.Budgets, 4)
	}
	if in.Key.GuardrailID != "" {
		add(in.Key.GuardrailID, "key")
	}
	if in.Key.MemberGuardrailID != "" {
		add(in.Key.MemberGuardrailID, "member")
	} else if in.Workspace.DefaultGuardrailID != "" {
		add(in.Workspace.DefaultGuardrailID, "default")
	}
	if in.Workspace.RequireZDR {
		p.ZDR, p.ZDRBy = true, append(p.ZDRBy, "workspace")
	}
	if in.Workspace.Limit.Valid {
		// The workspace's budget is its total: BYOK spend counts too.
		p.Budgets = append(p.Budgets, budget.Scope{Kind: "workspace", ID: in.Workspace.ID, Name: in.Workspace.Name,
			Limit: in.Workspace.Limit.Decimal, Reset: in.Workspace.Reset, CountsBYOK: true})
	}
	return p
}

// ForKey is the policy of a request made with key k alone (its own limit
// and require_zdr).
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

// ModelAllowed reports whether every governing guardrail allows model id;
// when one does not, it is returned.
func (p Policy) ModelAllowed(id string) (Governing, bool) {
	for _, g := range p.Guardrails {
		if slices.ContainsFunc(g.IgnoredModels, func(pat string) bool { return guardrails.Matches(pat, id) }) {
			return g, false
		}
		if len(g.AllowedModels) > 0 && !slices.ContainsFunc(g.AllowedModels, func(pat string) bool { return guardrails.Matches(pat, id) }) {
			return g, false
		}
	}
	return Governing{}, true
}

// CheckModels keeps the models the policy allows, in order, and refuses
// the request with 403 model_not_allowed when none is left: the message
// names the guardrail and what it allows.
func (p Policy) CheckModels(models []string) ([]string, error) {
	if len(p.Guardrails) == 0 {
		return models, nil
	}
	var kept []string
	var by Governing
	for _, m := range models {
		if g, ok := p.ModelAllowed(m); ok {
			kept = append(kept, m)
		} else if by.ID == "" {
			by = g
		}
	}
	if len(kept) > 0 {
		return kept, nil
	}
	allowed := "every model but those it ignores"
	if len(by.AllowedModels) > 0 {
		allowed = strings.Join(by.AllowedModels, ", ")
	}
	what := "The model " + models[0] + " is not"
	if len(models) > 1 {
		what = fmt.Sprintf("None of the %d requested models is", len(models))
	}
	e := apierr.New(http.StatusForbidden, apierr.ModelNotAllowed,
		"%s allowed by guardrail %s (%s), which allows %s; ask an admin to change it, or use an allowed model.",
		what, by.Name, by.ID, allowed).
		With("guardrail_id", by.ID).With("guardrail_name", by.Name).
		With("allowed_models", nonNil(by.AllowedModels)).With("ignored_models", nonNil(by.IgnoredModels))
	return nil, e
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// Filter is the routing filter of the guardrails' provider lists, or nil
// when none restricts providers: an endpoint whose provider is outside an
// allowlist or in an ignore list is excluded as guardrail:providers.
func (p Policy) Filter() routing.Filter {
	for _, g := range p.Guardrails {
		if len(g.AllowedProviders) > 0 || len(g.IgnoredProviders) > 0 {
			return providerFilter(p.Guardrails)
		}
	}
	return nil
}

// ReasonProviders is the exclusion reason of the guardrails' provider lists.
const ReasonProviders = "guardrail:providers"

type providerFilter []Governing

func (f providerFilter) Exclude(c *routing.Candidate) string {
	for _, g := range f {
		if slices.Contains(g.IgnoredProviders, c.Provider.Slug) ||
			(len(g.AllowedProviders) > 0 && !slices.Contains(g.AllowedProviders, c.Provider.Slug)) {
			return ReasonProviders
		}
	}
	return ""
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
