package budget_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
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
	pool           *pgxpool.Pool
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
	pool := pgtest.New(t)
	return &counting{Store: store.New(pool), pool: pool}
}

// replica registers a replica (its flushes need its row) and returns its Budgets.
func replica(t *testing.T, l *counting, name string, now func() time.Time) *budget.Budgets {
	t.Helper()
	require.NoError(t, l.Heartbeat(context.Background(), name))
	return budget.New(l, name, now)
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
	b := replica(t, l, "rep_1", nil)
	const n = 320
	for i := range n {
		res, err := b.Reserve(context.Background(), []budget.Scope{key}, d("0.01"))
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
	a, b := replica(t, l, "rep_a", nil), replica(t, l, "rep_b", nil)
	scope := budget.Scope{Kind: "guardrail", ID: "gr_1", Name: "g", Limit: d("1")}
	first, err := b.Reserve(context.Background(), []budget.Scope{scope}, d("0.03"))
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
			res, err := rep.Reserve(context.Background(), []budget.Scope{scope}, d("0.03"))
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
	reps := []*budget.Budgets{replica(t, l, "rep_a", nil), replica(t, l, "rep_b", nil)}
	scope := budget.Scope{Kind: "guardrail", ID: "gr_h", Name: "h", Limit: d("1")}
	var held []*budget.Reservation
	for i := range 150 {
		res, err := reps[i%2].Reserve(context.Background(), []budget.Scope{scope}, d("0.01"))
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
	b := replica(t, l, "rep_1", nil)
	tight := budget.Scope{Kind: "guardrail", ID: "gr_t", Name: "tight", Limit: d("0.05"), Reset: "daily"}
	_, err := b.Reserve(context.Background(), []budget.Scope{key, tight}, d("0.1"))
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
	b := replica(t, l, "rep_1", nil)
	byok := budget.Scope{Kind: "guardrail", ID: "gr_b", Name: "b", Limit: d("10"), CountsBYOK: true}
	res, err := b.Reserve(context.Background(), []budget.Scope{key, byok}, d("0.01"))
	require.NoError(t, err)
	res.Settle(d("60"), false)
	res.Settle(d("60"), false) // twice: harmless
	res, err = b.Reserve(context.Background(), []budget.Scope{key, byok}, d("0.02"))
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
	b := replica(t, l, "rep_1", nil)
	_, err := b.Reserve(ctx, []budget.Scope{key}, d("0.5"))
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
	_, err := b.Reserve(context.Background(), []budget.Scope{key}, d("0.1"))
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
	b := replica(t, l, "rep_1", clock)
	daily := budget.Scope{Kind: "guardrail", ID: "gr_d", Name: "daily", Limit: d("1000"), Reset: "daily"}
	res, err := b.Reserve(context.Background(), []budget.Scope{daily}, d("0.01"))
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
	res, err = b.Reserve(context.Background(), []budget.Scope{daily}, d("0.01"))
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

// TestASweptLeaseIsNeverUsedAgain: a replica cut off long enough for the
// others to sweep its lease (charging it in full) does not keep admitting
// against it from memory: past the lease's validity the next request asks
// the ledger, which answers with a new lease; requests held on the old one
// are not charged twice.
func TestASweptLeaseIsNeverUsedAgain(t *testing.T) {
	t.Parallel()
	l := ledger(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	b := replica(t, l, "rep_cut", clock)
	scope := budget.Scope{Kind: "guardrail", ID: "gr_s", Name: "s", Limit: d("1")}
	old, err := b.Reserve(context.Background(), []budget.Scope{scope}, d("0.01"))
	require.NoError(t, err)
	_, reserved := spend(t, l, "guardrail", "gr_s")
	lease := reserved
	require.True(t, lease.GreaterThan(d("0.01")), "a lease of several requests: %s", lease)

	// The others sweep it: it looks expired to them.
	_, err = l.pool.Exec(context.Background(), `UPDATE spend_leases SET expires_at = now() - interval '1 second'`)
	require.NoError(t, err)
	swept, err := l.SweepLeases(context.Background(), time.Now(), time.Now().Add(-time.Minute))
	require.NoError(t, err)
	require.Len(t, swept, 1)
	mu.Lock()
	now = now.Add(budget.LeaseTTL)
	mu.Unlock()

	takes := l.takes.Load()
	fresh, err := b.Reserve(context.Background(), []budget.Scope{scope}, d("0.01"))
	require.NoError(t, err)
	require.Equal(t, takes+1, l.takes.Load(), "past its validity the lease is not used from memory")
	_, reserved = spend(t, l, "guardrail", "gr_s")
	require.True(t, reserved.GreaterThanOrEqual(d("0.01")), "the request in flight is reserved in the ledger: %s", reserved)
	old.Settle(d("0.01"), false)
	fresh.Settle(d("0.01"), false)
	require.NoError(t, b.Sync(context.Background()))
	spent, reserved := spend(t, l, "guardrail", "gr_s")
	require.True(t, spent.Equal(lease.Add(d("0.01"))), "the swept lease in full, plus the new request once: %s", spent)
	require.True(t, reserved.IsZero(), "%s", reserved)
}

// TestFlushingWhileReservingNeverOverspends: two replicas flushing every
// millisecond (handing leases back, emptying and taking them again) while
// 20 requests of $0.01611 reserve one after another and then 480 at once
// against $1, eight times over: never more than
// ⌊1/0.01611⌋ = 62 admitted, within one of it, and the ledger holds
// exactly what was admitted. (Before a gone lease stopped being held on,
// the requests waiting on it reused its grant: 270 and 273 were admitted.)
func TestFlushingWhileReservingNeverOverspends(t *testing.T) {
	t.Parallel()
	cost := d("0.01611")
	for round := range 8 {
		l := ledger(t)
		reps := []*budget.Budgets{replica(t, l, "rep_a", nil), replica(t, l, "rep_b", nil)}
		ctx, cancel := context.WithCancel(context.Background())
		var flushers sync.WaitGroup
		for _, b := range reps {
			flushers.Go(func() {
				for ctx.Err() == nil {
					_ = b.Flush(ctx) // a failure is retried by the next one
					time.Sleep(time.Millisecond)
				}
			})
		}
		scope := budget.Scope{Kind: "guardrail", ID: "gr_x", Name: "x", Limit: d("1")}
		var admitted atomic.Int64
		for i := range 20 { // one after another first, served from the leases
			res, err := reps[i%2].Reserve(context.Background(), []budget.Scope{scope}, cost)
			require.NoError(t, err)
			admitted.Add(1)
			res.Settle(cost, false)
		}
		var wg sync.WaitGroup
		for i := range 480 {
			wg.Go(func() {
				res, err := reps[i%2].Reserve(context.Background(), []budget.Scope{scope}, cost)
				if err != nil {
					require.Equal(t, 402, apierr.From(err).Status, "%v", err)
					return
				}
				admitted.Add(1)
				time.Sleep(time.Duration(i%5) * time.Millisecond)
				res.Settle(cost, false)
			})
		}
		wg.Wait()
		cancel()
		flushers.Wait()
		n := admitted.Load()
		require.LessOrEqual(t, n, int64(62), "round %d", round)
		require.GreaterOrEqual(t, n, int64(61), "round %d", round)
		for _, b := range reps {
			require.NoError(t, b.Sync(context.Background()))
		}
		spent, reserved := spend(t, l, "guardrail", "gr_x")
		require.True(t, spent.Equal(cost.Mul(decimal.NewFromInt(n))), "round %d: spent %s for %d", round, spent, n)
		require.True(t, reserved.IsZero(), "round %d: %s", round, reserved)
	}
}

// TestBusyBudgetLeasesCoverTheRate: a budget busy enough to use a whole
// lease of LeaseRequests several times between flushes gets leases sized for
// the rate seen, so the ledger sees a take or two per flush interval, not
// one every few requests.
func TestBusyBudgetLeasesCoverTheRate(t *testing.T) {
	t.Parallel()
	l := ledger(t)
	b := replica(t, l, "rep_1", nil)
	const intervals, perInterval = 5, 400
	for range intervals {
		for i := range perInterval {
			res, err := b.Reserve(context.Background(), []budget.Scope{key}, d("0.001"))
			require.NoError(t, err, "request %d", i)
			res.Settle(d("0.001"), false)
		}
		require.NoError(t, b.Flush(context.Background()))
	}
	// The first interval takes as before (about one per LeaseRequests/2
	// requests); the others need one or two each.
	first := int64(perInterval/(budget.LeaseRequests/2) + 2)
	require.LessOrEqual(t, l.takes.Load(), first+2*(intervals-1), "takes for %d requests", intervals*perInterval)
	require.NoError(t, b.Sync(context.Background()))
	spent, reserved := spend(t, l, "key", "key_1")
	require.Equal(t, "2", spent.String(), "every request counted once")
	require.True(t, reserved.IsZero(), "every lease handed back: %s", reserved)
}
