package analytics

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/attribution"
	"github.com/perpetuo/perpetuo/internal/records"
)

func TestBucketsBoundTheirValues(t *testing.T) {
	for ms := int64(0); ms < 2_000_000; ms = ms*5/4 + 1 {
		b := Bucket(ms)
		if b < Buckets-1 {
			require.GreaterOrEqual(t, UpperBound(b), float64(ms)*0.9999, "ms %d in bucket %d", ms, b)
		}
		if b > 0 && b < Buckets-1 {
			require.Less(t, UpperBound(b-1), float64(ms), "ms %d: the bucket below would hold it", ms)
		}
	}
	require.Equal(t, Buckets-1, Bucket(1<<40), "the last bucket holds everything above")
}

func TestPercentiles(t *testing.T) {
	h := make([]int64, Buckets)
	for _, ms := range []int64{10, 10, 10, 10, 10, 10, 10, 10, 10, 1000} {
		h[Bucket(ms)]++
	}
	p50, p95 := Percentile(h, 0.5), Percentile(h, 0.95)
	require.InDelta(t, 10, p50, 10*0.19+0.1, "within one bucket (19%%) above")
	require.GreaterOrEqual(t, p50, 10.0)
	require.GreaterOrEqual(t, p95, 1000.0)
	require.LessOrEqual(t, p95, 1000*1.19)
	require.Zero(t, Percentile(make([]int64, Buckets), 0.5))
}

func TestRollupSumsPerHourAndDimensions(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 59, 59, 0, time.UTC)
	g := func(app, model string, created time.Time, cost string, status int, byok bool, guardrails ...string) records.Generation {
		return records.Generation{WorkspaceID: "ws", KeyID: "k", MemberID: "m", App: attribution.App{ID: app}, Model: model,
			RequestedModel: model, Provider: "p", Status: status, PromptTokens: 3, CompletionTokens: 5, Cost: decimal.RequireFromString(cost),
			BYOK: byok, Latency: 40 * time.Millisecond, TTFT: 8 * time.Millisecond, CreatedAt: created, Guardrails: guardrails}
	}
	rows, grows := Rollup([]records.Generation{
		g("a", "m1", at, "0.1", 200, false, "gr1"),
		g("a", "m1", at.Add(-time.Hour), "0.2", 200, true, "gr1", "gr2"),
		g("a", "m1", at.Add(time.Second), "0.4", 502, false), // the next hour
		g("b", "m1", at, "0.8", 200, false),
		g("a", "m1", at, "1.6", 200, false),
	})
	require.Len(t, rows, 4)
	first := rows[0]
	require.Equal(t, at.Add(-time.Hour).Truncate(time.Hour), first.Hour)
	require.True(t, first.BYOKCost.Equal(decimal.RequireFromString("0.2")))
	require.True(t, first.Cost.IsZero())
	ten := rows[1]
	require.Equal(t, "a", ten.App)
	require.Equal(t, int64(2), ten.Requests)
	require.True(t, ten.Cost.Equal(decimal.RequireFromString("1.7")), "%s", ten.Cost)
	require.Equal(t, int64(2), ten.Latency[Bucket(40)])
	require.Equal(t, int64(2), ten.TTFT[Bucket(8)])
	require.Equal(t, "b", rows[2].App)
	eleven := rows[3]
	require.Equal(t, time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC), eleven.Hour, "a second later is the next UTC hour")
	require.Equal(t, int64(1), eleven.Errors)
	require.Len(t, grows, 3, "gr1 in two hours, gr2 in one")
}

func TestBucketStartsAtUTCBoundaries(t *testing.T) {
	h := time.Date(2026, 12, 2, 23, 0, 0, 0, time.UTC) // a Wednesday
	require.Equal(t, h, bucketStart(h, "hour"))
	require.Equal(t, time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), bucketStart(h, "day"))
	require.Equal(t, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), bucketStart(h, "week"), "weeks start on Monday")
	require.Equal(t, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), bucketStart(h, "month"))
	sunday := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	require.Equal(t, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), bucketStart(sunday, "week"))
	plus := time.Date(2026, 12, 2, 23, 30, 0, 0, time.FixedZone("x", 3600)) // 22:30 UTC
	require.Equal(t, time.Date(2026, 12, 2, 22, 0, 0, 0, time.UTC), bucketStart(plus, "hour"))
}
