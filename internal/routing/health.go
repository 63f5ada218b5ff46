package routing

import (
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
	}
	// A handful of tokens in a fraction of a millisecond says nothing of
	// an endpoint's speed: throughput is measured on longer answers only.
	if gen := o.Total - o.TTFT; o.OutputTokens >= minThroughputTokens && gen > 0 {
		h.tput = average(h.tput, float64(o.OutputTokens)/gen.Seconds())
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
