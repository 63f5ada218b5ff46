package server

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/routing"
)

// ListModels implements api.StrictServerInterface: the models the caller's
// workspace can route to, in OpenRouter's shape.
func (s *Server) ListModels(ctx context.Context, req api.ListModelsRequestObject) (api.ListModelsResponseObject, error) {
	k := callerKey(ctx)
	ms, err := s.models.Routable(ctx, k.WorkspaceID, deref(req.Params.Zdr))
	if err != nil {
		return nil, err
	}
	out := api.ModelList{Data: make([]api.Model, len(ms)), TotalCount: len(ms)}
	for i, o := range ms {
		out.Data[i] = modelOf(o.Model, o.Endpoint)
	}
	return api.ListModels200JSONResponse(out), nil
}

// ListModelEndpoints implements api.StrictServerInterface.
func (s *Server) ListModelEndpoints(ctx context.Context, req api.ListModelEndpointsRequestObject) (api.ListModelEndpointsResponseObject, error) {
	k := callerKey(ctx)
	m, eps, err := s.models.Endpoints(ctx, k.WorkspaceID, req.Author+"/"+req.Slug)
	if err != nil {
		return nil, err
	}
	var out api.ModelEndpointsResponse
	d := &out.Data
	d.Id, d.Name, d.Created, d.Description = m.ID, m.Name, m.Created, m.Description
	a := architectureOf(m)
	d.Architecture = api.EndpointsArchitecture{Modality: a.Modality, InputModalities: a.InputModalities,
		OutputModalities: a.OutputModalities, Tokenizer: a.Tokenizer}
	d.Endpoints = make([]api.ModelEndpoint, len(eps))
	for i, r := range eps {
		d.Endpoints[i] = endpointOf(r)
	}
	return api.ListModelEndpoints200JSONResponse(out), nil
}

// ListZdrEndpoints implements api.StrictServerInterface: the ZDR endpoints
// the caller may use, its guardrails' model and provider lists applied.
func (s *Server) ListZdrEndpoints(ctx context.Context, _ api.ListZdrEndpointsRequestObject) (api.ListZdrEndpointsResponseObject, error) {
	k := callerKey(ctx)
	pol, err := s.policies.For(ctx, k)
	if err != nil {
		return nil, err
	}
	filter := pol.Filter()
	eps, err := s.models.ZDREndpoints(ctx, k.WorkspaceID, func(c *routing.Candidate) bool {
		if _, ok := pol.ModelAllowed(c.Model.ID); !ok {
			return false
		}
		return filter == nil || filter.Exclude(c) == ""
	})
	if err != nil {
		return nil, err
	}
	out := api.EndpointList{Data: make([]api.ModelEndpoint, len(eps))}
	for i, r := range eps {
		out.Data[i] = endpointOf(r)
	}
	return api.ListZdrEndpoints200JSONResponse(out), nil
}

// endpointOf is an endpoint in OpenRouter's shape, with its live health.
func endpointOf(r routing.EndpointReport) api.ModelEndpoint {
	m, e, h := r.Model, r.Endpoint, r.Health
	me := api.ModelEndpoint{
		Name: r.Provider.Name + " | " + m.ID, ModelId: m.ID, ModelName: m.Name, ContextLength: e.ContextLength,
		Pricing:      pricingOf(e.Pricing),
		ProviderName: r.Provider.Name, Tag: r.Provider.Slug, Quantization: cmp.Or(e.Quantization, "unknown"),
		SupportedParameters: e.SupportedParameters, Status: h.Status, Routable: r.Routable,
		UptimeLast5m: h.Uptime5m, UptimeLast30m: h.Uptime30m, UptimeLast1d: h.Uptime1d,
		LatencyLast30m: percentiles(h.Latency30m), ThroughputLast30m: percentiles(h.Throughput30m),
	}
	if me.SupportedParameters == nil {
		me.SupportedParameters = []string{}
	}
	if e.MaxCompletionTokens > 0 {
		me.MaxCompletionTokens = ptrTo(e.MaxCompletionTokens)
	}
	tc := slices.Contains(e.SupportedParameters, "tool_choice")
	me.SupportsToolChoice.Auto, me.SupportsToolChoice.None, me.SupportsToolChoice.Required, me.SupportsToolChoice.Function = tc, tc, tc, tc
	return me
}

func percentiles(p *routing.Percentiles) *api.PercentileStats {
	if p == nil {
		return nil
	}
	return &api.PercentileStats{P50: p.P50, P75: p.P75, P90: p.P90, P99: p.P99}
}

// ListProviders implements api.StrictServerInterface.
func (s *Server) ListProviders(ctx context.Context, _ api.ListProvidersRequestObject) (api.ListProvidersResponseObject, error) {
	ps := s.catalog.Providers()
	out := api.ProviderList{Data: make([]api.ProviderInfo, len(ps))}
	for i, p := range ps {
		out.Data[i] = api.ProviderInfo{Slug: p.Slug, Name: p.Name, Api: p.API, Zdr: p.DataPolicy.ZDR,
			TrainsOnData: p.DataPolicy.TrainsOnData, RetentionDays: p.DataPolicy.RetentionDays,
			DataPolicySource: opt(p.DataPolicy.Source), DataPolicyUpdatedAt: opt(p.DataPolicy.UpdatedAt)}
		if strings.HasPrefix(p.DataPolicy.Source, "https://") {
			out.Data[i].PrivacyPolicyUrl = &p.DataPolicy.Source
		}
	}
	return api.ListProviders200JSONResponse(out), nil
}

// pricingOf is p in OpenRouter's units, the classes priced apart only
// where they are.
func pricingOf(p catalog.Pricing) api.Pricing {
	str := func(d *decimal.Decimal) *string {
		if d == nil {
			return nil
		}
		return ptrTo(d.String())
	}
	return api.Pricing{Prompt: p.Prompt.String(), Completion: p.Completion.String(), Request: ptrTo(p.Request.String()),
		InputCacheRead: str(p.InputCacheRead), InputCacheWrite: str(p.InputCacheWrite), InternalReasoning: str(p.InternalReasoning)}
}

// modelOf shows a model with the endpoint the caller would be routed to
// first (its pricing and limits).
func modelOf(m *catalog.Model, top catalog.Endpoint) api.Model {
	out := api.Model{
		Id: m.ID, CanonicalSlug: m.ID, Name: m.Name, Created: m.Created, ContextLength: m.ContextLength,
		Pricing:             pricingOf(top.Pricing),
		SupportedParameters: top.SupportedParameters,
	}
	out.Links.Details = "/api/v1/models/" + m.ID + "/endpoints"
	if m.Description != "" {
		out.Description = &m.Description
	}
	out.Architecture = architectureOf(m)
	out.TopProvider.ContextLength = top.ContextLength
	if top.MaxCompletionTokens > 0 {
		out.TopProvider.MaxCompletionTokens = ptrTo(top.MaxCompletionTokens)
	}
	if out.SupportedParameters == nil {
		out.SupportedParameters = []string{}
	}
	return out
}

// architectureOf is a model's modalities and tokenizer.
func architectureOf(m *catalog.Model) api.Architecture {
	a := api.Architecture{InputModalities: orText(m.InputModalities), OutputModalities: orText(m.OutputModalities),
		Modality: modality(m)}
	if m.Tokenizer != "" {
		a.Tokenizer = &m.Tokenizer
	}
	return a
}

// orText defaults a model's modalities to text, which every model handles.
func orText(ms []string) []string {
	if len(ms) == 0 {
		return []string{"text"}
	}
	return ms
}

func modality(m *catalog.Model) string {
	join := func(xs []string) string {
		s := ""
		for i, x := range xs {
			if i > 0 {
				s += "+"
			}
			s += x
		}
		return s
	}
	return join(orText(m.InputModalities)) + "->" + join(orText(m.OutputModalities))
}

func ptrTo[T any](v T) *T { return &v }
