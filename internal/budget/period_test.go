package budget

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPeriods(t *testing.T) {
	t.Parallel()
	// Wednesday 2026-11-25 18:41 in UTC-5 is Wednesday 23:41 UTC.
	now := time.Date(2026, 11, 25, 18, 41, 0, 0, time.FixedZone("EST", -5*3600))
	cases := []struct {
		reset       string
		start, next string
	}{
		{"daily", "2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z"},
		{"weekly", "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z"}, // Monday
		{"monthly", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"},
	}
	for _, tc := range cases {
		require.Equal(t, tc.start, PeriodStart(tc.reset, now).Format(time.RFC3339), tc.reset)
		next, ok := NextReset(tc.reset, now)
		require.True(t, ok)
		require.Equal(t, tc.next, next.Format(time.RFC3339), tc.reset)
	}
	require.Equal(t, Lifetime, PeriodStart("", now))
	_, ok := NextReset("", now)
	require.False(t, ok)
	// A Sunday belongs to the week that started the Monday before.
	sunday := time.Date(2026, 11, 29, 23, 59, 0, 0, time.UTC)
	require.Equal(t, "2026-11-23T00:00:00Z", PeriodStart("weekly", sunday).Format(time.RFC3339))
	// December rolls over into the next year.
	dec := time.Date(2026, 12, 31, 12, 0, 0, 0, time.UTC)
	next, _ := NextReset("monthly", dec)
	require.Equal(t, "2027-01-01T00:00:00Z", next.Format(time.RFC3339))
}
