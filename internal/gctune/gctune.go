// Package gctune keeps the garbage collector's heap goal at or above a
// floor, so that a small live heap under load is not collected dozens of
// times a second.
//
// With Go's default (GOGC=100) the next collection starts when the heap has
// doubled its live part. A gateway under load has a live heap of a few MiB
// and allocates tens of KiB per request, so it collected every few hundred
// requests and the collector took about a tenth of its CPU. After each
// collection the tuner sets GOGC so that the next goal is the floor, or
// GOGC=100's goal when the live heap is large enough that this is already
// above the floor (10,000 held streams): memory beyond the floor still grows
// as it would without the tuner.
//
// An operator who sets GOGC keeps it: the tuner does not start.
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

// maxPercent bounds GOGC when the live heap is tiny (an idle gateway).
const maxPercent = 2000

// Percent is the GOGC that puts the next heap goal at floor for a live heap
// of live bytes (the goal is live × (1 + GOGC/100)), never below Go's
// default of 100 nor above maxPercent.
func Percent(floor, live uint64) int {
	if live == 0 {
		return maxPercent
	}
	if live >= floor/2 {
		return 100
	}
	return int(min(uint64(maxPercent), floor*100/live-100))
}

// Start tunes GOGC after every collection until stop is called, unless the
// GOGC environment variable is set (it returns a no-op then). It is meant
// to run once per process.
func Start() (stop func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	t := &tuner{floor: Floor, last: -1}
	t.arm()
	return func() { t.stopped.Store(true) }
}

type tuner struct {
	floor   uint64
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
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		if p := Percent(t.floor, s[0].Value.Uint64()); p != t.last {
			debug.SetGCPercent(p)
			t.last = p
		}
	}
	t.arm()
}
