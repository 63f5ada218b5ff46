// Package gctune bounds the garbage collector's headroom (how far the heap
// may grow past its live part before the next collection) from both sides.
//
// With Go's default (GOGC=100) the headroom is the live heap plus the
// goroutine stacks. A gateway under load has a live heap of a few MiB and
// allocates tens of KiB per request, so it collected every few hundred
// requests and the collector took about a tenth of its CPU: the tuner keeps
// the heap goal at least Floor.
//
// Holding 10,000 streams, the live heap and stacks are a few hundred MiB of
// state that hardly changes, while a stream allocates little: GOGC=100 then
// doubled the process for garbage it makes slowly. The tuner caps the
// headroom at Ceiling, so such a process collects a little more often (each
// collection then marks the held state) instead of growing by as much again;
// GOGC never goes below minPercent, so a very large live heap still gets a
// quarter of itself.
//
// After each collection the tuner sets GOGC from the live heap and the
// stacks and globals the collector scans, as the runtime's pacer counts
// them. An operator who sets GOGC keeps it: the tuner does not start.
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// Floor is the heap goal the tuner keeps at least.
const Floor = 64 << 20

// Ceiling is the most headroom the tuner leaves above the live heap, until
// GOGC reaches minPercent.
const Ceiling = 128 << 20

// maxPercent bounds GOGC when the live heap is tiny (an idle gateway);
// minPercent when it is huge.
const (
	maxPercent = 2000
	minPercent = 25
)

// Percent is the GOGC that gives a live heap of live bytes, with roots bytes
// of stacks and globals, GOGC=100's headroom, raised so that the goal is at
// least floor and lowered to at most ceiling; the runtime's goal is
// live + (live + roots) × GOGC/100. It stays within [minPercent,
// maxPercent].
func Percent(floor, ceiling, live, roots uint64) int {
	scan := live + roots
	if scan == 0 {
		return maxPercent
	}
	headroom := scan // GOGC=100
	if live+headroom < floor {
		headroom = floor - live
	}
	headroom = min(headroom, ceiling)
	return int(max(minPercent, min(maxPercent, headroom*100/scan)))
}

// Start tunes GOGC after every collection until stop is called, unless the
// GOGC environment variable is set (it returns a no-op then). It is meant
// to run once per process.
func Start() (stop func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	t := &tuner{floor: Floor, ceiling: Ceiling, last: -1}
	t.arm()
	return func() { t.stopped.Store(true) }
}

type tuner struct {
	floor   uint64
	ceiling uint64
	last    int // the GOGC last set; only the cleanup goroutine touches it
	stopped atomic.Bool
}

// sentinel is garbage from its birth: the collection that finds it runs its
// cleanup, which tunes and arms the next one. It is large enough not to be
// a tiny allocation, whose cleanups may never run.
type sentinel struct{ _ [32]byte }

func (t *tuner) arm() {
	runtime.AddCleanup(new(sentinel), t.tune, 0)
}

func (t *tuner) tune(int) {
	if t.stopped.Load() {
		debug.SetGCPercent(100)
		return
	}
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		var roots uint64
		for _, r := range s[1:] {
			if r.Value.Kind() == metrics.KindUint64 {
				roots += r.Value.Uint64()
			}
		}
		if p := Percent(t.floor, t.ceiling, s[0].Value.Uint64(), roots); p != t.last {
			debug.SetGCPercent(p)
			t.last = p
		}
	}
	t.arm()
}
