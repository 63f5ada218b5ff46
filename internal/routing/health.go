package routing

import (
	"slices"
	"sync"
	"time"
)

// Tracker is the live Health of endpoints, fed by every upstream attempt:
// success rate over the last Window attempts, time to first token and
// throughput as moving averages, and a circuit breaker that opens after
// Threshold consecutive failures, refuses the endpoint for Cooldown, then
// lets one probe through (half-open): its success closes the circuit, its
// failure opens it again.
type Tracker struct {
	Window    int
	Threshold int
	Cooldown  time.Duration
	// RecentFailure is how long a failure moves the endpoint after the
	// others in every order.
	RecentFailure time.Duration
	Now           func() time.Time

	mu sync.Mutex
	m  map[endpointID]*endpointHealth
}

type endpointID struct{ provider, model string }

// NewTracker has production defaults: 50 attempts, 5 failures, 30 s
// cool-down, failures count as recent for a minute.
func NewTracker() *Tracker {
	return &Tracker{Window: 50, Threshold: 5, Cooldown: 30 * time.Second, RecentFailure: time.Minute, Now: time.Now,
		m: map[endpointID]*endpointHealth{}}
}

type breaker int

const (
	closed breaker = iota
	open
	halfOpen // one probe admitted, its outcome pending
)

type endpointHealth struct {
	outcomes    []bool // ring of the last Window attempts
	next, count int
	ok          int     // successes among them
	ttft, tput  float64 // moving averages; 0 until measured
	consecutive int     // failures in a row
	state       breaker
	openedAt    time.Time
	lastFailure time.Time

	minutes [minutesKept]minute // outcomes per minute, for uptime windows
	ttfts   samples             // recent time-to-first-token samples (ms)
	tputs   samples             // recent throughput samples (tokens/s)
}

// minutesKept is a day of per-minute outcome counts.
const minutesKept = 24 * 60

type minute struct {
	at       int64 // unix minute
	ok, fail uint32
}

// samples is a ring of the last measurements, with when they were taken.
type samples struct {
	v    [sampleCap]float64
	at   [sampleCap]int64 // unix seconds
	next int
	n    int
}

const sampleCap = 256

func (s *samples) add(v float64, at time.Time) {
	s.v[s.next], s.at[s.next] = v, at.Unix()
	s.next = (s.next + 1) % sampleCap
	s.n = min(s.n+1, sampleCap)
}

// since returns the samples taken at or after t.
func (s *samples) since(t time.Time) []float64 {
	var out []float64
	for i := range s.n {
		if s.at[i] >= t.Unix() {
			out = append(out, s.v[i])
		}
	}
	return out
}

func (h *endpointHealth) tally(now time.Time, ok bool) {
	m := now.Unix() / 60
	b := &h.minutes[m%minutesKept]
	if b.at != m {
		*b = minute{at: m}
	}
	if ok {
		b.ok++
	} else {
		b.fail++
	}
}

// uptime is the share of successful attempts over the last d, nil
// without any.
func (h *endpointHealth) uptime(now time.Time, d time.Duration) *float64 {
	from, to := (now.Add(-d).Unix())/60+1, now.Unix()/60
	var ok, all uint32
	for m := from; m <= to; m++ {
		if b := h.minutes[m%minutesKept]; b.at == m {
			ok, all = ok+b.ok, all+b.ok+b.fail
		}
	}
	if all == 0 {
		return nil
	}
	u := 100 * float64(ok) / float64(all)
	return &u
}

// Percentiles of a measurement over a window.
type Percentiles struct {
	P50, P75, P90, P99 float64
}

func percentilesOf(v []float64, reverse bool) *Percentiles {
	if len(v) == 0 {
		return nil
	}
	slices.Sort(v)
	if reverse { // for throughput, p99 is the slow tail: the low end
		slices.Reverse(v)
	}
	at := func(q float64) float64 { return v[min(len(v)-1, int(q*float64(len(v))))] }
	return &Percentiles{P50: at(0.50), P75: at(0.75), P90: at(0.90), P99: at(0.99)}
}

// Window is an endpoint's health as OpenRouter reports it.
type Window struct {
	Uptime5m, Uptime30m, Uptime1d *float64     // percent; nil without attempts
	Latency30m                    *Percentiles // milliseconds to first token (as OpenRouter)
	Throughput30m                 *Percentiles // tokens per second (p99 = slowest)
	// Status: 0 normal, -1 failed within the last minute, -2 circuit open.
	Status int
}

// Report is an endpoint's health over OpenRouter's windows.
func (t *Tracker) Report(provider, model string) Window {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.m[endpointID{provider, model}]
	if h == nil {
		return Window{}
	}
	now := t.Now()
	w := Window{Uptime5m: h.uptime(now, 5*time.Minute), Uptime30m: h.uptime(now, 30*time.Minute),
		Uptime1d:      h.uptime(now, 24*time.Hour),
		Latency30m:    percentilesOf(h.ttfts.since(now.Add(-30*time.Minute)), false),
		Throughput30m: percentilesOf(h.tputs.since(now.Add(-30*time.Minute)), true)}
	switch {
	case h.state != closed:
		w.Status = -2
	case !h.lastFailure.IsZero() && now.Sub(h.lastFailure) < time.Minute:
		w.Status = -1
	}
	return w
}

// Outcome is one attempt as health sees it.
type Outcome struct {
	OK           bool
	TTFT         time.Duration // until the first byte of the answer; 0 unknown
	Total        time.Duration // until the answer ended
	OutputTokens int
}

const ewma = 0.2 // weight of the newest measurement

// minThroughputTokens is the shortest answer throughput is measured on.
const minThroughputTokens = 32

// Observe feeds one attempt's outcome.
func (t *Tracker) Observe(provider, model string, o Outcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.m[endpointID{provider, model}]
	if h == nil {
		h = &endpointHealth{outcomes: make([]bool, t.Window)}
		t.m[endpointID{provider, model}] = h
	}
	if h.count == len(h.outcomes) && h.outcomes[h.next] { // the oldest leaves the window
		h.ok--
	}
	if o.OK {
		h.ok++
	}
	h.outcomes[h.next] = o.OK
	h.next = (h.next + 1) % len(h.outcomes)
	h.count = min(h.count+1, len(h.outcomes))
	now := t.Now()
	h.tally(now, o.OK)
	if !o.OK {
		h.lastFailure = now
		h.consecutive++
		if h.state == halfOpen || h.consecutive >= t.Threshold {
			h.state, h.openedAt = open, now
		}
		return
	}
	h.consecutive, h.state = 0, closed
	if o.TTFT > 0 {
		h.ttft = average(h.ttft, o.TTFT.Seconds()*1000)
		h.ttfts.add(o.TTFT.Seconds()*1000, now)
	}
	// A handful of tokens in a fraction of a millisecond says nothing of
	// an endpoint's speed: throughput is measured on longer answers only.
	if gen := o.Total - o.TTFT; o.OutputTokens >= minThroughputTokens && gen > 0 {
		tput := float64(o.OutputTokens) / gen.Seconds()
		h.tput = average(h.tput, tput)
		h.tputs.add(tput, now)
	}
}

func average(old, v float64) float64 {
	if old == 0 {
		return v
	}
	return old*(1-ewma) + v*ewma
}

// Stats implements Health. Past an open circuit's cool-down, the first
// caller gets the endpoint (the half-open probe) and the others see it
// open until the probe's outcome is observed.
func (t *Tracker) Stats(provider, model string) Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.m[endpointID{provider, model}]
	if h == nil {
		return Stats{}
	}
	now := t.Now()
	s := Stats{RecentlyFail: !h.lastFailure.IsZero() && now.Sub(h.lastFailure) < t.RecentFailure}
	switch h.state {
	case open:
		if now.Sub(h.openedAt) < t.Cooldown {
			s.CircuitOpen = true
		} else {
			h.state = halfOpen // this caller probes
			h.openedAt = now
		}
	case halfOpen:
		// A probe that never reports back (its request vanished) must not
		// keep the circuit shut: after another cool-down, probe again.
		if now.Sub(h.openedAt) < t.Cooldown {
			s.CircuitOpen = true
		} else {
			h.openedAt = now
		}
	}
	if h.count > 0 {
		s.Known, s.TTFTMs, s.Throughput = true, h.ttft, h.tput
		s.SuccessRate = float64(h.ok) / float64(h.count)
	}
	return s
}
