package routing

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestTrackerBreakerOpensProbesAndCloses(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1000, 0)}
	tr := NewTracker()
	tr.Now = c.now
	fail := Outcome{}
	for range 4 {
		tr.Observe("p", "m", fail)
	}
	require.False(t, tr.Stats("p", "m").CircuitOpen, "4 failures: still closed")
	require.True(t, tr.Stats("p", "m").RecentlyFail)
	tr.Observe("p", "m", fail)
	require.True(t, tr.Stats("p", "m").CircuitOpen, "5 in a row open it")

	c.t = c.t.Add(29 * time.Second)
	require.True(t, tr.Stats("p", "m").CircuitOpen, "within the cool-down")
	c.t = c.t.Add(2 * time.Second)
	require.False(t, tr.Stats("p", "m").CircuitOpen, "the first caller after the cool-down probes")
	require.True(t, tr.Stats("p", "m").CircuitOpen, "the others wait for the probe")
	tr.Observe("p", "m", fail)
	require.True(t, tr.Stats("p", "m").CircuitOpen, "a failed probe opens it again")

	c.t = c.t.Add(31 * time.Second)
	require.False(t, tr.Stats("p", "m").CircuitOpen)
	tr.Observe("p", "m", Outcome{OK: true, TTFT: 100 * time.Millisecond, Total: 1100 * time.Millisecond, OutputTokens: 50})
	tr.Observe("p", "m", Outcome{OK: true, TTFT: 100 * time.Millisecond, Total: 101 * time.Millisecond, OutputTokens: 3}) // too short to time
	s := tr.Stats("p", "m")
	require.False(t, s.CircuitOpen, "a good probe closes it")
	require.True(t, s.Known)
	require.InDelta(t, 100, s.TTFTMs, 0.01)
	require.InDelta(t, 50, s.Throughput, 0.01)
	require.InDelta(t, 2.0/8, s.SuccessRate, 0.001) // 6 failures, 2 successes

	c.t = c.t.Add(2 * time.Minute)
	require.False(t, tr.Stats("p", "m").RecentlyFail, "failures stop counting as recent")
	require.False(t, tr.Stats("q", "m").Known, "other endpoints are unknown")
}

// TestTrackerLostProbe: a probe whose outcome never arrives does not keep
// the circuit shut forever.
func TestTrackerLostProbe(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1000, 0)}
	tr := NewTracker()
	tr.Now = c.now
	for range 5 {
		tr.Observe("p", "m", Outcome{})
	}
	c.t = c.t.Add(31 * time.Second)
	require.False(t, tr.Stats("p", "m").CircuitOpen) // probe admitted, never reports
	c.t = c.t.Add(31 * time.Second)
	require.False(t, tr.Stats("p", "m").CircuitOpen, "probe again")
}

func TestTrackerWindowForgetsOldOutcomes(t *testing.T) {
	t.Parallel()
	tr := NewTracker()
	tr.Window = 10
	for range 10 {
		tr.Observe("p", "m", Outcome{})
	}
	for range 10 {
		tr.Observe("p", "m", Outcome{OK: true})
	}
	require.Equal(t, 1.0, tr.Stats("p", "m").SuccessRate)
}

func TestTrackerWindows(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_000_000*60, 0)}
	tr := NewTracker()
	tr.Now = c.now
	require.Equal(t, Window{}, tr.Report("p", "m"), "nothing known")
	// An hour ago: 1 failure; 10 minutes ago: 3 successes; now: 1 failure, 1 success.
	c.t = c.t.Add(-time.Hour)
	tr.Observe("p", "m", Outcome{})
	c.t = c.t.Add(50 * time.Minute)
	for i := range 3 {
		tr.Observe("p", "m", Outcome{OK: true, TTFT: time.Duration(i+1) * 100 * time.Millisecond, Total: 2 * time.Second, OutputTokens: 100})
	}
	c.t = c.t.Add(10 * time.Minute)
	tr.Observe("p", "m", Outcome{})
	tr.Observe("p", "m", Outcome{OK: true, TTFT: 400 * time.Millisecond})
	w := tr.Report("p", "m")
	require.InDelta(t, 50, *w.Uptime5m, 0.001)
	require.InDelta(t, 80, *w.Uptime30m, 0.001)
	require.InDelta(t, 4.0/6*100, *w.Uptime1d, 0.001)
	require.InDelta(t, 300, w.Latency30m.P50, 1e-6, "milliseconds, as OpenRouter")
	require.InDelta(t, 400, w.Latency30m.P99, 1e-6)
	require.NotNil(t, w.Throughput30m)
	require.GreaterOrEqual(t, w.Throughput30m.P50, w.Throughput30m.P99, "p99 is the slow tail")
	require.Equal(t, -1, w.Status, "a failure within the last minute")
	c.t = c.t.Add(2 * time.Minute)
	require.Equal(t, 0, tr.Report("p", "m").Status)
	for range 5 {
		tr.Observe("p", "m", Outcome{})
	}
	require.Equal(t, -2, tr.Report("p", "m").Status, "circuit open")
}
