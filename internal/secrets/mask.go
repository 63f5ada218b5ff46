package secrets

// Mask returns a label for apiKey that is safe to show in API responses and
// logs, so a user can tell their stored credentials apart without the key
// being revealed. It never contains more than 7 characters of apiKey:
//
//   - 12 characters or more: the first 3 and the last 4, as in "sk-…abcd";
//   - 6 to 11 characters: "…" and the last 2, as in "…cd";
//   - 1 to 5 characters: just "…", as the last 2 would be too much of it;
//   - empty: "".
//
// Characters are counted in runes, so a multi-byte character is never split.
func Mask(apiKey string) string {
	r := []rune(apiKey)
	const ellipsis = "…"
	switch n := len(r); {
	case n == 0:
		return ""
	case n < 6:
		return ellipsis
	case n < 12:
		return ellipsis + string(r[n-2:])
	default:
		return string(r[:3]) + ellipsis + string(r[n-4:])
	}
}
