// Package safetext is the one sanitiser for text that reaches storage or
// logs: whatever a client, a header or an upstream sent, what comes out is
// valid UTF-8 without NUL, at most a given number of bytes, and cut on a
// character boundary.
//
// PostgreSQL rejects NUL in text and jsonb and invalid UTF-8 anywhere; one
// such value in a batch used to make the whole batch fail, for every tenant.
package safetext

import (
	"strings"
	"unicode/utf8"
)

// Clean returns s as valid UTF-8 (invalid bytes become U+FFFD), without NUL
// bytes, and at most max bytes long, cut before a character that would not
// fit. max <= 0 means no bound.
func Clean(s string, max int) string {
	if max > 0 && len(s) <= max && utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s // the common case: no allocation
	}
	var b strings.Builder
	for _, r := range s {
		if r == 0 {
			continue
		}
		n := utf8.RuneLen(r) // RuneError counts as its 3-byte replacement
		if max > 0 && b.Len()+n > max {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
