package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"time"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
)

// fastUpstream is the mock answering at once and streaming unpaced: every
// difference between targets is their own cost.
func fastUpstream() http.Handler { return mockupstream.New(mockupstream.Config{}) }

// section is one load shape measured against several targets.
type section struct {
	name    string
	stream  bool
	conc    int // requests in flight
	n       int // requests per target at scale 1
	pad     int // bytes added to each request body
	targets []target
	results []batch // per target, measured rounds only
	warmup  int
	planned int
}

// sections are what the report's table shows, in order. The first
// concurrency is where the CPU targets are judged; c=1 is unloaded latency.
func sections(env *environment) []*section {
	all := []target{env.direct, env.proxy, env.gateway, env.guarded}
	big := []target{env.direct, env.proxy, env.guarded}
	return []*section{
		{name: "json c=16", conc: 16, n: 10000, targets: all},
		{name: "json c=64", conc: 64, n: 10000, targets: all},
		{name: "json c=1", conc: 1, n: 2000, targets: all},
		{name: "stream c=1", stream: true, conc: 1, n: 1000, targets: all},
		{name: "stream c=16", stream: true, conc: 16, n: 3000, targets: all},
		{name: "json 100KB c=4", conc: 4, n: 400, pad: 100 << 10, targets: big},
		{name: "json 1MB c=4", conc: 4, n: 60, pad: 1 << 20, targets: big},
	}
}

// measure warms every target up, then sends the planned requests to each
// in rounds, the targets' order rotating from round to round so that drift
// over the run (other load, GC, caches) weighs on all alike.
func (s *section) measure(ctx context.Context, scale float64, rounds int, timeout time.Duration) {
	l := newLoader(s.conc, timeout)
	defer l.close()
	s.planned = max(rounds, int(math.Round(float64(s.n)*scale)))
	s.warmup = warmupCount(s.planned, s.conc)
	s.results = make([]batch, len(s.targets))
	fmt.Fprintf(os.Stderr, "bench: %s: warm-up\n", s.name)
	for i, t := range s.targets {
		w := l.run(ctx, t, s.stream, s.warmup, s.pad)
		s.results[i].errs.merge(prefixed(w.errs, "warm-up: "))
		if t.gateway {
			gatewayCalls.Add(int64(w.sent))
		}
	}
	began := time.Now()
	for r := range rounds {
		count := s.planned/rounds + b2i(r < s.planned%rounds)
		for k := range s.targets {
			i := (k + r) % len(s.targets)
			b := l.run(ctx, s.targets[i], s.stream, count, s.pad)
			if s.targets[i].gateway {
				gatewayCalls.Add(int64(b.sent))
			}
			s.results[i].add(b)
		}
	}
	fmt.Fprintf(os.Stderr, "bench: %s: %d requests per target in %s\n", s.name, s.planned, time.Since(began).Round(time.Millisecond))
}

// complete reports whether every planned request was sent to every target.
func (s *section) complete() bool {
	for _, b := range s.results {
		if b.sent != s.planned {
			return false
		}
	}
	return len(s.results) > 0
}

// result is the batch of the target named name, if measured.
func (s *section) result(name string) (batch, bool) {
	for i, t := range s.targets {
		if t.name == name && i < len(s.results) {
			return s.results[i], true
		}
	}
	return batch{}, false
}

// warmupCount is a tenth of n, at least two requests per worker and at most
// 200.
func warmupCount(n, concurrency int) int {
	return max(min(n/10, 200), 2*concurrency)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// prefixed returns t with every kind prefixed.
func prefixed(t tally, prefix string) tally {
	out := tally{counts: map[string]int{}, example: map[string]string{}}
	for k, n := range t.counts {
		out.counts[prefix+k], out.example[prefix+k] = n, t.example[k]
	}
	return out
}
