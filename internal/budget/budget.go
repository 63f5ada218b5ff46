// Package budget enforces spend limits under concurrency, exactly and
// without a database round trip per request.
//
// Each replica leases a slice of a budget's remainder from PostgreSQL in one
// atomic statement (the slice counts as reserved there, so no other replica
// can spend it) and reserves requests against its leases in memory. Leases
// shrink as the remainder shrinks, down to exactly one request near the
// limit; consumed spend is flushed in the background, unused slices are
// handed back when idle and at shutdown, and a dead replica's leases are
// charged in full by the others. README.md says why the three properties
// (never overspent, nothing refused that fits, fast) hold.
//
// Periods are UTC: a day starts at 00:00, a week on Monday, a month on the
// 1st. A limit without a period ("lifetime") never resets.
package budget

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/internal/apierr"
)

// Scope is one limit that governs a request.
type Scope struct {
	Kind  string // "key", "guardrail" or "workspace"
	ID    string
	Name  string // for messages, e.g. the key's label or the guardrail's name
	Limit decimal.Decimal
	Reset string // "", "daily", "weekly", "monthly"
	// CountsBYOK: spend on the workspace's own provider keys counts too.
	CountsBYOK bool
}

// Key names one budget period: what a lease is of.
type Key struct {
	Kind, ID string
	Period   time.Time
}

func (k Key) less(o Key) int {
	return cmp.Or(strings.Compare(k.Kind, o.Kind), strings.Compare(k.ID, o.ID), k.Period.Compare(o.Period))
}

// Take asks for a lease on one budget: Need is the least that is of use
// (the request waiting on it), Want what the replica would like to hold.
type Take struct {
	Key   Key
	Limit decimal.Decimal
	Need  decimal.Decimal
	Want  decimal.Decimal
}

// Grant is a Take's answer: Granted is zero when the remainder could not
// cover Need; Spent and Reserved are the budget's totals after it; LeaseID
// names the replica's lease after the take (0: it has none).
type Grant struct {
	Granted, Spent, Reserved decimal.Decimal
	LeaseID                  int64
}

// Flush hands a lease's consumed spend (Spent) and what it releases
// (Release) back to the ledger.
type Flush struct {
	Key            Key
	LeaseID        int64
	Spent, Release decimal.Decimal
}

// FlushState is what a ledger did with one Flush.
type FlushState int

// Flush states.
const (
	Applied FlushState = iota // applied now
	Seen                      // applied by an earlier try of the same flush
	Gone                      // the lease was swept (charged in full), or emptied and taken again
)

// Ledger stores spent and reserved amounts per budget period, and the
// leases replicas hold.
type Ledger interface {
	// TakeLeases grants leases to replica, one per Take, in one round
	// trip; takes are sorted by key.
	TakeLeases(ctx context.Context, replica string, expires time.Time, takes []Take) ([]Grant, error)
	// FlushLeases applies flushes exactly once per seq (a retry with the
	// same seq changes nothing) and renews the leases until expires.
	FlushLeases(ctx context.Context, replica string, seq int64, expires time.Time, fl []Flush) ([]FlushState, error)
	// ReturnLeases hands back whatever leases replica still holds.
	ReturnLeases(ctx context.Context, replica string) error
}

// Tuning. A lease aims at LeaseRequests requests' worth, or at
// FlushIntervalsPerLease flush intervals' worth at the rate of a busy
// budget; it is renewed (and its consumed spend flushed) every FlushEvery,
// handed back once idle for IdleAfter, and swept by other replicas if not
// renewed within LeaseTTL.
const (
	LeaseRequests          = 32
	FlushIntervalsPerLease = 2
	FlushEvery             = 200 * time.Millisecond
	IdleAfter              = 2 * time.Second
	LeaseTTL               = 30 * time.Second
)

// lease is this replica's slice of one budget period.
type lease struct {
	key   Key
	scope Scope
	id    int64 // the ledger's lease_id of it; 0 before its first grant
	// granted is the lease as the ledger holds it; held is reserved by
	// requests in flight, consumed settled but not flushed yet, releasing
	// being handed back by a flush in flight. What requests may still
	// take is granted - held - consumed - releasing.
	granted, held, consumed, releasing decimal.Decimal
	// free is granted - held - consumed - releasing, kept in step with
	// them: a reservation compares against it instead of subtracting
	// three decimals (each an allocation) on every request.
	free decimal.Decimal
	want decimal.Decimal
	// epoch counts the ledger leases this one has stood for: a request
	// held under an older one (charged in full when it was swept) settles
	// against oldHeld only.
	epoch   int
	oldHeld decimal.Decimal
	// validUntil is when the ledger may sweep the lease as not renewed,
	// less a margin: past it, nothing is held on it in memory until the
	// ledger has answered again.
	validUntil time.Time
	// full: the last take granted all it wanted, so the budget is far
	// from its limit and topping up early is worth it. Otherwise requests
	// take exactly what they need, and the unused part goes back at the
	// next flush.
	full    bool
	taking  bool       // a background top-up is in flight
	waiting int        // requests taking for it
	takeMu  sync.Mutex // one synchronous take at a time
	lastUse time.Time
	gone    bool // swept: settlements against it are already charged
	// recent counts the reservations since the last flush, and amount is
	// the latest one's: the flush sizes want from the rate they show.
	recent int64
	amount decimal.Decimal
}

// renewed records that the ledger renewed the lease as of at. b.mu is held.
func (l *lease) renewed(at time.Time) { l.validUntil = at.Add(LeaseTTL / 2) }

// restart makes l stand for a new ledger lease: the old one was swept (and
// charged in full) or emptied, so what requests hold on it no longer
// counts against l. b.mu is held.
func (l *lease) restart(id int64) {
	l.epoch++
	l.oldHeld = l.oldHeld.Add(l.held)
	l.held, l.granted, l.consumed, l.releasing, l.free = decimal.Zero, decimal.Zero, decimal.Zero, decimal.Zero, decimal.Zero
	l.id, l.full = id, false
}

// avail is what requests may still take on l. b.mu is held.
func (l *lease) avail() decimal.Decimal { return l.free }

// Budgets reserves and settles requests against this replica's leases.
type Budgets struct {
	ledger  Ledger
	replica string
	now     func() time.Time

	mu      sync.Mutex
	leases  map[Key]*lease
	seq     int64
	pending *pendingFlush // a flush whose outcome is not known yet
	flushMu sync.Mutex    // one flush at a time
	topUps  sync.WaitGroup
}

type pendingFlush struct {
	seq    int64
	items  []Flush
	leases []*lease
	epochs []int // each lease's epoch when the flush was made
}

// sort orders the flush by key, keeping each lease with its item.
func (p *pendingFlush) sort() {
	idx := make([]int, len(p.items))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(x, y int) int { return p.items[x].Key.less(p.items[y].Key) })
	items, leases, epochs := make([]Flush, len(idx)), make([]*lease, len(idx)), make([]int, len(idx))
	for i, j := range idx {
		items[i], leases[i], epochs[i] = p.items[j], p.leases[j], p.epochs[j]
	}
	p.items, p.leases, p.epochs = items, leases, epochs
}

// New returns Budgets over ledger for the replica named replica (its
// leases are swept by others if it stops heartbeating); now may be nil.
func New(ledger Ledger, replica string, now func() time.Time) *Budgets {
	if now == nil {
		now = time.Now
	}
	return &Budgets{ledger: ledger, replica: replica, now: now, leases: map[Key]*lease{}}
}

// takeTimeout bounds a lease take. It runs detached from the request: a
// take cancelled while it commits could commit anyway.
const takeTimeout = 5 * time.Second

// Reservation is what Reserve took; Settle releases it exactly once.
type Reservation struct {
	b      *Budgets
	amount decimal.Decimal
	leases []*lease
	epochs []int // each lease's epoch when held
	done   bool
}

// Reserve takes amount from every scope, or from none. Where this
// replica's leases cover it, nothing leaves memory; otherwise one round
// trip tops up every short lease at once. A scope whose remainder cannot
// cover the request refuses it with 402 budget_exceeded naming the scope,
// its limit, what was spent, what remains and when it resets.
//
// Takes of one lease run one at a time: requests that find it short
// while a take is in flight wait for that take (which usually brings a
// whole lease) instead of queueing their own on the same ledger row.
//
// When the ledger cannot be reached and the leases do not cover the
// request, it fails closed with 503 budget_unavailable. When the client
// goes away meanwhile, what was taken is released and ctx's error returned.
func (b *Budgets) Reserve(ctx context.Context, scopes []Scope, amount decimal.Decimal) (*Reservation, error) {
	if len(scopes) == 0 {
		return &Reservation{b: b, done: true}, nil
	}
	for {
		res, err := b.reserve(ctx, scopes, amount)
		if !errors.Is(err, errGone) {
			return res, err
		}
		// A lease it waited on turned out gone: start over on the live ones.
	}
}

// errGone says a lease a reservation was taking for is gone.
var errGone = errors.New("budget lease gone")

func (b *Budgets) reserve(ctx context.Context, scopes []Scope, amount decimal.Decimal) (*Reservation, error) {
	now := b.now()
	res := &Reservation{b: b, amount: amount}
	want := amount.Mul(decimal.NewFromInt(LeaseRequests))
	b.mu.Lock()
	for _, s := range scopes {
		l := b.leaseFor(s, now)
		l.lastUse = now
		l.recent++
		l.amount = amount
		l.want = decimal.Max(l.want, want)
		res.leases = append(res.leases, l)
	}
	ok := b.holdIfCovered(res, now)
	if !ok {
		for _, l := range res.leases {
			l.waiting++ // not forgotten by a flush while this request takes
		}
	}
	b.mu.Unlock()
	if ok {
		b.topUp(res.leases)
		return res, nil
	}
	defer func() {
		b.mu.Lock()
		for _, l := range res.leases {
			l.waiting--
		}
		b.mu.Unlock()
	}()
	// Its leases' take locks, in key order (no deadlock between requests
	// sharing several budgets).
	locked := slices.Clone(res.leases)
	slices.SortFunc(locked, func(x, y *lease) int { return x.key.less(y.key) })
	for _, l := range locked {
		l.takeMu.Lock()
	}
	defer func() {
		for _, l := range locked {
			l.takeMu.Unlock()
		}
	}()
	// A take whose grant others spent meanwhile is followed by another;
	// each either grants (progress) or refuses, so this ends.
	for {
		var takes []Take
		var short []*lease
		var scopes []Scope
		b.mu.Lock()
		if slices.ContainsFunc(res.leases, func(l *lease) bool { return l.gone }) {
			b.mu.Unlock()
			return nil, errGone
		}
		if b.holdIfCovered(res, b.now()) {
			b.mu.Unlock()
			break
		}
		for _, l := range res.leases {
			// A lease past its validity asks the ledger again, for at
			// least nothing: the answer renews it, or says it is a new one.
			if need := amount.Sub(l.avail()); need.IsPositive() || !b.now().Before(l.validUntil) {
				need = decimal.Max(need, decimal.Zero)
				takes = append(takes, Take{Key: l.key, Limit: l.scope.Limit, Need: need, Want: l.want})
				short, scopes = append(short, l), append(scopes, l.scope)
			}
		}
		b.mu.Unlock()
		grants, err := b.take(ctx, takes, short)
		if err != nil {
			return nil, unavailable(scopes[0], err)
		}
		for i, g := range grants {
			if g.Granted.LessThan(takes[i].Need) {
				b.mu.Lock()
				own := decimal.Max(short[i].avail(), decimal.Zero)
				b.mu.Unlock()
				s := scopes[i]
				return nil, exceeded(s, g.Spent, s.Limit.Sub(g.Spent).Sub(g.Reserved).Add(own), amount, now)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		res.Settle(decimal.Zero, false) // the client left: no call will be made
		return nil, err
	}
	return res, nil
}

// holdIfCovered holds res's amount on every lease when each covers it and
// is still valid at now, or on none. b.mu is held.
func (b *Budgets) holdIfCovered(res *Reservation, now time.Time) bool {
	for _, l := range res.leases {
		if l.avail().LessThan(res.amount) || !now.Before(l.validUntil) {
			return false
		}
	}
	res.epochs = res.epochs[:0]
	for _, l := range res.leases {
		l.held = l.held.Add(res.amount)
		l.free = l.free.Sub(res.amount)
		res.epochs = append(res.epochs, l.epoch)
	}
	return true
}

// leaseFor returns the lease of s's current period, creating it. b.mu is held.
func (b *Budgets) leaseFor(s Scope, now time.Time) *lease {
	k := Key{Kind: s.Kind, ID: s.ID, Period: PeriodStart(s.Reset, now)}
	l, ok := b.leases[k]
	if !ok || l.gone {
		l = &lease{key: k}
		b.leases[k] = l
	}
	l.scope = s // the limit as the policy has it now
	return l
}

// take runs one round trip for takes and credits the grants to their
// leases (sorted, so concurrent takes lock rows in one order).
func (b *Budgets) take(ctx context.Context, takes []Take, ls []*lease) ([]Grant, error) {
	idx := make([]int, len(takes))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(x, y int) int { return takes[x].Key.less(takes[y].Key) })
	sorted := make([]Take, len(takes))
	for i, j := range idx {
		sorted[i] = takes[j]
	}
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), takeTimeout)
	defer cancel()
	sent := b.now()
	got, err := b.ledger.TakeLeases(tctx, b.replica, sent.Add(LeaseTTL), sorted)
	if err == nil && len(got) != len(takes) {
		err = fmt.Errorf("ledger answered %d grants for %d takes", len(got), len(takes))
	}
	if err != nil {
		return nil, err
	}
	grants := make([]Grant, len(takes))
	b.mu.Lock()
	for i, j := range idx {
		grants[j] = got[i]
		l := ls[j]
		if l.gone {
			// What the ledger granted is the replica's lease of the key:
			// credit the live one, never a lease nothing flushes.
			l = b.leaseFor(l.scope, l.key.Period)
			ls[j] = l
		}
		if id := got[i].LeaseID; id != l.id {
			// The ledger lease l stood for is gone: emptied, or swept
			// and charged in full.
			l.restart(id)
		}
		if l.id != 0 {
			l.renewed(sent)
		}
		l.granted = l.granted.Add(got[i].Granted)
		l.free = l.free.Add(got[i].Granted)
		l.full = got[i].Granted.GreaterThanOrEqual(takes[j].Want)
	}
	b.mu.Unlock()
	return grants, nil
}

// topUp starts a background take for leases running low whose last take
// was granted in full: in steady state no request waits on the ledger.
// Near a limit (a partial grant) requests take exactly what they need.
func (b *Budgets) topUp(ls []*lease) {
	var takes []Take
	var low []*lease
	b.mu.Lock()
	for _, l := range ls {
		if l.full && !l.taking && l.free.Add(l.free).LessThan(l.want) { // below half of want
			l.taking = true
			takes = append(takes, Take{Key: l.key, Limit: l.scope.Limit, Need: decimal.Zero, Want: l.want})
			low = append(low, l)
		}
	}
	b.mu.Unlock()
	if len(takes) == 0 {
		return
	}
	b.topUps.Add(1)
	go func() {
		defer b.topUps.Done()
		_, _ = b.take(context.Background(), takes, low) // a failure leaves the next request to take synchronously
		b.mu.Lock()
		for _, l := range low {
			l.taking = false
		}
		b.mu.Unlock()
	}()
}

// Amount is what the reservation holds per scope (the request's bound).
func (r *Reservation) Amount() decimal.Decimal {
	if r == nil {
		return decimal.Zero
	}
	return r.amount
}

// Settle records the actual cost against every held scope (zero for
// scopes that do not count BYOK spend when byok is true; never more than
// was reserved) and releases the reservation. It is in memory; the
// consumed spend reaches the ledger with the next flush.
func (r *Reservation) Settle(actual decimal.Decimal, byok bool) {
	if r == nil || r.done {
		return
	}
	r.done = true
	actual = decimal.Max(decimal.Min(actual, r.amount), decimal.Zero)
	unused := r.amount.Sub(actual)
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	for i, l := range r.leases {
		if r.epochs[i] != l.epoch {
			// Held on a ledger lease l no longer stands for: it was swept
			// (charged in full) or emptied.
			l.oldHeld = l.oldHeld.Sub(r.amount)
			continue
		}
		l.held = l.held.Sub(r.amount)
		if l.gone || (byok && !l.scope.CountsBYOK) {
			// Swept (charged in full), or not this budget's spend.
			l.free = l.free.Add(r.amount)
			continue
		}
		l.consumed = l.consumed.Add(actual)
		l.free = l.free.Add(unused)
	}
}

// Flush sends this replica's consumed spend to the ledger, hands back
// idle leases and renews the rest, in one round trip; the replica calls
// it every FlushEvery.
func (b *Budgets) Flush(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, takeTimeout)
	defer cancel()
	return b.flush(ctx, false)
}

// Sync flushes every consumed amount and hands back every unused lease,
// so the ledger shows exactly what was spent and what requests in flight
// hold. Close calls it at shutdown; tests call it to read the ledger.
func (b *Budgets) Sync(ctx context.Context) error {
	b.topUps.Wait() // each ends within takeTimeout
	return b.flush(ctx, true)
}

// flush sends one flush for every lease: consumed spend, releases (all
// unused when all is set, else of leases idle for IdleAfter or of ended
// periods) and the renewal of the rest. A flush whose outcome is unknown
// is retried as it was, with its seq, before anything new.
func (b *Budgets) flush(ctx context.Context, all bool) error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	if b.pending != nil {
		if err := b.send(ctx); err != nil {
			return err
		}
	}
	now := b.now()
	b.mu.Lock()
	p := &pendingFlush{}
	for k, l := range b.leases {
		if l.gone {
			delete(b.leases, k)
			continue
		}
		release := decimal.Zero
		idle := now.Sub(l.lastUse) >= IdleAfter || !k.Period.Equal(PeriodStart(l.scope.Reset, now))
		if all || idle || !l.full {
			release = decimal.Max(l.avail(), decimal.Zero)
		}
		if l.granted.IsZero() && l.held.IsZero() && l.consumed.IsZero() && !l.taking && l.waiting == 0 {
			delete(b.leases, k)
			continue
		}
		if l.recent > LeaseRequests/FlushIntervalsPerLease {
			// A busy budget: a lease of LeaseRequests requests would be
			// topped up every few requests, each a round trip to the
			// ledger. Size it for FlushIntervalsPerLease intervals at the
			// rate just seen instead; the ledger still grants at most a
			// share of what remains, so near the limit nothing changes.
			l.want = decimal.Max(l.want, l.amount.Mul(decimal.NewFromInt(FlushIntervalsPerLease*l.recent)))
		}
		l.recent = 0
		if l.id == 0 {
			continue // never granted: nothing in the ledger to flush
		}
		l.releasing = l.releasing.Add(release)
		l.free = l.free.Sub(release)
		p.items = append(p.items, Flush{Key: k, LeaseID: l.id, Spent: l.consumed, Release: release})
		p.leases, p.epochs = append(p.leases, l), append(p.epochs, l.epoch)
	}
	if len(p.items) == 0 {
		b.mu.Unlock()
		return nil
	}
	p.sort() // rows are locked in the order takes lock them
	b.seq++
	p.seq = b.seq
	b.pending = p
	b.mu.Unlock()
	return b.send(ctx)
}

// send runs the pending flush and applies its outcome. b.flushMu is held.
func (b *Budgets) send(ctx context.Context) error {
	p := b.pending
	sent := b.now()
	states, err := b.ledger.FlushLeases(ctx, b.replica, p.seq, sent.Add(LeaseTTL), p.items)
	if err == nil && len(states) != len(p.items) {
		err = fmt.Errorf("ledger answered %d states for %d flushes", len(states), len(p.items))
	}
	if err != nil {
		return fmt.Errorf("flush budget leases: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, it := range p.items {
		l := p.leases[i]
		if l.epoch != p.epochs[i] {
			continue // it stands for another ledger lease since
		}
		if states[i] == Gone {
			l.gone = true // charged in full by a sweep: nothing of it is ours to flush
			continue
		}
		l.granted = l.granted.Sub(it.Spent).Sub(it.Release)
		l.consumed = l.consumed.Sub(it.Spent)
		l.releasing = l.releasing.Sub(it.Release)
		l.renewed(sent) // free is unchanged: granted fell by what consumed and releasing did
	}
	b.pending = nil
	return nil
}

// Usage is what this replica knows of one budget beyond the ledger's
// totals: spend settled but not flushed yet, and the unused part of its
// lease (counted as reserved in the ledger, yet free to spend).
func (b *Budgets) Usage(s Scope, now time.Time) (unflushed, unused decimal.Decimal) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.leases[Key{Kind: s.Kind, ID: s.ID, Period: PeriodStart(s.Reset, now)}]
	if !ok || l.gone {
		return decimal.Zero, decimal.Zero
	}
	return l.consumed, decimal.Max(l.avail(), decimal.Zero)
}

func unavailable(s Scope, err error) error {
	return apierr.New(http.StatusServiceUnavailable, apierr.BudgetUnavailable,
		"The budget store is unavailable, so requests governed by the %s %s's limit are refused until it returns; retry shortly. Requests without a budget keep working.",
		s.Kind, s.Name).With("scope", s.Kind).With(s.Kind+"_id", s.ID).WithRetryAfter(5).
		WithCause(fmt.Errorf("lease budget of %s %s: %w", s.Kind, s.ID, err))
}

func exceeded(s Scope, spent, remaining, amount decimal.Decimal, now time.Time) *apierr.Error {
	remaining = decimal.Max(remaining, decimal.Zero)
	period := "lifetime"
	if s.Reset != "" {
		period = s.Reset
	}
	e := apierr.New(http.StatusPaymentRequired, apierr.BudgetExceeded,
		"The %s %s has a %s limit of $%s; $%s remains and this request may cost up to $%s.",
		s.Kind, s.Name, period, s.Limit.String(), remaining.String(), amount.String()).
		With("scope", s.Kind).With(s.Kind+"_id", s.ID).
		With("limit", json.Number(s.Limit.String())).With("spent", json.Number(spent.String())).
		With("remaining", json.Number(remaining.String()))
	if s.Kind == "guardrail" {
		e = e.With("guardrail_name", s.Name)
	}
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

// Swept is what a sweep charged one budget.
type Swept struct {
	Kind, ScopeID string
	Amount        decimal.Decimal
}

// Close hands everything back at shutdown, once requests have settled:
// consumed spend is flushed and every lease returned. When the ledger
// cannot be reached, the leases stay and another replica sweeps them
// (charging them in full) once this one stops heartbeating.
func (b *Budgets) Close(ctx context.Context) error {
	if err := b.Sync(ctx); err != nil {
		return err
	}
	b.mu.Lock()
	for _, l := range b.leases {
		if l.held.IsPositive() {
			b.mu.Unlock()
			return fmt.Errorf("budget leases still hold requests in flight")
		}
	}
	b.leases = map[Key]*lease{}
	b.mu.Unlock()
	return b.ledger.ReturnLeases(ctx, b.replica)
}

// Spender reads a budget's ledger totals.
type Spender interface {
	Spend(ctx context.Context, kind, id string, period time.Time) (spent, reserved decimal.Decimal, err error)
}

// Status is a budget's current period as a client sees it.
type Status struct {
	// Usage is what was spent this period (this replica's unflushed
	// spend included; another replica's reaches the ledger within
	// FlushEvery).
	Usage decimal.Decimal
	// Remaining is what requests can still reserve: the limit less what
	// was spent and what requests in flight and other replicas' leases
	// hold.
	Remaining decimal.Decimal
	ResetsAt  *time.Time // nil for a lifetime budget
}

// Status reads s's current period.
func (b *Budgets) Status(ctx context.Context, sp Spender, s Scope) (Status, error) {
	now := b.now()
	spent, reserved, err := sp.Spend(ctx, s.Kind, s.ID, PeriodStart(s.Reset, now))
	if err != nil {
		return Status{}, err
	}
	unflushed, unused := b.Usage(s, now)
	st := Status{Usage: spent.Add(unflushed),
		Remaining: decimal.Max(s.Limit.Sub(spent).Sub(reserved).Add(unused), decimal.Zero)}
	if next, ok := NextReset(s.Reset, now); ok {
		st.ResetsAt = &next
	}
	return st, nil
}
