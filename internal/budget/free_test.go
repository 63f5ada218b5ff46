package budget

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
)

// memLedger is an in-memory ledger: it grants what a take wants, or what
// remains under the limit when that still covers the need.
type memLedger struct {
	mu              sync.Mutex
	spent, reserved map[Key]decimal.Decimal
}

func (m *memLedger) TakeLeases(_ context.Context, _ string, _ time.Time, takes []Take) ([]Grant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	gs := make([]Grant, len(takes))
	for i, t := range takes {
		left := t.Limit.Sub(m.spent[t.Key]).Sub(m.reserved[t.Key])
		g := decimal.Min(t.Want, left)
		if g.LessThan(t.Need) {
			g = decimal.Zero
		}
		m.reserved[t.Key] = m.reserved[t.Key].Add(g)
		gs[i] = Grant{Granted: g, Spent: m.spent[t.Key], Reserved: m.reserved[t.Key], LeaseID: 1}
	}
	return gs, nil
}

func (m *memLedger) FlushLeases(_ context.Context, _ string, _ int64, _ time.Time, fl []Flush) ([]FlushState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := make([]FlushState, len(fl))
	for i, f := range fl {
		m.spent[f.Key] = m.spent[f.Key].Add(f.Spent)
		m.reserved[f.Key] = m.reserved[f.Key].Sub(f.Spent).Sub(f.Release)
		st[i] = Applied
	}
	return st, nil
}

func (m *memLedger) ReturnLeases(context.Context, string) error { return nil }

// TestFreeStaysInStepWithTheLease: after any mix of reservations,
// settlements (BYOK or not, below or at the bound), refusals near the limit
// and flushes, every lease's free equals granted - held - consumed -
// releasing, the sum it stands for.
func TestFreeStaysInStepWithTheLease(t *testing.T) {
	ledger := &memLedger{spent: map[Key]decimal.Decimal{}, reserved: map[Key]decimal.Decimal{}}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	var clock sync.Mutex
	b := New(ledger, "r1", func() time.Time { clock.Lock(); defer clock.Unlock(); return now })
	scopes := []Scope{
		{Kind: "key", ID: "k", Limit: decimal.RequireFromString("0.05")},
		{Kind: "guardrail", ID: "g", Limit: decimal.RequireFromString("1"), Reset: "daily", CountsBYOK: true},
		{Kind: "workspace", ID: "w", Limit: decimal.RequireFromString("0.3")},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	amounts := []string{"0.0001", "0.00000013", "0.0021", "0.000000000000000001"}
	var open []*Reservation
	check := func(step int) {
		b.topUps.Wait()
		b.mu.Lock()
		defer b.mu.Unlock()
		for k, l := range b.leases {
			want := l.granted.Sub(l.held).Sub(l.consumed).Sub(l.releasing)
			require.True(t, want.Equal(l.free), "step %d, %v: free %s, granted - held - consumed - releasing %s", step, k, l.free, want)
		}
	}
	refused := 0
	for step := range 3000 {
		switch op := rng.IntN(10); {
		case op < 5:
			amount := decimal.RequireFromString(amounts[rng.IntN(len(amounts))])
			res, err := b.Reserve(context.Background(), scopes[:1+rng.IntN(len(scopes))], amount)
			if err != nil {
				refused++
				break
			}
			open = append(open, res)
		case op < 8 && len(open) > 0:
			i := rng.IntN(len(open))
			res := open[i]
			open = append(open[:i], open[i+1:]...)
			actual := res.Amount()
			if rng.IntN(2) == 0 {
				actual = actual.Div(decimal.NewFromInt(3))
			}
			res.Settle(actual, rng.IntN(3) == 0)
		case op == 8:
			require.NoError(t, b.Flush(context.Background()))
		default:
			clock.Lock()
			now = now.Add(time.Duration(rng.IntN(3)) * time.Second)
			clock.Unlock()
		}
		check(step)
	}
	require.Positive(t, refused, "the run reached the key's limit")
	for _, res := range open {
		res.Settle(decimal.Zero, false)
	}
	check(-1)
}
