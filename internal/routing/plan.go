package routing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/safetext"
)

// Planner builds plans from a catalog, the workspace credentials and the API
// families that have an adapter.
type Planner struct {
	Catalog     *catalog.Catalog
	Credentials Credentials
	Families    func(api string) bool
	Health      *Tracker // nil: nothing measured, catalog defaults only
	// Rand draws balanced orders (default math/rand/v2's Float64).
	Rand func() float64
	// Sessions remembers the endpoint each session_id was served by.
	Sessions *Sessions
}

// Plan resolves models (the request's model, or its models[] chain) into an
// ordered plan and its decision. It fails with not_found for an unknown
// model, and with no_endpoints or privacy_restricted when every endpoint
// was filtered out.
func (p *Planner) Plan(ctx context.Context, workspaceID string, models []string, f Facts) (Plan, error) {
	if err := CheckModels(p.Catalog, models); err != nil {
		return Plan{}, err
	}
	creds, err := p.Credentials.For(ctx, workspaceID)
	if err != nil {
		return Plan{}, fmt.Errorf("workspace credentials: %w", err)
	}
	var pre []Exclusion
	groups := make([][]Candidate, 0, len(models))
	for _, id := range models {
		base, variant := splitVariant(id)
		m, _ := p.Catalog.Model(base)
		if variant != "" && f.Prefs.Sort == nil { // :nitro and :floor are provider.sort
			by := SortThroughput
			if variant == "floor" {
				by = SortPrice
			}
			f.Prefs.Sort = &Sort{By: by}
		}
		groups = append(groups, p.usable(creds, m, &pre))
	}
	rnd := p.Rand
	if rnd == nil {
		rnd = rand.Float64
	}
	var sticky func(string) (string, bool)
	if p.Sessions != nil && f.Session != "" {
		sticky = func(s string) (string, bool) { return p.Sessions.Get(workspaceID, s) }
	}
	var h Health
	if p.Health != nil {
		h = p.Health
	}
	plan, d := decide(groups, f, h, f.Filters, rnd, sticky)
	for _, x := range pre {
		d.Candidates = append(d.Candidates, Scored{Model: x.Model, Provider: x.Provider, ExcludedBy: x.Reason})
	}
	plan.Excluded = append(plan.Excluded, pre...)
	plan.Decision = d
	if len(plan.Candidates) == 0 { // the decision still explains it
		return Plan{Excluded: plan.Excluded, Decision: d}, noEndpoints(models, plan.Excluded, d.ZDRRequiredBy)
	}
	return plan, nil
}

// Observe feeds an attempt's outcome to the endpoint's health.
func (p *Planner) Observe(provider, model string, o Outcome) {
	if p.Health != nil {
		p.Health.Observe(provider, model, o)
	}
}

// Served tells the planner which endpoint served a session's request, so
// the next request of the session goes there first.
func (p *Planner) Served(workspaceID, session string, c Candidate) {
	if p.Sessions != nil && session != "" {
		p.Sessions.Put(workspaceID, session, endpointKey(c))
	}
}

// splitVariant cuts a model id's variant suffix (":nitro", ":floor").
func splitVariant(id string) (base, variant string) {
	if i := strings.LastIndexByte(id, ':'); i > 0 {
		switch v := id[i+1:]; v {
		case "nitro", "floor":
			return id[:i], v
		}
	}
	return id, ""
}

// CheckModels fails with not_found for the first model id the catalog does
// not have (a variant suffix aside). It costs no I/O, so the server runs it
// before validating a request body in full.
func CheckModels(c *catalog.Catalog, models []string) error {
	for _, id := range models {
		base, _ := splitVariant(id)
		if _, ok := c.Model(base); !ok {
			id = safetext.Clean(id, 128)
			return apierr.New(http.StatusNotFound, apierr.NotFound,
				"Model '%s' is not in the catalog; GET /v1/models lists the models you can use.", id).With("model", id)
		}
	}
	return nil
}

// usable is m's endpoints the workspace can call: it holds a credential
// for the provider and Perpetuo has an adapter for its API. The others
// are recorded as excluded.
func (p *Planner) usable(creds Set, m *catalog.Model, excluded *[]Exclusion) []Candidate {
	out := make([]Candidate, 0, len(m.Endpoints))
	for i := range m.Endpoints {
		e := &m.Endpoints[i]
		prov, _ := p.Catalog.Provider(e.Provider) // catalog validation guarantees it exists
		cred, hasCred := creds[e.Provider]
		reason := ""
		switch {
		case !hasCred:
			reason = ReasonCredentials
		case !p.Families(prov.API):
			reason = ReasonAdapter
		}
		if reason != "" {
			*excluded = append(*excluded, Exclusion{Model: m.ID, Provider: e.Provider, Reason: reason})
			continue
		}
		out = append(out, Candidate{Model: m, Endpoint: e, Provider: prov, Credential: cred})
	}
	return out
}

// noEndpoints explains an empty plan: privacy_restricted when only data
// policies stood in the way, no_endpoints otherwise. metadata.excluded_by
// lists each reason once (in the order met), excluded_counts how many
// endpoints each removed, and the message says what to change.
func noEndpoints(models []string, excluded []Exclusion, zdrBy []string) *apierr.Error {
	counts := map[string]int{}
	var list []string
	for _, x := range excluded {
		if counts[x.Reason] == 0 {
			list = append(list, x.Reason)
		}
		counts[x.Reason]++
	}
	privacyOnly := len(list) > 0
	var parts, hints []string
	for _, r := range list {
		privacyOnly = privacyOnly && strings.HasPrefix(r, "data_policy:")
		parts = append(parts, fmt.Sprintf("%s (%d)", r, counts[r]))
		if h, ok := reasonHints[r]; ok && !slices.Contains(hints, h) {
			hints = append(hints, h)
		}
	}
	names := strings.Join(models, ", ")
	typ, msg := apierr.NoEndpoints, "No endpoint can serve %s: excluded by %s."
	if privacyOnly {
		typ, msg = apierr.PrivacyRestricted, "No endpoint of %s meets the data policy this request requires: excluded by %s."
	}
	zdrExcluded := slices.Contains(list, ReasonZDR)
	if zdrExcluded && len(zdrBy) > 0 {
		msg += " Zero data retention is required by " + describeZDRBy(zdrBy) + "; GET /v1/endpoints/zdr lists the ZDR endpoints you can use."
	}
	if len(hints) > 0 {
		msg += " " + strings.Join(hints, " ")
	}
	e := apierr.New(http.StatusNotFound, typ, msg, names, strings.Join(parts, ", ")).
		With("excluded_by", list).With("excluded_counts", counts).With("excluded", excluded)
	if zdrExcluded && len(zdrBy) > 0 {
		e = e.With("zdr_required_by", zdrBy).With("zdr_endpoints", "/v1/endpoints/zdr")
	}
	return e
}

// describeZDRBy names who required ZDR, in words: the request, the key,
// guardrail "x", the workspace. Guardrail names are the workspace's own
// text, bounded when stored; they are quoted.
func describeZDRBy(by []string) string {
	out := make([]string, 0, len(by))
	for _, b := range by {
		switch {
		case b == "request":
			out = append(out, "the request (provider.zdr)")
		case b == "key":
			out = append(out, "the key (require_zdr)")
		case b == "workspace":
			out = append(out, "the workspace (require_zdr)")
		case strings.HasPrefix(b, "guardrail:"):
			out = append(out, fmt.Sprintf("guardrail %q (enforce_zdr)", strings.TrimPrefix(b, "guardrail:")))
		}
	}
	return strings.Join(out, ", ")
}

// reasonHints say what to change for each exclusion reason.
var reasonHints = map[string]string{
	ReasonCredentials:    "Configure a credential for one of its providers.",
	ReasonAdapter:        "Perpetuo cannot call that provider's API yet; choose another provider.",
	ReasonOnly:           "Widen provider.only.",
	ReasonIgnore:         "Shorten provider.ignore.",
	ReasonQuantization:   "Allow more provider.quantizations.",
	ReasonMaxPrice:       "Raise provider.max_price.",
	ReasonParameters:     "Drop provider.require_parameters or the parameters no endpoint supports.",
	ReasonTools:          "Choose a model with an endpoint that supports tools, or send the request without them.",
	ReasonContext:        "Shorten the prompt or lower max_tokens.",
	ReasonCircuit:        "Its endpoints are failing; retry shortly.",
	ReasonZDR:            "Choose a model with a ZDR endpoint, or lift the requirement where you may.",
	ReasonDataCollection: "Allow provider.data_collection, or choose a model whose providers do not train on data.",
}

// Offer is a model the workspace can route to, with its cheapest endpoint
// it can use.
type Offer struct {
	Model    *catalog.Model
	Endpoint catalog.Endpoint
}

// Routable lists the models of the catalog that have at least one endpoint
// the workspace holds a credential for and Perpetuo has an adapter for,
// each with its cheapest such endpoint.
// With zdrOnly, only zero-data-retention endpoints count.
func (p *Planner) Routable(ctx context.Context, workspaceID string, zdrOnly bool) ([]Offer, error) {
	creds, err := p.Credentials.For(ctx, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("workspace credentials: %w", err)
	}
	var out []Offer
	for _, m := range p.Catalog.Models() {
		var excluded []Exclusion
		cands := p.usable(creds, m, &excluded)
		if zdrOnly {
			cands = slices.DeleteFunc(cands, func(c Candidate) bool { return !c.DataPolicy().ZDR })
		}
		if len(cands) == 0 {
			continue
		}
		plan, _ := decide([][]Candidate{cands}, Facts{Strategy: Cheapest}, nil, nil, rand.Float64, nil)
		out = append(out, Offer{Model: m, Endpoint: *plan.Candidates[0].Endpoint})
	}
	return out, nil
}

// EndpointReport is one catalog endpoint of a model as a workspace sees
// it: whether it can route there, and the endpoint's live health.
type EndpointReport struct {
	Model    *catalog.Model
	Endpoint *catalog.Endpoint
	Provider *catalog.Provider
	Routable bool
	Health   Window
}

// ZDREndpoints reports every zero-data-retention endpoint the workspace
// can route to (under the data policy its credential gives it) that allow
// admits, model by model in catalog order.
func (p *Planner) ZDREndpoints(ctx context.Context, workspaceID string, allow func(*Candidate) bool) ([]EndpointReport, error) {
	creds, err := p.Credentials.For(ctx, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("workspace credentials: %w", err)
	}
	var out []EndpointReport
	for _, m := range p.Catalog.Models() {
		var excluded []Exclusion
		for _, c := range p.usable(creds, m, &excluded) {
			if !c.DataPolicy().ZDR || !allow(&c) {
				continue
			}
			r := EndpointReport{Model: m, Endpoint: c.Endpoint, Provider: c.Provider, Routable: true}
			if p.Health != nil {
				r.Health = p.Health.Report(c.Provider.Slug, m.ID)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// Endpoints reports every catalog endpoint of model (a variant suffix
// aside) for workspaceID; not_found for an unknown model.
func (p *Planner) Endpoints(ctx context.Context, workspaceID, model string) (*catalog.Model, []EndpointReport, error) {
	if err := CheckModels(p.Catalog, []string{model}); err != nil {
		return nil, nil, err
	}
	base, _ := splitVariant(model)
	m, _ := p.Catalog.Model(base)
	creds, err := p.Credentials.For(ctx, workspaceID)
	if err != nil {
		return nil, nil, fmt.Errorf("workspace credentials: %w", err)
	}
	var excluded []Exclusion
	usable := map[string]bool{}
	for _, c := range p.usable(creds, m, &excluded) {
		usable[c.Provider.Slug] = true
	}
	out := make([]EndpointReport, len(m.Endpoints))
	for i := range m.Endpoints {
		e := &m.Endpoints[i]
		prov, _ := p.Catalog.Provider(e.Provider)
		out[i] = EndpointReport{Model: m, Endpoint: e, Provider: prov, Routable: usable[e.Provider]}
		if p.Health != nil {
			out[i].Health = p.Health.Report(e.Provider, m.ID)
		}
	}
	return m, out, nil
}
