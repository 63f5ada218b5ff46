package store

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/gen/db"
	"github.com/perpetuo/perpetuo/internal/budget"
)

// Reserve implements budget.Ledger in one statement.
func (s *Store) Reserve(ctx context.Context, h budget.Hold, limit decimal.Decimal) (bool, decimal.Decimal, decimal.Decimal, error) {
	r, err := s.q.SpendReserve(ctx, db.SpendReserveParams{HoldID: h.ID, Scope: h.Kind, ScopeID: h.ScopeID,
		PeriodStart: h.Period, Amount: h.Amount, LimitUsd: limit, ExpiresAt: h.Expires,
		GenerationID: h.GenerationID, ReplicaID: h.Replica, RequestedModel: h.Model, Streamed: h.Streamed})
	if isNoRows(err) {
		spent, reserved, err := s.Spend(ctx, h.Kind, h.ScopeID, h.Period)
		return false, spent, reserved, err
	}
	if err != nil {
		return false, decimal.Zero, decimal.Zero, fmt.Errorf("reserve: %w", err)
	}
	return true, r.Spent, r.Reserved, nil
}

// Settle implements budget.Ledger. A hold already swept (its request
// outlived the hold's expiry) was charged in full by the sweep.
func (s *Store) Settle(ctx context.Context, holdID string, actual decimal.Decimal) error {
	if _, err := s.q.SpendSettle(ctx, db.SpendSettleParams{HoldID: holdID, Actual: actual}); err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	return nil
}

// SweepHolds charges and releases holds that will never settle: expired
// ones, and those of replicas silent since deadBefore. It returns what it
// charged per scope.
func (s *Store) SweepHolds(ctx context.Context, now, deadBefore time.Time) ([]budget.Swept, error) {
	rows, err := s.q.SpendSweep(ctx, db.SpendSweepParams{Now: now, DeadBefore: deadBefore})
	if err != nil {
		return nil, fmt.Errorf("sweep holds: %w", err)
	}
	out := make([]budget.Swept, len(rows))
	for i, r := range rows {
		out[i] = budget.Swept{Kind: r.Scope, ScopeID: r.ScopeID, Amount: r.Amount, Known: r.Known}
	}
	return out, nil
}

// Spend returns a scope's spent and reserved amounts in a period (zero when
// nothing was spent).
func (s *Store) Spend(ctx context.Context, kind, id string, period time.Time) (spent, reserved decimal.Decimal, err error) {
	r, err := s.q.SpendGet(ctx, db.SpendGetParams{Scope: kind, ScopeID: id, PeriodStart: period})
	if isNoRows(err) {
		return decimal.Zero, decimal.Zero, nil
	}
	if err != nil {
		return decimal.Zero, decimal.Zero, fmt.Errorf("get spend: %w", err)
	}
	return r.Spent, r.Reserved, nil
}
