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

// Hold is one reservation against one scope, recorded so that a hold whose
// request never settles (its replica died) can be swept after Expires.
type Hold struct {
	ID           string // the request's generation id + ":" + scope kind + ":" + scope id
	GenerationID string // whose record tells the actual cost if the hold is swept
	Replica      string // the replica serving the request; its death frees the hold
	// Model and Streamed describe the request, for the record a sweep
	// writes if its replica died before writing one.
	Model    string
	Streamed bool
	Kind     string
	ScopeID  string
	Period   time.Time
	Amount   decimal.Decimal
	Expires  time.Time
	scope    Scope
}

// Swept is what a sweep charged one scope.
type Swept struct {
	Kind, ScopeID string
	Amount        decimal.Decimal
	// Known: every swept hold's cost came from its generation record
	// (false: at least one was charged its worst case).
	Known bool
}

// HoldTTL is how long a hold may stay unsettled before the sweeper charges
// it: far longer than any request (streams are cut after minutes of
// silence), short enough that a crash does not hold a budget for long.
const HoldTTL = time.Hour

// Ledger stores spent and reserved amounts per scope and period.
type Ledger interface {
	// Reserve records h unless spent + reserved + h.Amount would exceed
	// limit; ok=false means refused. spent and reserved are the totals
	// after (ok) or as found (refused).
	Reserve(ctx context.Context, h Hold, limit decimal.Decimal) (ok bool, spent, reserved decimal.Decimal, err error)
	// Settle releases a hold and records the actual cost.
	Settle(ctx context.Context, holdID string, actual decimal.Decimal) error
}

// Budgets reserves and settles against a Ledger.
type Budgets struct {
	ledger  Ledger
	replica string
	now     func() time.Time
}

// New returns Budgets over ledger for the replica named replica (its holds
// are swept by others if it stops heartbeating); now may be nil.
func New(ledger Ledger, replica string, now func() time.Time) *Budgets {
	if now == nil {
		now = time.Now
	}
	return &Budgets{ledger: ledger, replica: replica, now: now}
}

// reserveTimeout bounds one reservation. It runs detached from the request:
// a reservation cancelled while it commits could commit anyway and leave a
// hold nobody settles.
const reserveTimeout = 5 * time.Second

// Request is what a reservation is for: the generation id (naming its
// holds), the requested model and whether it streams.
type Request struct {
	ID       string
	Model    string
	Streamed bool
}

// Reservation is what Reserve took; Settle releases it exactly once.
type Reservation struct {
	b     *Budgets
	holds []Hold
}

// Reserve takes amount from every scope, or from none: when one refuses,
// the ones already taken are released and a budget_exceeded error names
// the scope, its limit, what remains and when it resets.
//
// req.ID names the holds (one per scope) so they can be settled exactly
// once and swept if the request never settles.
//
// When the ledger cannot be reached, the request fails closed with 503
// budget_unavailable. When the client goes away meanwhile, what was taken
// is released and ctx's error returned.
func (b *Budgets) Reserve(ctx context.Context, req Request, scopes []Scope, amount decimal.Decimal) (*Reservation, error) {
	res := &Reservation{b: b}
	now := b.now()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reserveTimeout)
	defer cancel()
	for _, s := range scopes {
		h := Hold{ID: req.ID + ":" + s.Kind + ":" + s.ID, GenerationID: req.ID, Replica: b.replica,
			Model: req.Model, Streamed: req.Streamed,
			Kind: s.Kind, ScopeID: s.ID, Period: PeriodStart(s.Reset, now),
			Amount: amount, Expires: now.Add(HoldTTL), scope: s}
		ok, spent, reserved, err := b.ledger.Reserve(rctx, h, s.Limit)
		if err == nil && ok {
			res.holds = append(res.holds, h)
			continue
		}
		res.release(rctx)
		if err != nil {
			return nil, unavailable(s, err)
		}
		return nil, exceeded(s, spent.Add(reserved), amount, now)
	}
	if err := ctx.Err(); err != nil {
		res.release(rctx) // the client left: no call will be made
		return nil, err
	}
	return res, nil
}

// Amount is what the reservation holds per scope (the request's bound).
func (r *Reservation) Amount() decimal.Decimal {
	if r == nil || len(r.holds) == 0 {
		return decimal.Zero
	}
	return r.holds[0].Amount
}

func unavailable(s Scope, err error) error {
	return apierr.New(http.StatusServiceUnavailable, apierr.BudgetUnavailable,
		"The budget store is unavailable, so requests governed by the %s %s's limit are refused until it returns; retry shortly. Keys without a limit keep working.",
		s.Kind, s.Name).With("scope", s.Kind).With(s.Kind+"_id", s.ID).WithRetryAfter(5).
		WithCause(fmt.Errorf("reserve budget of %s %s: %w", s.Kind, s.ID, err))
}

// Settle records the actual cost against every held scope (zero for
// scopes that do not count BYOK spend when byok is true) and releases the
// reservations.
func (r *Reservation) Settle(ctx context.Context, actual decimal.Decimal, byok bool) error {
	if r == nil {
		return nil
	}
	var first error
	var left []Hold // failed ones stay, so a retry settles only those
	for _, h := range r.holds {
		a := actual
		if byok && !h.scope.CountsBYOK {
			a = decimal.Zero
		}
		if err := r.b.ledger.Settle(ctx, h.ID, a); err != nil {
			left = append(left, h)
			if first == nil {
				first = fmt.Errorf("settle %s %s: %w", h.Kind, h.ScopeID, err)
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
