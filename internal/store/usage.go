package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/perpetuo/perpetuo/gen/db"
	"github.com/perpetuo/perpetuo/internal/analytics"
)

var _ analytics.Store = (*Store)(nil)

// UsageGroups implements analytics.Store.
func (s *Store) UsageGroups(ctx context.Context, workspaceID, dimension, granularity string, from, to time.Time,
	f analytics.Filter) ([]analytics.SumRow, []analytics.HistRow, error) {
	sums, err := s.q.UsageSums(ctx, db.UsageSumsParams{Dimension: dimension, Granularity: granularity, WorkspaceID: workspaceID,
		FromHour: from, ToHour: to, AppID: f.App, Model: f.Model, Provider: f.Provider, KeyID: f.Key, MemberID: f.Member})
	if err != nil {
		return nil, nil, fmt.Errorf("read usage aggregates: %w", err)
	}
	out := make([]analytics.SumRow, len(sums))
	for i, r := range sums {
		out[i] = analytics.SumRow{ID: r.ID, Bucket: r.Bucket, Model: r.Model, Provider: r.Provider,
			Sums: analytics.Sums{Requests: r.Requests, Errors: r.Errors, PromptTokens: r.PromptTokens,
				CompletionTokens: r.CompletionTokens, ReasoningTokens: r.ReasoningTokens, Cost: r.CostUsd, BYOKCost: r.ByokCostUsd}}
	}
	if dimension == "" {
		return out, nil, nil // activity: no percentiles
	}
	hs, err := s.q.UsageHistograms(ctx, db.UsageHistogramsParams{Dimension: dimension, Granularity: granularity,
		WorkspaceID: workspaceID, FromHour: from, ToHour: to, AppID: f.App, Model: f.Model, Provider: f.Provider,
		KeyID: f.Key, MemberID: f.Member})
	if err != nil {
		return nil, nil, fmt.Errorf("read usage histograms: %w", err)
	}
	hists := make([]analytics.HistRow, len(hs))
	for i, h := range hs {
		hists[i] = analytics.HistRow{ID: h.ID, Bucket: h.Bucket, TTFT: h.Kind == "t", Index: int(h.B), N: h.N}
	}
	return out, hists, nil
}

// GuardrailUsageRows implements analytics.Store.
func (s *Store) GuardrailUsageRows(ctx context.Context, workspaceID string, from, to time.Time) ([]analytics.GuardrailRow, error) {
	rows, err := s.q.UsageGuardrailRange(ctx, db.UsageGuardrailRangeParams{WorkspaceID: workspaceID, FromHour: from, ToHour: to})
	if err != nil {
		return nil, fmt.Errorf("read guardrail usage aggregates: %w", err)
	}
	out := make([]analytics.GuardrailRow, len(rows))
	for i, r := range rows {
		out[i] = analytics.GuardrailRow{Workspace: workspaceID, Guardrail: r.GuardrailID, Hour: r.Hour,
			Sums: analytics.Sums{Requests: r.Requests, Errors: r.Errors, PromptTokens: r.PromptTokens,
				CompletionTokens: r.CompletionTokens, ReasoningTokens: r.ReasoningTokens, Cost: r.CostUsd, BYOKCost: r.ByokCostUsd,
				Latency: histOf(r.LatencyHist), TTFT: histOf(r.TtftHist)}}
	}
	return out, nil
}

// histOf decodes a stored sparse histogram; an unreadable one counts
// nothing.
func histOf(b []byte) []int64 {
	var sparse map[string]int64
	_ = json.Unmarshal(b, &sparse)
	return analytics.HistOf(sparse)
}
