package main

import (
	"math"
	"slices"
	"time"
)

// distribution is a sorted set of durations.
type distribution []time.Duration

// latencies returns the sorted latencies (or TTFTs) of b's samples.
func latencies(b batch, ttft bool) distribution {
	d := make(distribution, 0, len(b.samples))
	for _, s := range b.samples {
		if ttft {
			d = append(d, s.ttft)
		} else {
			d = append(d, s.latency)
		}
	}
	slices.Sort(d)
	return d
}

// percentile is the nearest-rank p-th percentile (0 < p ≤ 100), or 0 when
// empty.
func (d distribution) percentile(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(d)))) - 1
	return d[min(max(i, 0), len(d)-1)]
}

// throughput is b's successful requests per second of wall time.
func throughput(b batch) float64 {
	if b.wall <= 0 {
		return 0
	}
	return float64(len(b.samples)) / b.wall.Seconds()
}

// cpuPerRequest is the process CPU time per successful request of b.
func cpuPerRequest(b batch) time.Duration {
	if len(b.samples) == 0 {
		return 0
	}
	return b.cpu / time.Duration(len(b.samples))
}
