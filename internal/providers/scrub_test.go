package providers

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestScrub(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"a plain reason is kept", "Invalid value for 'temperature': must be between 0 and 2.",
			"Invalid value for 'temperature': must be between 0 and 2."},
		{"a key and the prompt after a marker", "Invalid key sk-live-abcdefghijklmnopqrstuvwxyz123456 for prompt: 'tell me the secret plan'",
			"Invalid key [redacted] for prompt: [removed]"},
		{"your input", "Could not parse your input: hello there", "Could not parse your input: [removed]"},
		{"an echoed JSON message", `bad message {"role":"user","content":"short secret"}`, `bad message {"role":"user","content": [removed]`},
		{"a field path is not an echo", "Invalid 'messages[0].content': string too long.", "Invalid 'messages[0].content': string too long."},
		{"a long quote", `Cannot answer "tell me the secret plan for the merger please do not leak" today`, "Cannot answer [removed] today"},
		{"a quote left open", "Rejected: «tell me the secret plan for the merger please do not le", "Rejected: [removed]"},
		{"an apostrophe opens no quote", "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
			"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens."},
		{"a short quote is kept", "Unsupported parameter: 'max_tokens'; use 'max_completion_tokens'.",
			"Unsupported parameter: 'max_tokens'; use 'max_completion_tokens'."},
		{"an Anthropic key", "key sk-ant-api03-AbC_dEf-123 is invalid", "key [redacted] is invalid"},
		{"a masked key keeps its sentence", "Incorrect API key provided: sk-proj-****abcd. See the docs.", "Incorrect API key provided: [redacted]. See the docs."},
		{"a Perpetuo key", "pk_0123456789abcdef is not ours", "[redacted] is not ours"},
		{"a Google key in a query", "fetch https://x.example/v1?alt=json&key=AIzaSyA1234567890abcdefghij failed", "fetch https://x.example/v1?alt=json&key=[redacted] failed"},
		{"a query value", "GET /v1/models?api_key=hunter2&x=1 refused", "GET /v1/models?api_key=[redacted]&x=1 refused"},
		{"a bearer token", "Authorization: Bearer abc.def.ghi was refused", "Authorization: [redacted] was refused"},
		{"a JWT", "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2ln has expired", "token [redacted] has expired"},
		{"a long hex run", "request 0123456789abcdef0123456789abcdef failed", "request [redacted] failed"},
		{"a long base64 run", "secret c2VjcmV0IHRoYXQgaXMgbG9uZyBlbm91Z2g9PQ== leaked", "secret [redacted] leaked"},
		{"a long path without digits is kept", "see https://docs.example.com/guides/error-codes/api-errors-and-more",
			"see https://docs.example.com/guides/error-codes/api-errors-and-more"},
		{"control characters and hidden marks", "line one\nline two\u202e\u200b\tend\x00", "line one line two end"},
		{"a zero-width space cannot hide a key", "sk-abcd\u200befgh1234", "[redacted]"},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, scrub(tc.in))
		})
	}
}

func TestScrubCaps(t *testing.T) {
	t.Parallel()
	got := scrub(strings.Repeat("é too hot ", 100))
	require.LessOrEqual(t, len(got), maxQuoted)
	require.True(t, utf8.ValidString(got))
	require.True(t, strings.HasSuffix(got, "…"), got)
	require.Equal(t, "short", scrub("short"))
}

func FuzzScrub(f *testing.F) {
	for _, s := range []string{
		"Invalid key sk-live-abcdefghijklmnopqrstuvwxyz123456 for prompt: 'x'",
		"'" + strings.Repeat("a", 50), "\xff\xfe sk-", "key=", strings.Repeat("日本", 200),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := scrub(s)
		require.True(t, utf8.ValidString(got))
		require.LessOrEqual(t, len(got), maxQuoted)
		require.NotContains(t, got, "\x00")
		require.NotContains(t, got, "\n")
	})
}
