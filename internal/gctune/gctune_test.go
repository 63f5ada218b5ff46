package gctune

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPercentBoundsTheHeadroom(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		live, roots uint64
		want        int
	}{
		{0, 0, maxPercent},
		{8 * mib, 0, 700},           // 8 MiB × 8 = 64 MiB
		{16 * mib, 0, 300},          // × 4
		{31 * mib, 0, 106},          // just under half the floor
		{32 * mib, 0, 100},          // half: GOGC=100's goal is the floor
		{24 * mib, 8 * mib, 125},    // stacks count: 24 + 32 = 56 < 64, so 40 MiB over a scan of 32
		{64 * mib, 0, 100},          // GOGC=100's headroom, 64 MiB, within the bounds
		{128 * mib, 0, 100},         // at the ceiling
		{150 * mib, 137 * mib, 44},  // 10,000 held streams: 128 MiB of headroom, not 287
		{500 * mib, 0, 25},          // 128/500 is below the least GOGC
		{2048 * mib, 0, minPercent}, // a huge heap keeps a quarter of itself
		{10 * 1024, 0, maxPercent},  // an idle process: bounded
		{1 * mib, 40 * mib, 153},    // mostly stacks: 63 MiB over a scan of 41, the goal at the floor
	}
	for _, c := range cases {
		require.Equal(t, c.want, Percent(Floor, Ceiling, c.live, c.roots), "live %d, roots %d", c.live, c.roots)
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
