package store

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/gen/db"
)

// Reserve implements budget.Ledger in one statement.
func (s *Store) Reserve(ctx context.Context, kind, id string, period time.Time, amount, limit decimal.Decimal) (bool, decimal.Decimal, decimal.Decimal, error) {
	r, err := s.q.SpendReserve(ctx, db.SpendReserveParams{Scope: kind, ScopeID: id, PeriodStart: period, Amount: amount, LimitUsd: limit})
	if isNoRows(err) {
		spent, reserved, err := s.Spend(ctx, kind, id, period)
		return false, spent, reserved, err
	}
	if err != nil {
		return false, decimal.Zero, decimal.Zero, fmt.Errorf("reserve: %w", err)
	}
	return true, r.Spent, r.Reserved, nil
}

// Settle implements budget.Ledger.
func (s *Store) Settle(ctx context.Context, kind, id string, period time.Time, reserved, actual decimal.Decimal) error {
	err := s.q.SpendSettle(ctx, db.SpendSettleParams{Scope: kind, ScopeID: id, PeriodStart: period, Reserved: reserved, Actual: actual})
	if err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	return nil
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
