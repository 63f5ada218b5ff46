package routing

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzDecisionJSONIsJSONMarshal: the hand-written encoding is
// json.Marshal's, byte for byte, for any strings (escapes, HTML
// characters, invalid UTF-8) and any score (exponents, zero, negatives),
// and fails where json.Marshal fails.
func FuzzDecisionJSONIsJSONMarshal(f *testing.F) {
	f.Add("balanced", "draw", "<&>\u2028", "p\x00\xff", 0.5, 1e-7, 3, true)
	f.Add("cheapest", "expected_cost_usd", "", "", 0.0, 1e21, 0, false)
	f.Add("fastest", "ttft_ms", "price", "zdr", -2.5e-300, 123456789.125, 7, true)
	f.Add("x", "y", "\"\\\n\t\b\f\r", "é", math.Inf(1), 1.0, 1, false)
	f.Fuzz(func(t *testing.T, strategy, key, s1, s2 string, score1, score2 float64, n int, flag bool) {
		for _, d := range []Decision{
			{Strategy: strategy, Key: key},
			{Strategy: strategy, Key: key, Sort: s1, Partition: s2, Order: []string{s1, s2}, Fallbacks: flag,
				PromptTokens: n, MaxOutput: -n, Session: flag, ZDRRequiredBy: []string{s2},
				Candidates: []Scored{
					{Model: s1, Provider: s2, Score: score1, Rank: n},
					{Model: key, Provider: strategy, ExcludedBy: s1, Dropped: []string{s2, s1}, Score: score2},
				}},
			{Strategy: strategy, Key: key, Candidates: []Scored{}, Order: []string{}},
		} {
			want, err := json.Marshal(d)
			got, ok := d.AppendJSON(nil)
			if err != nil {
				require.False(t, ok, "json.Marshal failed (%v) where AppendJSON did not", err)
				continue
			}
			require.True(t, ok)
			require.Equal(t, string(want), string(got))
		}
	})
}
