package budget_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/budget"
	"github.com/perpetuo/perpetuo/internal/pgtest"
	"github.com/perpetuo/perpetuo/internal/store"
)

// counting is the real ledger, counting its round trips.
type counting struct {
	*store.Store
	takes, flushes atomic.Int64
	cancel         context.CancelFunc // called as a take starts, if set
	sawDone        atomic.Bool
}

func (c *counting) TakeLeases(ctx context.Context, replica string, expires time.Time, takes []budget.Take) ([]budget.Grant, error) {
	c.takes.Add(1)
	if c.cancel != nil {
		c.cancel() // the client hangs up mid-commit
	}
	c.sawDone.Store(c.sawDone.Load() || ctx.Err() != nil)
	return c.Store.TakeLeases(ctx, replica, expires, takes)
}

func (c *counting) FlushLeases(ctx context.Context, replica string, seq int64, expires time.Time, fl []budget.Flush) ([]budget.FlushState, error) {
	c.flushes.Add(1)
	return c.Store.FlushLeases(ctx, replica, seq, expires, fl)
}

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func ledger(t *testing.T) *counting {
	st := store.New(pgtest.New(t))
	return &counting{Store: st}
}

func spend(t *testing.T, l *counting, kind, id string) (spent, reserved decimal.Decimal) {
	t.Helper()
	spent, reserved, err := l.Spend(context.Background(), kind, id, budget.Lifetime)
	require.NoError(t, err)
	return spent, reserved
}

var key = budget.Scope{Kind: "key", ID: "key_1", Name: "k", Limit: d("1000")}

// TestSteadyStateCostsNoRoundTrip: far from a limit, requests reserve and
// settle in memory; only the first waits on the ledger, and a lease is
// topped up in the background before it runs out.
func TestSteadyStateCostsNoRoundTrip(t *testing.T) {
	t.Parallel()
	l := ledger(t)
	b := budget.New(l, "rep_1", nil)
	const n = 320
	for i := range n {
		res, err := b.Reserve(context.Background(), budget.Request{}, []budget.Scope{key}, d("0.01"))
		require.NoError(t, err, "request %d", i)
		res.Settle(d("0.01"), false)
	}
	require.LessOrEqual(t, l.takes.Load(), int64(n/budget.LeaseRequests+2), "one take per lease of %d requests", budget.LeaseRequests)
	require.NoError(t, b.Sync(context.Background()))
	spent, reserved := spend(t, l, "key", "key_1")
	require.Equal(t, "3.2", spent.String(), "every request counted once")
	require.True(t, reserved.IsZero(), "nothing in flight, every lease handed back: %s", reserved)
}

// TestTwoReplicasNeverOverspendAndAdmitWhatFits: one request on replica
// B, then 399 concurrent ones of $0.03 on replicas A and B (one in 50 on
// B) against a $1 limit: within one of ⌊1/0.03⌋ = 33 are admitted, because
// leases shrink with the remainder and near the limit every request takes
// exactly its worst case, so no replica sits on a slice the other needs
// (what is left unused is under a request's worth per replica); the ledger
// never passes $1, and closing both leaves no lease behind. (Checked once
// by granting whole leases near the limit: 10 were admitted.)
func TestTwoReplicasNeverOverspendAndAdmitWhatFits(t *testing.T) {
	t.Parallel()
	l := ledger(t)
	a, b := budget.New(l, "rep_a", nil), budget.New(l, "rep_b", nil)
	scope := budget.Scope{Kind: "guardrail", ID: "gr_1", Name: "g", Limit: d("1")}
	first, err := b.Reserve(context.Background(), budget.Request{}, []budget.Scope{scope}, d("0.03"))
	require.NoError(t, err)
	first.Settle(d("0.03"), false)
	admitted, refused := atomic.Int64{}, atomic.Int64{}
	admitted.Add(1)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 399 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rep := a
			if i%50 == 0 {
				rep = b
			}
			res, err := rep.Reserve(context.Background(), budget.Request{}, []budget.Scope{scope}, d("0.03"))
			if err != nil {
				require.Equal(t, 402, apierr.From(err).Status, "%v", err)
				refused.Add(1)
				return
			}
			admitted.Add(1)
			time.Sleep(time.Millisecond) // in flight together
			res.Settle(d("0.03"), false)
		}()
	}
	close(start)
	wg.Wait()
	require.GreaterOrEqual(t, admitted.Load(), int64(32))
	require.LessOrEqual(t, admitted.Load(), int64(33))
	require.EqualValues(t, 400, admitted.Load()+refused.Load())
	for _, rep := range []*budget.Budgets{a, b} {
		require.NoError(t, rep.Close(context.Background()))
	}
	spent, reserved := spend(t, l, "guardrail", "gr_1")
	require.True(t, spent.Equal(d("0.03").Mul(decimal.NewFromInt(admitted.Load()))), "spent %s", spent)
	require.True(t, reserved.IsZero())
	for _, r := range []string{"rep_a", "rep_b"} {
		n, err := l.Leases(context.Background(), r)
		require.NoError(t, err)
		require.Zero(t, n)
	}
}

// TestHeldRequestsNeverPassTheLimit: requests held one after another (none
// settles) on two replicas, served from their leases in memory where they
// can: within one of ⌊1/0.01⌋ = 100 are admitted, never more.
func TestHeldRequestsNeverPassTheLimit(t *testing.T) {
	t.Parallel()
	l := ledger(t)
	reps := []*budget.Budgets{budget.New(l, "rep_a", nil), budget.New(l, "rep_b", nil)}
	scope := budget.Scope{Kind: "guardrail", ID: "gr_h", Name: "h", Limit: d("1")}
	var held []*budget.Reservation
	for i := range 150 {
		res, err := reps[i%2].Reserve(context.Background(), budget.Request{}, []budget.Scope{scope}, d("0.01"))
		if err == nil {
			held = append(held, res)
		}
	}
	require.GreaterOrEqual(t, len(held), 99)
	require.LessOrEqual(t, len(held), 100)
	require.Less(t, l.takes.Load(), int64(len(held)), "some were served from a lease in memory")
	for _, r := range held {
		r.Settle(d("0.01"), false)
	}
	for _, b := range reps {
		require.NoError(t, b.Sync(context.Background()))
	}
	spent, reserved := spend(t, l, "guardrail", "gr_h")
	require.True(t, spent.Equal(d("0.01").Mul(decimal.NewFromInt(int64(len(held))))), "spent %s", spent)
	require.True(t, reserved.IsZero())
}

// TestAllOrNothing: a request governed by several budgets takes all or
// none: refused by one, it holds nothing of the others.
func TestAllOrNothing(t *testing.T) {
	t.Parallel()
	l := ledger(t)
	b := budget.New(l, "rep_1", nil)
	tight := budget.Scope{Kind: "guardrail", ID: "gr_t", Name: "tight", Limit: d("0.05"), Reset: "daily"}
	_, err := b.Reserve(context.Background(), budget.Request{}, []budget.Scope{key, tight}, d("0.1"))
	e := apierr.From(err)
	require.Equal(t, 402, e.Status)
	require.Equal(t, apierr.BudgetExceeded, e.Type)
	require.Equal(t, "guardrail", e.Metadata["scope"])
	require.Equal(t, "gr_t", e.Metadata["guardrail_id"])
	require.Equal(t, "tight", e.Metadata["guardrail_name"])
	require.Contains(t, e.Metadata, "resets_at")
	require.NoError(t, b.Sync(context.Background()))
	_, reserved := spend(t, l, "key", "key_1")
	require.True(t, reserved.IsZero(), "the key's lease went back: %s", reserved)
	unflushed, unused := b.Usage(key, time.Now())
	require.True(t, unflushed.IsZero())
	require.True(t, unused.IsZero())
}

// TestSettleNeverChargesMoreThanReserved: whatever an upstream reported,
// a request is charged at most its reservation; BYOK spend counts only
// toward budgets that count it.
func TestSettleNeverChargesMoreThanReserved(t *testing.T) {
	t.Parallel()
	l := ledger(t)
	b := budget.New(l, "rep_1", nil)
	byok := budget.Scope{Kind: "guardrail", ID: "gr_b", Name: "b", Limit: d("10"), CountsBYOK: true}
	res, err := b.Reserve(context.Background(), budget.Request{}, []budget.Scope{key, byok}, d("0.01"))
	require.NoError(t, err)
	res.Settle(d("60"), false)
	res.Settle(d("60"), false) // twice: harmless
	res, err = b.Reserve(context.Background(), budget.Request{}, []budget.Scope{key, byok}, d("0.02"))
	require.NoError(t, err)
	res.Settle(d("0.015"), true)
	require.NoError(t, b.Sync(context.Background()))
	spent, _ := spend(t, l, "key", "key_1")
	require.Equal(t, "0.01", spent.String(), "clamped, and the BYOK request does not count")
	spent, _ = spend(t, l, "guardrail", "gr_b")
	require.Equal(t, "0.025", spent.String())
}

// TestReserveIsImmuneToCancellation: a client hanging up while its lease
// is taken neither aborts the take (which could land anyway) nor keeps
// what it reserved: it is released at once, charging nothing.
func TestReserveIsImmuneToCancellation(t *testing.T) {
	t.Parallel()
	l := ledger(t)
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	b := budget.New(l, "rep_1", nil)
	_, err := b.Reserve(ctx, budget.Request{}, []budget.Scope{key}, d("0.5"))
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, l.sawDone.Load(), "the ledger never saw a cancelled context")
	require.NoError(t, b.Sync(context.Background()))
	spent, reserved := spend(t, l, "key", "key_1")
	require.True(t, spent.IsZero())
	require.True(t, reserved.IsZero())
}

// TestUnreachableLedgerFailsClosed: when the ledger cannot be reached and
// no lease covers the request, it is refused with 503 budget_unavailable,
// never let through.
func TestUnreachableLedgerFailsClosed(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	pool.Close()
	b := budget.New(store.New(pool), "rep_1", nil)
	_, err := b.Reserve(context.Background(), budget.Request{}, []budget.Scope{key}, d("0.1"))
	require.Error(t, err)
	e := apierr.From(err)
	require.Equal(t, 503, e.Status)
	require.Equal(t, apierr.BudgetUnavailable, e.Type)
	require.Equal(t, 5, e.RetryAfter)
	require.NotContains(t, e.Message, "closed", "the cause stays in the logs")
}

// TestIdleLeasesGoBackAndPeriodsRollOver: with an injected clock, a lease
// unused for IdleAfter is handed back at the next flush, and at 00:00 UTC
// a daily budget starts afresh while the old period's spend stays in it.
func TestIdleLeasesGoBackAndPeriodsRollOver(t *testing.T) {
	t.Parallel()
	l := ledger(t)
	var mu sync.Mutex
	now := time.Date(2026, 12, 2, 23, 59, 59, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(dt time.Duration) { mu.Lock(); now = now.Add(dt); mu.Unlock() }
	b := budget.New(l, "rep_1", clock)
	daily := budget.Scope{Kind: "guardrail", ID: "gr_d", Name: "daily", Limit: d("1000"), Reset: "daily"}
	res, err := b.Reserve(context.Background(), budget.Request{}, []budget.Scope{daily}, d("0.01"))
	require.NoError(t, err)
	res.Settle(d("0.01"), false)
	dec2 := budget.PeriodStart("daily", clock())
	_, reserved, err := l.Spend(context.Background(), "guardrail", "gr_d", dec2)
	require.NoError(t, err)
	require.Equal(t, "0.32", reserved.String(), "a lease of %d requests", budget.LeaseRequests)
	require.NoError(t, b.Flush(context.Background()))
	spent, reserved, err := l.Spend(context.Background(), "guardrail", "gr_d", dec2)
	require.NoError(t, err)
	require.Equal(t, "0.01", spent.String(), "a flush moves consumed spend")
	require.Equal(t, "0.31", reserved.String(), "and keeps the lease of a budget in use")

	advance(2 * time.Second) // 00:00:01 on Dec 3: a new period, and the old lease idle
	res, err = b.Reserve(context.Background(), budget.Request{}, []budget.Scope{daily}, d("0.01"))
	require.NoError(t, err)
	res.Settle(d("0.02"), false)
	advance(budget.IdleAfter)
	// The periodic flush hands back what is idle (a Sync would hand back
	// everything).
	require.NoError(t, b.Flush(context.Background()))
	spent, reserved, err = l.Spend(context.Background(), "guardrail", "gr_d", dec2)
	require.NoError(t, err)
	require.True(t, reserved.IsZero(), "the idle lease went back: %s", reserved)
	require.Equal(t, "0.01", spent.String(), "Dec 2 keeps its spend")
	spent, reserved, err = l.Spend(context.Background(), "guardrail", "gr_d", dec2.AddDate(0, 0, 1))
	require.NoError(t, err)
	require.True(t, reserved.IsZero(), "the new period's idle lease went back too: %s", reserved)
	require.Equal(t, "0.01", spent.String(), "Dec 3 starts afresh (clamped to the reservation)")
}
