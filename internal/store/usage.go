package store

import (
	"context"
	"fmt"
	"time"

	"github.com/perpetuo/perpetuo/gen/db"
	"github.com/perpetuo/perpetuo/internal/analytics"
)

var _ analytics.Store = (*Store)(nil)

// UsageRows implements analytics.Store.
func (s *Store) UsageRows(ctx context.Context, workspaceID string, from, to time.Time, member string) ([]analytics.Row, error) {
	rows, err := s.q.UsageHourlyRange(ctx, db.UsageHourlyRangeParams{WorkspaceID: workspaceID, FromHour: from, ToHour: to,
		MemberID: ptr(member)})
	if err != nil {
		return nil, fmt.Errorf("read usage aggregates: %w", err)
	}
	out := make([]analytics.Row, len(rows))
	for i, r := range rows {
		out[i] = analytics.Row{Workspace: workspaceID, Hour: r.Hour,
			Dims: analytics.Dims{App: r.AppID, Model: r.Model, Provider: r.Provider, Key: r.KeyID, Member: r.MemberID},
			Sums: analytics.Sums{Requests: r.Requests, Errors: r.Errors, PromptTokens: r.PromptTokens,
				CompletionTokens: r.CompletionTokens, ReasoningTokens: r.ReasoningTokens, Cost: r.CostUsd, BYOKCost: r.ByokCostUsd,
				Latency: r.LatencyHist, TTFT: r.TtftHist}}
	}
	return out, nil
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
				Latency: r.LatencyHist, TTFT: r.TtftHist}}
	}
	return out, nil
}
