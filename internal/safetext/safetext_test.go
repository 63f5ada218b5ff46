package safetext

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestClean(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		max            int
	}{
		{"plain text is kept", "hello", "hello", 10},
		{"NUL is removed", "a\x00b", "ab", 10},
		{"invalid bytes become U+FFFD", "a\xffb", "a\uFFFDb", 10},
		{"cut to the bound", "abcdef", "abc", 3},
		{"a character is never split", "ab€", "ab", 4}, // € is 3 bytes
		{"a whole character fits exactly", "ab€", "ab€", 5},
		{"a half character at the end is replaced, then bounded", "ab\xe2\x82", "ab", 4},
		{"no bound", strings.Repeat("x", 1000), strings.Repeat("x", 1000), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Clean(tc.in, tc.max)
			require.Equal(t, tc.want, got)
			require.True(t, utf8.ValidString(got))
		})
	}
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"", "a\x00", "\xff\xfe", "€€€", "日本語テキスト"} {
		f.Add(s, 7)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		max = max%300 + 1
		if max <= 0 {
			max += 300
		}
		got := Clean(s, max)
		require.True(t, utf8.ValidString(got))
		require.NotContains(t, got, "\x00")
		require.LessOrEqual(t, len(got), max)
		if utf8.ValidString(s) && !strings.Contains(s, "\x00") {
			require.True(t, strings.HasPrefix(s, got), "valid text is only ever cut, never changed")
		}
	})
}
