package secrets

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestMask(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"a", "…"},
		{"abcde", "…"},
		{"abcdef", "…ef"},
		{"abcdefghijk", "…jk"},
		{"abcdefghijkl", "abc…ijkl"},
		{"sk-proj-0123456789abcd", "sk-…abcd"},
		{"sk-ant-api03-ZZZZZZZZZZZZZZZZZZZZwxyz", "sk-…wxyz"},
		{"AIzaSyD-0000000000000000000000000000000", "AIz…0000"},
		{"ключ-секрет-очень-длинный", "клю…нный"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got := Mask(tt.in)
			require.Equal(t, tt.want, got)
			require.True(t, utf8.ValidString(got))
		})
	}
}

func TestMaskRevealsAtMostSevenChars(t *testing.T) {
	t.Parallel()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for n := 0; n <= 200; n++ {
		key := strings.Repeat(alphabet, 4)[:n]
		got := Mask(key)
		revealed := utf8.RuneCountInString(strings.ReplaceAll(got, "…", ""))
		require.LessOrEqual(t, revealed, 7, "length %d: %q", n, got)
		require.Less(t, revealed, max(n, 1), "length %d reveals the whole key: %q", n, got)
		if n >= 12 {
			require.NotContains(t, got, key)
			require.Equal(t, key[:3]+"…"+key[n-4:], got)
			// No 8 consecutive characters of the key appear.
			for i := 0; i+8 <= n; i++ {
				require.NotContains(t, got, key[i:i+8])
			}
		}
	}
}
