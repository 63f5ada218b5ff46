package gctune

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPercentPutsTheGoalAtTheFloor(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		live uint64
		want int
	}{
		{0, maxPercent},
		{8 * mib, 700},          // 8 MiB × 8 = 64 MiB
		{16 * mib, 300},         // × 4
		{31 * mib, 106},         // just under half the floor
		{32 * mib, 100},         // half: GOGC=100's goal is the floor
		{500 * mib, 100},        // large heaps grow as without the tuner
		{10 * 1024, maxPercent}, // an idle process: bounded
	}
	for _, c := range cases {
		require.Equal(t, c.want, Percent(Floor, c.live), "live %d", c.live)
	}
}

func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// waitGOGC collects until GOGC is want or two seconds pass (the tuner runs
// on the runtime's cleanup goroutine, after a collection).
func waitGOGC(want func(uint64) bool) uint64 {
	deadline := time.Now().Add(2 * time.Second)
	for {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
		if p := gogc(); want(p) || time.Now().After(deadline) {
			return p
		}
	}
}

// TestTunerRaisesGOGCForASmallHeapAndStops: this test binary's live heap
// is far below the floor, so the tuner raises GOGC after a collection;
// stopped, it puts back the default.
func TestTunerRaisesGOGCForASmallHeapAndStops(t *testing.T) {
	require.EqualValues(t, 100, gogc())
	stop := Start()
	require.Greater(t, waitGOGC(func(p uint64) bool { return p > 100 }), uint64(100))
	stop()
	require.EqualValues(t, 100, waitGOGC(func(p uint64) bool { return p == 100 }))
}

// TestAnOperatorsGOGCIsKept: with GOGC set, Start changes nothing.
func TestAnOperatorsGOGCIsKept(t *testing.T) {
	t.Setenv("GOGC", "100")
	stop := Start()
	defer stop()
	require.EqualValues(t, 100, waitGOGC(func(uint64) bool { return false }))
}
