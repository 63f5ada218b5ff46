package server

import (
	"context"
	"time"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/analytics"
)

// GetAnalytics implements api.StrictServerInterface.
func (s *Server) GetAnalytics(ctx context.Context, req api.GetAnalyticsRequestObject) (api.GetAnalyticsResponseObject, error) {
	caller, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	p := req.Params
	q := analytics.Query{Dimension: string(req.Dimension), App: deref(p.AppId), Model: deref(p.Model),
		Provider: deref(p.Provider), Key: deref(p.KeyId), Member: deref(p.MemberId)}
	if p.From != nil {
		q.From = *p.From
	}
	if p.To != nil {
		q.To = *p.To
	}
	if p.Granularity != nil {
		q.Granularity = string(*p.Granularity)
	}
	rep, err := s.analytics.Report(ctx, caller, q)
	if err != nil {
		return nil, err
	}
	var out api.GetAnalytics200JSONResponse
	d := &out.Data
	d.Dimension, d.From, d.To = rep.Dimension, rep.From, rep.To
	if rep.Granularity != "" {
		d.Granularity = &rep.Granularity
	}
	d.Groups = make([]api.AnalyticsGroup, len(rep.Groups))
	for i, g := range rep.Groups {
		st := statsOf(g.Sums)
		ag := api.AnalyticsGroup{Id: g.ID, Models: nonNil(g.Models), Requests: st.Requests, Errors: st.Errors,
			ErrorRate: st.ErrorRate, PromptTokens: st.PromptTokens, CompletionTokens: st.CompletionTokens,
			ReasoningTokens: st.ReasoningTokens, Cost: st.Cost, ByokCost: st.ByokCost, LatencyP50Ms: st.LatencyP50Ms,
			LatencyP95Ms: st.LatencyP95Ms, TtftP50Ms: st.TtftP50Ms, TtftP95Ms: st.TtftP95Ms}
		if rep.Granularity != "" {
			series := make([]api.AnalyticsPoint, len(g.Series))
			for j, pt := range g.Series {
				st := statsOf(pt.Sums)
				series[j] = api.AnalyticsPoint{Start: pt.Start, Requests: st.Requests, Errors: st.Errors, ErrorRate: st.ErrorRate,
					PromptTokens: st.PromptTokens, CompletionTokens: st.CompletionTokens, ReasoningTokens: st.ReasoningTokens,
					Cost: st.Cost, ByokCost: st.ByokCost, LatencyP50Ms: st.LatencyP50Ms, LatencyP95Ms: st.LatencyP95Ms,
					TtftP50Ms: st.TtftP50Ms, TtftP95Ms: st.TtftP95Ms}
			}
			ag.Series = &series
		}
		d.Groups[i] = ag
	}
	return out, nil
}

// statsOf renders sums with their rates and percentiles.
func statsOf(s analytics.Sums) api.AnalyticsStats {
	st := api.AnalyticsStats{Requests: s.Requests, Errors: s.Errors, PromptTokens: s.PromptTokens,
		CompletionTokens: s.CompletionTokens, ReasoningTokens: s.ReasoningTokens, Cost: money(s.Cost), ByokCost: money(s.BYOKCost)}
	if s.Requests > 0 {
		st.ErrorRate = float64(s.Errors) / float64(s.Requests)
	}
	pct := func(h []int64, q float64) *float64 {
		if v := analytics.Percentile(h, q); v > 0 {
			return &v
		}
		return nil
	}
	st.LatencyP50Ms, st.LatencyP95Ms = pct(s.Latency, 0.5), pct(s.Latency, 0.95)
	st.TtftP50Ms, st.TtftP95Ms = pct(s.TTFT, 0.5), pct(s.TTFT, 0.95)
	return st
}

// GetActivity implements api.StrictServerInterface.
func (s *Server) GetActivity(ctx context.Context, req api.GetActivityRequestObject) (api.GetActivityResponseObject, error) {
	caller, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	var day time.Time
	if req.Params.Date != nil {
		day = req.Params.Date.Time
	}
	rows, err := s.analytics.Activity(ctx, caller, day)
	if err != nil {
		return nil, err
	}
	out := api.GetActivity200JSONResponse{Data: make([]api.ActivityRow, len(rows))}
	for i, r := range rows {
		out.Data[i] = api.ActivityRow{Date: r.Date.Format(time.DateOnly), Model: r.Model, ModelPermaslug: r.Model,
			EndpointId: r.Model + "@" + r.Provider, ProviderName: r.Provider, Usage: money(r.Cost),
			ByokUsageInference: money(r.BYOKCost), Requests: r.Requests, PromptTokens: r.PromptTokens,
			CompletionTokens: r.CompletionTokens, ReasoningTokens: r.ReasoningTokens}
	}
	return out, nil
}
