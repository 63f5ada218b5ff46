package routing

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
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
}

// Plan resolves models (the request's model, or its models[] chain) into an
// ordered plan. It fails with not_found for an unknown model, and with
// no_endpoints or privacy_restricted when every endpoint was filtered out.
func (p *Planner) Plan(ctx context.Context, workspaceID string, models []string, prefs Prefs) (Plan, error) {
	creds, err := p.Credentials.For(ctx, workspaceID)
	if err != nil {
		return Plan{}, fmt.Errorf("workspace credentials: %w", err)
	}
	if err := CheckModels(p.Catalog, models); err != nil {
		return Plan{}, err
	}
	var plan Plan
	for _, id := range models {
		m, _ := p.Catalog.Model(id)
		cands := p.candidates(creds, m, prefs, &plan.Excluded)
		plan.Candidates = append(plan.Candidates, cands...)
	}
	if len(plan.Candidates) == 0 {
		return Plan{}, noEndpoints(models, plan.Excluded)
	}
	if !prefs.Fallbacks() {
		plan.Candidates = plan.Candidates[:1]
	}
	return plan, nil
}

// CheckModels fails with not_found for the first model id the catalog does
// not have. It costs no I/O, so the server runs it before validating a
// request body in full.
func CheckModels(c *catalog.Catalog, models []string) error {
	for _, id := range models {
		if _, ok := c.Model(id); !ok {
			id = safetext.Clean(id, 128)
			return apierr.New(http.StatusNotFound, apierr.NotFound,
				"Model '%s' is not in the catalog; GET /v1/models lists the models you can use.", id).With("model", id)
		}
	}
	return nil
}

func (p *Planner) candidates(creds Set, m *catalog.Model, prefs Prefs, excluded *[]Exclusion) []Candidate {
	var out []Candidate
	for _, e := range m.Endpoints {
		prov, _ := p.Catalog.Provider(e.Provider) // catalog validation guarantees it exists
		cred, hasCred := creds[e.Provider]
		reason := ""
		switch {
		case len(prefs.Only) > 0 && !slices.Contains(prefs.Only, e.Provider):
			reason = ReasonOnly
		case slices.Contains(prefs.Ignore, e.Provider):
			reason = ReasonIgnore
		case prefs.ZDR && !prov.DataPolicy.ZDR:
			reason = ReasonZDR
		case prefs.DataCollection == "deny" && prov.DataPolicy.TrainsOnData:
			reason = ReasonDataCollection
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
	sortCandidates(out, prefs.Order)
	return out
}

// sortCandidates puts provider.order first (in its order), then the rest
// cheapest first (prompt + completion price per token), ties by slug.
func sortCandidates(c []Candidate, order []string) {
	rank := func(slug string) int {
		if i := slices.Index(order, slug); i >= 0 {
			return i
		}
		return len(order)
	}
	sort.SliceStable(c, func(i, j int) bool {
		ri, rj := rank(c[i].Provider.Slug), rank(c[j].Provider.Slug)
		if ri != rj {
			return ri < rj
		}
		pi := c[i].Endpoint.Pricing.Prompt.Add(c[i].Endpoint.Pricing.Completion)
		pj := c[j].Endpoint.Pricing.Prompt.Add(c[j].Endpoint.Pricing.Completion)
		if !pi.Equal(pj) {
			return pi.LessThan(pj)
		}
		return c[i].Provider.Slug < c[j].Provider.Slug
	})
}

// noEndpoints explains an empty plan: privacy_restricted when only data
// policies stood in the way, no_endpoints otherwise.
func noEndpoints(models []string, excluded []Exclusion) *apierr.Error {
	reasons := map[string]bool{}
	var list []string
	for _, x := range excluded {
		if !reasons[x.Reason] {
			reasons[x.Reason] = true
			list = append(list, x.Reason)
		}
	}
	privacyOnly := len(list) > 0
	for _, r := range list {
		privacyOnly = privacyOnly && strings.HasPrefix(r, "data_policy:")
	}
	names := strings.Join(models, ", ")
	if privacyOnly {
		return apierr.New(http.StatusNotFound, apierr.PrivacyRestricted,
			"No endpoint of %s meets the data policy this request requires (%s); relax it or choose another model.",
			names, strings.Join(list, ", ")).With("excluded_by", list).With("excluded", excluded)
	}
	msg := "No endpoint can serve %s: excluded by %s."
	if reasons[ReasonCredentials] {
		msg += " Configure a credential for one of its providers."
	}
	return apierr.New(http.StatusNotFound, apierr.NoEndpoints, msg, names, strings.Join(list, ", ")).
		With("excluded_by", list).With("excluded", excluded)
}

// Offer is a model the workspace can route to, with its cheapest endpoint
// it can use.
type Offer struct {
	Model    *catalog.Model
	Endpoint catalog.Endpoint
}

// Routable lists the models of the catalog that have at least one endpoint
// the workspace holds a credential for and Perpetuo has an adapter for.
func (p *Planner) Routable(ctx context.Context, workspaceID string) ([]Offer, error) {
	creds, err := p.Credentials.For(ctx, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("workspace credentials: %w", err)
	}
	var out []Offer
	for _, m := range p.Catalog.Models() {
		var excluded []Exclusion
		if cands := p.candidates(creds, m, Prefs{}, &excluded); len(cands) > 0 {
			out = append(out, Offer{Model: m, Endpoint: cands[0].Endpoint})
		}
	}
	return out, nil
}
