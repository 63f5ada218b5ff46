package budget

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/apierr"
)

// cancellingLedger cancels the request while its reservation commits, and
// remembers what it was asked.
type cancellingLedger struct {
	cancel   context.CancelFunc
	fail     error
	mu       sync.Mutex
	sawDone  bool
	reserved []string
	settled  map[string]decimal.Decimal
}

func (l *cancellingLedger) Reserve(ctx context.Context, h Hold, _ decimal.Decimal) (bool, decimal.Decimal, decimal.Decimal, error) {
	if l.cancel != nil {
		l.cancel() // the client hangs up mid-commit
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sawDone = l.sawDone || ctx.Err() != nil
	if l.fail != nil {
		return false, decimal.Zero, decimal.Zero, l.fail
	}
	l.reserved = append(l.reserved, h.ID)
	return true, decimal.Zero, h.Amount, nil
}

func (l *cancellingLedger) Settle(_ context.Context, id string, actual decimal.Decimal) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.settled[id] = actual
	return nil
}

// TestReserveIsImmuneToCancellation: a client hanging up while its
// reservation commits neither aborts the commit (which could land anyway
// and leave a hold nobody settles) nor leaves the hold: it is released at
// once, charging nothing.
func TestReserveIsImmuneToCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	l := &cancellingLedger{cancel: cancel, settled: map[string]decimal.Decimal{}}
	b := New(l, "rep_1", func() time.Time { return time.Unix(1e9, 0) })
	scope := Scope{Kind: "key", ID: "key_1", Name: "k", Limit: decimal.NewFromInt(1)}
	_, err := b.Reserve(ctx, Request{ID: "gen-1"}, []Scope{scope}, decimal.RequireFromString("0.5"))
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, l.sawDone, "the ledger never saw a cancelled context")
	require.Equal(t, []string{"gen-1:key:key_1"}, l.reserved)
	require.Contains(t, l.settled, "gen-1:key:key_1", "the hold was released")
	require.True(t, l.settled["gen-1:key:key_1"].IsZero(), "charging nothing")
}

// TestUnreachableLedgerFailsClosed: a ledger that cannot be reached refuses
// the request with 503 budget_unavailable, never lets it through.
func TestUnreachableLedgerFailsClosed(t *testing.T) {
	l := &cancellingLedger{fail: errors.New("dial tcp: connection refused"), settled: map[string]decimal.Decimal{}}
	b := New(l, "rep_1", nil)
	_, err := b.Reserve(context.Background(), Request{ID: "gen-2"}, []Scope{{Kind: "key", ID: "key_1", Name: "k", Limit: decimal.NewFromInt(1)}}, decimal.NewFromInt(0))
	e := apierr.From(err)
	require.Equal(t, 503, e.Status)
	require.Equal(t, apierr.BudgetUnavailable, e.Type)
	require.Equal(t, 5, e.RetryAfter)
	require.NotContains(t, e.Message, "connection refused", "the cause stays in the logs")
}
