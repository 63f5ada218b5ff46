package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/apierr"

	"github.com/perpetuo/perpetuo/internal/records"
	"github.com/perpetuo/perpetuo/internal/store"
)

// GetGeneration implements api.StrictServerInterface.
func (s *Server) GetGeneration(ctx context.Context, req api.GetGenerationRequestObject) (api.GetGenerationResponseObject, error) {
	k := callerKey(ctx)
	g, err := s.generations.Get(ctx, k.WorkspaceID, req.Params.Id)
	if errors.Is(err, records.ErrNotFound) {
		return nil, apierr.New(http.StatusNotFound, apierr.NotFound,
			"Generation %s does not exist in this workspace; use the id from the completion's 'id' or X-Generation-Id.", req.Params.Id)
	}
	if err != nil {
		return nil, err
	}
	return api.GetGeneration200JSONResponse{Data: generationOf(g)}, nil
}

func generationOf(g records.Generation) api.Generation {
	var md *map[string]string
	if len(g.Metadata) > 0 {
		md = &g.Metadata
	}
	out := api.Generation{Metadata: md,
		Id: g.ID, CreatedAt: g.CreatedAt, RequestedModel: g.RequestedModel, KeyId: &g.KeyID,
		Model: cmp.Or(g.Model, g.RequestedModel), ProviderName: opt(g.Provider), UpstreamId: opt(g.UpstreamID),
		App: opt(g.App.ID), AppTitle: opt(g.App.Title), HttpReferer: opt(g.App.Referer), Origin: origin(g.App.Referer),
		AppCategories: ptrTo(nonNil(g.App.Categories)), ClientName: opt(g.App.ClientName), ClientVersion: opt(g.App.ClientVersion),
		User: opt(g.User), ExternalUser: opt(g.User), SessionId: opt(g.SessionID), WorkspaceId: g.WorkspaceID,
		ApiType: api.Completions, DataRegion: api.Global,
		Streamed: g.Streamed, Cancelled: g.Cancelled, Status: g.Status, Zdr: g.ZDR,
		FinishReason: opt(g.FinishReason), NativeFinishReason: opt(g.NativeFinishReason),
		TokensPrompt: g.PromptTokens, TokensCompletion: g.CompletionTokens,
		NativeTokensReasoning: g.ReasoningTokens, NativeTokensCached: g.CachedTokens,
		NativeTokensPrompt: g.PromptTokens, NativeTokensCompletion: g.CompletionTokens,
		TotalCost: money(g.Cost), Usage: money(g.Cost), UpstreamInferenceCost: money(g.Cost), IsByok: g.BYOK, Latency: int(g.Latency.Milliseconds()),
		UsageEstimated: g.UsageEstimated, Anomaly: opt(g.Anomaly),
		Attempts: make([]api.Attempt, len(g.Attempts)),
	}
	if g.ErrorType != "" {
		t := api.ErrorType(g.ErrorType)
		out.ErrorType = &t
	}
	if g.TTFT > 0 {
		ms := int(g.TTFT.Milliseconds())
		out.TimeToFirstToken = &ms
		out.GenerationTime = ptrTo(max(int((g.Latency - g.TTFT).Milliseconds()), 0))
	}
	responses := make([]api.ProviderResponse, len(g.Attempts))
	for i, a := range g.Attempts {
		responses[i] = api.ProviderResponse{EndpointId: a.Model + "@" + a.Provider, ModelPermaslug: a.Model,
			ProviderName: a.Provider, Latency: int(a.LatencyMs), IsByok: g.BYOK && a.Provider == g.Provider}
		if a.Status != 0 {
			responses[i].Status = ptrTo(a.Status)
		}
	}
	out.ProviderResponses = responses
	for i, a := range g.Attempts {
		out.Attempts[i] = api.Attempt{Provider: a.Provider, Model: a.Model, Status: a.Status, Latency: int(a.LatencyMs)}
		if a.ErrorType != "" {
			t := api.ErrorType(a.ErrorType)
			out.Attempts[i].ErrorType = &t
		}
		if a.Class != "" {
			c := api.AttemptClass(a.Class)
			out.Attempts[i].Class = &c
		}
	}
	if len(g.Routing) > 0 {
		// The stored decision is routing.Decision's JSON, whose names the
		// spec's RoutingDecision mirrors; one that does not decode (a
		// record from an older version) is left out rather than failing.
		var rd api.RoutingDecision
		if err := json.Unmarshal(g.Routing, &rd); err == nil {
			out.Routing = &rd
		}
	}
	return out
}

// origin is the scheme and host of a stored referer, or empty.
func origin(referer string) string {
	u, err := url.Parse(referer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// GetCurrentKey implements api.StrictServerInterface.
func (s *Server) GetCurrentKey(ctx context.Context, _ api.GetCurrentKeyRequestObject) (api.GetCurrentKeyResponseObject, error) {
	k := callerKey(ctx)
	u, err := s.keyUsage(ctx, k.ID)
	if err != nil {
		return nil, err
	}
	manages := k.Role == access.Owner || k.Role == access.Admin
	out := api.Key{
		Id: k.ID, Name: k.Name, Label: k.Label, WorkspaceId: k.WorkspaceID, MemberId: k.MemberID,
		Role: api.KeyRole(k.Role), Operator: k.Operator, IncludeByokInLimit: k.IncludeBYOKInLimit, RequireZdr: k.RequireZDR,
		ExpiresAt: k.ExpiresAt, Disabled: k.Disabled, CreatedAt: k.CreatedAt,
		Usage: money(u.Total), UsageDaily: money(u.Daily), UsageWeekly: money(u.Weekly),
		UsageMonthly: money(u.Monthly), ByokUsage: money(u.BYOK), ByokUsageDaily: money(u.BYOKDaily),
		ByokUsageWeekly: money(u.BYOKWeekly), ByokUsageMonthly: money(u.BYOKMonthly),
		IsManagementKey: manages, IsProvisioningKey: manages, AllowedDataRegions: []string{},
	}
	out.RateLimit.Requests, out.RateLimit.Note = -1, "Perpetuo does not rate-limit keys; an upstream's rate limit answers 429 rate_limit_exceeded."
	if k.LimitReset != "" {
		lr := api.KeyLimitReset(k.LimitReset)
		out.LimitReset = &lr
	}
	// What remains is what the ledger enforces: settled spend and what
	// requests in flight hold, in the current period.
	v, err := s.budgetOf(ctx, "key", k.ID, k.Limit, k.LimitReset)
	if err != nil {
		return nil, err
	}
	out.Limit, out.LimitRemaining = v.limit, v.remaining
	pol, err := s.policies.For(ctx, k)
	if err != nil {
		return nil, err
	}
	zdrBy := append([]string{}, pol.ZDRBy...)
	out.ZdrRequiredBy = &zdrBy
	out.Guardrails = make([]api.GoverningGuardrail, len(pol.Guardrails))
	for i, g := range pol.Guardrails {
		v, err := s.budgetOf(ctx, "guardrail", g.ID, g.Limit, g.Reset)
		if err != nil {
			return nil, err
		}
		out.Guardrails[i] = api.GoverningGuardrail{Id: g.ID, Name: g.Name, Via: api.GoverningGuardrailVia(g.Via),
			LimitUsd: v.limit, ResetInterval: v.reset, Usage: v.usage, LimitRemaining: v.remaining, ResetsAt: v.resetsAt}
	}
	return api.GetCurrentKey200JSONResponse{Data: out}, nil
}

// keyUsage is the key's spend, lifetime and per period, BYOK apart. This
// replica's records of the key that are not written yet count too: listed
// before the read, so a write committing meanwhile is found written by the
// read and counted once.
func (s *Server) keyUsage(ctx context.Context, keyID string) (store.KeyUsage, error) {
	now := s.now()
	pending := s.generations.PendingSpend(keyID)
	ids := make([]string, len(pending))
	for i, p := range pending {
		ids[i] = p.ID
	}
	u, written, err := s.store.KeyUsage(ctx, keyID, now, ids)
	if err != nil {
		return store.KeyUsage{}, err
	}
	day, week, month := store.PeriodStarts(now)
	for _, p := range pending {
		if written[p.ID] {
			continue
		}
		total, daily, weekly, monthly := &u.Total, &u.Daily, &u.Weekly, &u.Monthly
		if p.BYOK {
			total, daily, weekly, monthly = &u.BYOK, &u.BYOKDaily, &u.BYOKWeekly, &u.BYOKMonthly
		}
		*total = total.Add(p.Cost)
		for _, pu := range []struct {
			start time.Time
			sum   *decimal.Decimal
		}{{day, daily}, {week, weekly}, {month, monthly}} {
			if !p.At.Before(pu.start) {
				*pu.sum = pu.sum.Add(p.Cost)
			}
		}
	}
	return u, nil
}

// money renders an exact decimal as a JSON number.
func money(d decimal.Decimal) json.Number { return json.Number(d.String()) }

func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
