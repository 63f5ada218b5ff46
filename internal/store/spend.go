package store

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/gen/db"
	"github.com/perpetuo/perpetuo/internal/budget"
	"github.com/perpetuo/perpetuo/internal/spend"
)

// TakeLeases implements budget.Ledger: one call of spend_lease_take
// (sql/migrations/000006) for every take, in one round trip and one
// transaction.
func (s *Store) TakeLeases(ctx context.Context, replica string, expires time.Time, takes []budget.Take) ([]budget.Grant, error) {
	n := len(takes)
	kinds, ids, periods := make([]string, n), make([]string, n), make([]time.Time, n)
	limits, needs, wants := make([]decimal.Decimal, n), make([]decimal.Decimal, n), make([]decimal.Decimal, n)
	for i, t := range takes {
		kinds[i], ids[i], periods[i] = t.Key.Kind, t.Key.ID, t.Key.Period
		limits[i], needs[i], wants[i] = t.Limit, t.Need, t.Want
	}
	rows, err := s.pool.Query(ctx, `SELECT idx, granted, spent, reserved, coalesce(lease_id, 0) FROM spend_lease_take($1, $2, $3, $4, $5, $6, $7, $8)`,
		replica, expires, kinds, ids, periods, limits, needs, wants)
	if err != nil {
		return nil, fmt.Errorf("take budget leases: %w", err)
	}
	defer rows.Close()
	out := make([]budget.Grant, n)
	for rows.Next() {
		var i int
		var g budget.Grant
		if err := rows.Scan(&i, &g.Granted, &g.Spent, &g.Reserved, &g.LeaseID); err != nil {
			return nil, fmt.Errorf("take budget leases: %w", err)
		}
		if i < 1 || i > n {
			return nil, fmt.Errorf("take budget leases: row %d of %d", i, n)
		}
		out[i-1] = g
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("take budget leases: %w", err)
	}
	return out, nil
}

// FlushLeases implements budget.Ledger with spend_lease_flush.
func (s *Store) FlushLeases(ctx context.Context, replica string, seq int64, expires time.Time, fl []budget.Flush) ([]budget.FlushState, error) {
	n := len(fl)
	kinds, ids, periods := make([]string, n), make([]string, n), make([]time.Time, n)
	leases, spent, release := make([]int64, n), make([]decimal.Decimal, n), make([]decimal.Decimal, n)
	for i, f := range fl {
		kinds[i], ids[i], periods[i], leases[i] = f.Key.Kind, f.Key.ID, f.Key.Period, f.LeaseID
		spent[i], release[i] = f.Spent, f.Release
	}
	rows, err := s.pool.Query(ctx, `SELECT idx, state FROM spend_lease_flush($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		replica, seq, expires, kinds, ids, periods, leases, spent, release)
	if err != nil {
		return nil, fmt.Errorf("flush budget leases: %w", err)
	}
	defer rows.Close()
	out := make([]budget.FlushState, n)
	for rows.Next() {
		var i int
		var state string
		if err := rows.Scan(&i, &state); err != nil {
			return nil, fmt.Errorf("flush budget leases: %w", err)
		}
		if i < 1 || i > n {
			return nil, fmt.Errorf("flush budget leases: row %d of %d", i, n)
		}
		switch state {
		case "applied":
			out[i-1] = budget.Applied
		case "seen":
			out[i-1] = budget.Seen
		default:
			out[i-1] = budget.Gone
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("flush budget leases: %w", err)
	}
	return out, nil
}

// ReturnLeases implements budget.Ledger: every lease replica still holds
// is handed back.
func (s *Store) ReturnLeases(ctx context.Context, replica string) error {
	if _, err := s.q.SpendLeaseReturn(ctx, replica); err != nil {
		return fmt.Errorf("return budget leases: %w", err)
	}
	return nil
}

// SweepLeases charges and deletes leases that will never be flushed:
// expired ones, and those of replicas silent since deadBefore. It returns
// what it charged per budget.
func (s *Store) SweepLeases(ctx context.Context, now, deadBefore time.Time) ([]budget.Swept, error) {
	rows, err := s.q.SpendLeaseSweep(ctx, db.SpendLeaseSweepParams{Now: now, DeadBefore: deadBefore})
	if err != nil {
		return nil, fmt.Errorf("sweep budget leases: %w", err)
	}
	out := make([]budget.Swept, len(rows))
	for i, r := range rows {
		out[i] = budget.Swept{Kind: r.Scope, ScopeID: r.ScopeID, Amount: r.Amount}
	}
	return out, nil
}

// Leases counts the leases a replica holds.
func (s *Store) Leases(ctx context.Context, replica string) (int64, error) {
	n, err := s.q.SpendLeaseCount(ctx, replica)
	if err != nil {
		return 0, fmt.Errorf("count budget leases: %w", err)
	}
	return n, nil
}

// Spend returns a budget's spent and reserved amounts in a period (zero
// when nothing was spent). Reserved includes the replicas' leases.
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

var _ spend.Store = (*Store)(nil)

// KeyUsageHistory implements spend.Store.
func (s *Store) KeyUsageHistory(ctx context.Context, keyID, period string, n int) ([]spend.Period, error) {
	rows, err := s.q.KeyUsageHistory(ctx, db.KeyUsageHistoryParams{KeyID: keyID, Period: period, MaxPeriods: int32(n)})
	if err != nil {
		return nil, fmt.Errorf("key usage history: %w", err)
	}
	out := make([]spend.Period, len(rows))
	for i, r := range rows {
		out[i] = spend.Period{Start: r.PeriodStart, Usage: r.Usage, BYOK: decimal.NullDecimal{Decimal: r.ByokUsage, Valid: true}}
	}
	return out, nil
}

// MemberUsageHistory implements spend.Store.
func (s *Store) MemberUsageHistory(ctx context.Context, workspaceID, memberID, period string, n int) ([]spend.Period, error) {
	rows, err := s.q.MemberUsageHistory(ctx, db.MemberUsageHistoryParams{WorkspaceID: workspaceID, MemberID: memberID,
		Period: period, MaxPeriods: int32(n)})
	if err != nil {
		return nil, fmt.Errorf("member usage history: %w", err)
	}
	out := make([]spend.Period, len(rows))
	for i, r := range rows {
		out[i] = spend.Period{Start: r.PeriodStart, Usage: r.Usage, BYOK: decimal.NullDecimal{Decimal: r.ByokUsage, Valid: true}}
	}
	return out, nil
}

// BudgetHistory implements spend.Store: the ledger's periods of a budget.
func (s *Store) BudgetHistory(ctx context.Context, kind, id string, n int) ([]spend.Period, error) {
	rows, err := s.q.SpendHistory(ctx, db.SpendHistoryParams{Scope: kind, ScopeID: id, MaxPeriods: int32(n)})
	if err != nil {
		return nil, fmt.Errorf("budget history: %w", err)
	}
	out := make([]spend.Period, len(rows))
	for i, r := range rows {
		out[i] = spend.Period{Start: r.PeriodStart, Usage: r.Spent}
	}
	return out, nil
}
