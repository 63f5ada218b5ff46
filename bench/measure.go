package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

// comparison is one scenario and mode measured directly and through the
// gateway.
type comparison struct {
	scenario string
	stream   bool
	planned  int // requests per target
	warmup   int // unmeasured requests per target before them
	direct   batch
	gateway  batch
	// gatewayCalls counts every request sent to the gateway, warm-up
	// included: each should leave one generation record.
	gatewayCalls int
}

// mode names the request kind.
func (c comparison) mode() string {
	if c.stream {
		return "stream"
	}
	return "json"
}

// measure warms both targets up, then sends the planned requests to each in
// two halves ordered direct, gateway, gateway, direct, so that drift over
// the run (other load, GC, caches) weighs on both alike.
func measure(ctx context.Context, l *loader, env *environment, sc scenario, stream bool, o options) comparison {
	n := sc.requests(stream, o.scale)
	c := comparison{scenario: sc.name, stream: stream, planned: n, warmup: warmupCount(n, o.concurrency)}
	progress := func(step string) {
		fmt.Fprintf(os.Stderr, "bench: %s/%s: %s\n", sc.name, c.mode(), step)
	}
	progress(fmt.Sprintf("warm-up, %d requests per target", c.warmup))
	for _, t := range []target{env.direct, env.gateway} {
		c.record(t, l.run(ctx, t, stream, c.warmup), true)
	}
	half := n / 2
	rounds := []struct {
		t target
		n int
	}{{env.direct, half}, {env.gateway, half}, {env.gateway, n - half}, {env.direct, n - half}}
	for _, r := range rounds {
		if r.n == 0 {
			continue
		}
		began := time.Now()
		b := l.run(ctx, r.t, stream, r.n)
		progress(fmt.Sprintf("%d requests %s in %s", r.n, r.t.name, time.Since(began).Round(time.Millisecond)))
		c.record(r.t, b, false)
	}
	return c
}

// record adds b to the batch of target t; of a warm-up batch, only the
// failures count.
func (c *comparison) record(t target, b batch, warmup bool) {
	if t.name == gatewayTarget {
		c.gatewayCalls += b.sent
	}
	if warmup {
		b = batch{errs: prefixed(b.errs, "warm-up: ")}
	}
	if t.name == gatewayTarget {
		c.gateway.add(b)
		return
	}
	c.direct.add(b)
}

// warmupCount is a tenth of n, at least two requests per worker and at most
// 200.
func warmupCount(n, concurrency int) int {
	return max(min(n/10, 200), 2*concurrency)
}

// complete reports whether every planned request was sent to both targets.
func (c comparison) complete() bool {
	return c.direct.sent == c.planned && c.gateway.sent == c.planned
}

// prefixed returns t with every kind prefixed.
func prefixed(t tally, prefix string) tally {
	out := tally{counts: map[string]int{}, example: map[string]string{}}
	for k, n := range t.counts {
		out.counts[prefix+k], out.example[prefix+k] = n, t.example[k]
	}
	return out
}
