package providers

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// usageByLookups is ParseUsage as it was written before its single pass:
// one gjson lookup per field. It is the reference the pass must agree with.
func usageByLookups(u gjson.Result) (Usage, bool) {
	if !u.IsObject() {
		return Usage{}, false
	}
	cached := u.Get("prompt_tokens_details.cached_tokens")
	if !cached.Exists() {
		cached = u.Get("prompt_cache_hit_tokens")
	}
	return Usage{
		PromptTokens:     int(u.Get("prompt_tokens").Int()),
		CompletionTokens: int(u.Get("completion_tokens").Int()),
		ReasoningTokens:  int(u.Get("completion_tokens_details.reasoning_tokens").Int()),
		CachedTokens:     int(cached.Int()),
		CacheWriteTokens: int(u.Get("prompt_tokens_details.cache_write_tokens").Int()),
	}, true
}

// FuzzParseUsageAgreesWithLookups: on any JSON document, the single pass
// reads what the per-field lookups read, duplicates and odd types included.
func FuzzParseUsageAgreesWithLookups(f *testing.F) {
	for _, s := range []string{
		`{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}`,
		`{"prompt_tokens":10,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":4,"cache_write_tokens":2},"completion_tokens_details":{"reasoning_tokens":3}}`,
		`{"prompt_tokens":10,"prompt_cache_hit_tokens":7,"prompt_tokens_details":{"cache_write_tokens":2}}`,
		`{"prompt_tokens":1,"prompt_tokens":2,"prompt_tokens_details":{"x":1},"prompt_tokens_details":{"cached_tokens":9}}`,
		`{"prompt_tokens":"12","completion_tokens":true,"completion_tokens_details":[{"reasoning_tokens":1}],"prompt_tokens_details":null}`,
		`{"prompt_tokens":1.9e3,"completion_tokens":-4,"prompt_cache_hit_tokens":{"a":1}}`,
		`[1,2]`, `null`, `{}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		if !gjson.Valid(doc) {
			return
		}
		u := gjson.Parse(doc)
		want, wantOK := usageByLookups(u)
		got, ok := ParseUsage(u)
		require.Equal(t, wantOK, ok, doc)
		require.Equal(t, want, got, doc)
	})
}
