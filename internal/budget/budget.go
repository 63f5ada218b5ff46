// Package budget enforces spend limits under concurrency.
//
// Before calling an upstream, the gateway reserves the request's worst-case
// cost against every limit that governs it; a reservation is one atomic
// conditional update in PostgreSQL, so any number of concurrent requests on
// any number of replicas never drive spent + reserved past a limit. When the
// request ends, the reservation is released and the actual cost recorded.
// A request that cannot reserve is refused with 402 budget_exceeded.
//
// Periods are UTC: a day starts at 00:00, a week on Monday, a month on the
// 1st. A limit without a period ("lifetime") never resets.
package budget

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/internal/apierr"
)

// Scope is one limit that governs a request.
type Scope struct {
	Kind  string // "key" (guardrails later add "guardrail")
	ID    string
	Name  string // for messages, e.g. the key's label
	Limit decimal.Decimal
	Reset string // "", "daily", "weekly", "monthly"
	// CountsBYOK: spend on the workspace's own provider keys counts too.
	CountsBYOK bool
}

// Ledger stores spent and reserved amounts per scope and period.
type Ledger interface {
	// Reserve adds amount to the reservation unless spent + reserved +
	// amount would exceed limit; ok=false means refused. spent and
	// reserved are the totals after (ok) or as found (refused).
	Reserve(ctx context.Context, kind, id string, period time.Time, amount, limit decimal.Decimal) (ok bool, spent, reserved decimal.Decimal, err error)
	Settle(ctx context.Context, kind, id string, period time.Time, reserved, actual decimal.Decimal) error
}

// Budgets reserves and settles against a Ledger.
type Budgets struct {
	ledger Ledger
	now    func() time.Time
}

// New returns Budgets over ledger; now may be nil.
func New(ledger Ledger, now func() time.Time) *Budgets {
	if now == nil {
		now = time.Now
	}
	return &Budgets{ledger: ledger, now: now}
}

// Hold is a reservation in force against one scope.
type hold struct {
	scope  Scope
	period time.Time
	amount decimal.Decimal
}

// Reservation is what Reserve took; Settle releases it exactly once.
type Reservation struct {
	b     *Budgets
	holds []hold
}

// Reserve takes amount from every scope, or from none: when one refuses,
// the ones already taken are released and a budget_exceeded error names
// the scope, its limit, what remains and when it resets.
func (b *Budgets) Reserve(ctx context.Context, scopes []Scope, amount decimal.Decimal) (*Reservation, error) {
	res := &Reservation{b: b}
	now := b.now()
	for _, s := range scopes {
		period := PeriodStart(s.Reset, now)
		ok, spent, reserved, err := b.ledger.Reserve(ctx, s.Kind, s.ID, period, amount, s.Limit)
		if err == nil && ok {
			res.holds = append(res.holds, hold{scope: s, period: period, amount: amount})
			continue
		}
		res.release(ctx)
		if err != nil {
			return nil, fmt.Errorf("reserve budget of %s %s: %w", s.Kind, s.ID, err)
		}
		return nil, exceeded(s, spent.Add(reserved), amount, now)
	}
	return res, nil
}

// Settle records the actual cost against every held scope (zero for
// scopes that do not count BYOK spend when byok is true) and releases the
// reservations.
func (r *Reservation) Settle(ctx context.Context, actual decimal.Decimal, byok bool) error {
	if r == nil {
		return nil
	}
	var first error
	var left []hold // failed ones stay, so a retry settles only those
	for _, h := range r.holds {
		a := actual
		if byok && !h.scope.CountsBYOK {
			a = decimal.Zero
		}
		if err := r.b.ledger.Settle(ctx, h.scope.Kind, h.scope.ID, h.period, h.amount, a); err != nil {
			left = append(left, h)
			if first == nil {
				first = fmt.Errorf("settle %s %s: %w", h.scope.Kind, h.scope.ID, err)
			}
		}
	}
	r.holds = left
	return first
}

func (r *Reservation) release(ctx context.Context) {
	_ = r.Settle(ctx, decimal.Zero, false) // best effort: the request is refused either way
}

func exceeded(s Scope, used, amount decimal.Decimal, now time.Time) *apierr.Error {
	remaining := decimal.Max(s.Limit.Sub(used), decimal.Zero)
	period := "lifetime"
	if s.Reset != "" {
		period = s.Reset
	}
	e := apierr.New(http.StatusPaymentRequired, apierr.BudgetExceeded,
		"The %s %s has a %s limit of $%s; $%s remains and this request may cost up to $%s.",
		s.Kind, s.Name, period, s.Limit.String(), remaining.String(), amount.String()).
		With("scope", s.Kind).With(s.Kind+"_id", s.ID).
		With("limit", json.Number(s.Limit.String())).With("remaining", json.Number(remaining.String()))
	advice := " Lower max_tokens, or ask an admin to raise the limit."
	if !remaining.IsPositive() {
		advice = " Ask an admin to raise the limit."
	}
	if next, ok := NextReset(s.Reset, now); ok {
		e.Message += fmt.Sprintf(" It resets %s.", next.Format(time.RFC3339)) + advice
		e = e.With("resets_at", next.Format(time.RFC3339))
	} else {
		e.Message += " It never resets." + advice
	}
	return e
}
