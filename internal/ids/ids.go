// Package ids makes Perpetuo's prefixed identifiers: a prefix ("ws_", "mem_",
// "key_", "gen-") followed by 26 Crockford base32 characters, the first ten of
// which encode the creation time in milliseconds. Time-ordered ids keep
// b-tree inserts local and let a reader tell how recent an id is.
package ids

import (
	"crypto/rand"
	"strings"
	"time"
)

const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// Prefixes of the identifiers Perpetuo issues.
const (
	Workspace  = "ws_"
	Member     = "mem_"
	Key        = "key_"
	Generation = "gen-"
	Credential = "cred_"
	Replica    = "rep_"
	Guardrail  = "gr_"
)

// New returns prefix + a time-ordered random id created at now.
func New(prefix string, now time.Time) string {
	var b [26]byte
	ms := uint64(now.UnixMilli())
	for i := 9; i >= 0; i-- {
		b[i] = alphabet[ms&31]
		ms >>= 5
	}
	var r [16]byte
	_, _ = rand.Read(r[:]) // crypto/rand never fails on supported platforms
	for i := 10; i < 26; i++ {
		b[i] = alphabet[r[i-10]&31]
	}
	return prefix + string(b[:])
}

// Time returns when an id made by New was created, and false when id does not
// have that form.
func Time(prefix, id string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || len(rest) != 26 {
		return time.Time{}, false
	}
	var ms uint64
	for i := 0; i < len(rest); i++ {
		v := strings.IndexByte(alphabet, rest[i])
		if v < 0 {
			return time.Time{}, false
		}
		if i < 10 {
			ms = ms<<5 | uint64(v)
		}
	}
	return time.UnixMilli(int64(ms)).UTC(), true
}

// Floor is the smallest id New could make with prefix at t: every id made
// before t sorts below it.
func Floor(prefix string, t time.Time) string {
	id := New(prefix, t)
	return id[:len(prefix)+10] + strings.Repeat("0", 16)
}
