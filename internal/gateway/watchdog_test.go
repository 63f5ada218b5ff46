package gateway

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/apierr"
)

// TestWatchdogCutsOnlyASilentCall: a call kicked more often than its idle
// limit lives on however long it lasts; once silent, it is cut after the
// idle limit (never before it), and the error says it timed out.
func TestWatchdogCutsOnlyASilentCall(t *testing.T) {
	t.Parallel()
	const idle = 60 * time.Millisecond
	for _, tc := range []struct {
		name  string
		first time.Duration
	}{
		{"first limit longer than idle", 10 * time.Second}, // the first kick must bring the cut forward
		{"first limit shorter than idle", idle / 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, wd := watchFirst(context.Background(), tc.first, idle)
			defer wd.stop()
			wd.kick()
			for range 10 { // 5 idle limits of chunks
				time.Sleep(idle / 2)
				wd.kick()
				require.NoError(t, ctx.Err(), "a call that keeps sending is not cut")
			}
			last := time.Now()
			select {
			case <-ctx.Done():
			case <-time.After(50 * idle):
				t.Fatal("a silent call was never cut")
			}
			require.GreaterOrEqual(t, time.Since(last), idle, "cut before the idle limit had passed")
			err := wd.explain("p", errors.New("context canceled"))
			require.Equal(t, apierr.Timeout, apierr.From(err).Type)
		})
	}
}

// TestWatchdogFirstLimitRunsFromTheStart: before the first kick the call
// has the first limit, counted from when the watch began.
func TestWatchdogFirstLimitRunsFromTheStart(t *testing.T) {
	t.Parallel()
	const first = 50 * time.Millisecond
	start := time.Now()
	ctx, wd := watchFirst(context.Background(), first, time.Hour)
	defer wd.stop()
	select {
	case <-ctx.Done():
	case <-time.After(100 * first):
		t.Fatal("a call that never answered was never cut")
	}
	require.GreaterOrEqual(t, time.Since(start), first)
	require.True(t, wd.fired.Load())
}

// TestStoppedWatchdogNeverCuts: a watch stopped before its limit leaves the
// call's context cancelled by stop alone, and never reports a timeout.
func TestStoppedWatchdogNeverCuts(t *testing.T) {
	t.Parallel()
	const idle = 20 * time.Millisecond
	_, wd := watchFirst(context.Background(), idle, idle)
	wd.kick()
	wd.stop()
	time.Sleep(5 * idle)
	require.False(t, wd.fired.Load())
	require.NoError(t, wd.explain("p", nil))
}
