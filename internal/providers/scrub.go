package providers

import (
	"regexp"
	"strings"
	"unicode"

	"github.com/perpetuo/perpetuo/internal/safetext"
)

// maxQuoted bounds the part of an upstream's message that reaches the
// client, in bytes; maxScanned bounds what scrub reads of it (far enough
// past maxQuoted that a quote or a secret crossing the cut is still seen
// whole, or as left open).
const (
	maxQuoted  = 200
	maxScanned = 1024
)

// Placeholders left where scrub removed something, so the reader sees that
// text was there.
const (
	redacted = "[redacted]"
	removed  = "[removed]"
)

var (
	// echoMarker introduces text the upstream copied from the request:
	// "for prompt: ...", "your input: ...", `"content": "..."`. Everything
	// after it is dropped: it is the client's own text, which clients log.
	// A marker word inside a field path ('messages[0].content': ...) names
	// a field, not an echo, and is kept.
	echoMarker = regexp.MustCompile(`(?i)(?:^|[\s"'({\[,;])(?:your input|user input|input|prompts?|messages?|content|text|query|you sent|received|request body)["']?\s*[:=]`)
	// longQuote is quoted text over 40 characters: a sentence of the
	// prompt, rarely a name the client needs to see. A quote opens only
	// after a non-letter, so the apostrophe in "model's" opens nothing; one
	// left open to the end counts too (the upstream cut its own message).
	longQuote = regexp.MustCompile(`(^|[^\p{L}\p{N}])(?:'[^']{41,}(?:'|$)|"[^"]{41,}(?:"|$)|` + "`[^`]{41,}(?:`|$)" +
		`|“[^”]{41,}(?:”|$)|‘[^’]{41,}(?:’|$)|«[^»]{41,}(?:»|$))`)
	// secretShapes are credentials by their well-known shapes: OpenAI and
	// Anthropic (sk-, sk-ant-), Stripe-like and Perpetuo keys (sk_, pk_,
	// rk_), Groq (gsk_), Google (AIza), AWS (AKIA), GitHub (ghp_ ...),
	// Slack (xox.-), JWTs (eyJ...), and bearer tokens.
	secretShapes = regexp.MustCompile(`\b(?:sk|pk|rk|gsk)[-_][A-Za-z0-9_*.\-]{5,}[A-Za-z0-9_*\-]|\bAIza[A-Za-z0-9_\-]{10,}|\bAKIA[A-Z0-9]{12,}|` +
		`\bgh[pousr]_[A-Za-z0-9]{10,}|\bxox[abprs]-[A-Za-z0-9\-]{6,}|\beyJ[A-Za-z0-9_\-]{6,}(?:\.[A-Za-z0-9_\-]*){0,2}|(?i:\bbearer\s+)\S+`)
	// secretValue is a value assigned to a secret-sounding name, in a URL
	// query (key=..., api_key=...) or as "token: ...". A value already
	// redacted ("[") is left alone.
	secretValue = regexp.MustCompile(`(?i)\b(api[_-]?key|apikey|key|access[_-]?token|token|secret|password|passwd|signature|sig|authorization)(["']?\s*[:=]\s*["']?)[^\s&'",;)}\][]+`)
	// longRun is a run of base64, base64url or hex characters; a run of 32
	// or more that mixes letters and digits is taken for a secret (words,
	// paths and most model ids lack digits or are shorter).
	longRun = regexp.MustCompile(`[A-Za-z0-9+/=_\-]{32,}`)
	spaces  = regexp.MustCompile(`\s+`)
)

// scrub makes an upstream's error message fit for the client: invisible
// format characters dropped and control characters made spaces, prompt
// echoes dropped (everything after an echoMarker, quoted text over 40
// characters), anything shaped like a credential replaced, runs of white
// space reduced to one space, and the result
// capped at maxQuoted bytes on a character boundary. It errs on the side of
// removing too much: the client needs the reason, not its wording.
func scrub(msg string) string {
	msg = strings.Map(func(r rune) rune {
		switch {
		case unicode.In(r, unicode.Cf):
			return -1 // zero-width and direction marks: they could hide a key's shape
		case unicode.IsControl(r):
			return ' '
		}
		return r
	}, safetext.Clean(msg, maxScanned))
	if loc := echoMarker.FindStringIndex(msg); loc != nil {
		msg = msg[:loc[1]] + " " + removed
	}
	msg = longQuote.ReplaceAllString(msg, "${1}"+removed)
	msg = secretShapes.ReplaceAllString(msg, redacted)
	msg = secretValue.ReplaceAllString(msg, "${1}${2}"+redacted)
	msg = longRun.ReplaceAllStringFunc(msg, func(run string) string {
		if strings.IndexFunc(run, unicode.IsDigit) >= 0 && strings.IndexFunc(run, unicode.IsLetter) >= 0 {
			return redacted
		}
		return run
	})
	msg = strings.TrimSpace(spaces.ReplaceAllString(msg, " "))
	return capped(msg)
}

// capped returns msg at most maxQuoted bytes long, marking a cut with an
// ellipsis.
func capped(msg string) string {
	if len(msg) <= maxQuoted {
		return msg
	}
	return strings.TrimSpace(safetext.Clean(msg, maxQuoted-len("…"))) + "…"
}
