// Package attribution turns what an app says about itself in request
// headers (OpenRouter's HTTP-Referer, X-Title, X-OpenRouter-Categories, and
// X-Client-Name / X-Client-Version) into the bounded, sanitised fields a
// generation record keeps, and an app id to group analytics by.
package attribution

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/perpetuo/perpetuo/internal/safetext"
)

// Bounds, in bytes, of what is kept of each header (cut on a character
// boundary).
const (
	MaxID            = 128
	MaxTitle         = 128
	MaxReferer       = 512
	MaxClientName    = 64
	MaxClientVersion = 32
	MaxCategory      = 32
	MaxCategories    = 8
)

// App is who made a request, as its headers say. The zero App is
// unattributed traffic.
type App struct {
	// ID groups analytics: the referer's host (without "www." and port),
	// else the normalised client name; "" when neither is sent.
	ID string
	// Title is X-Title (or X-OpenRouter-Title).
	Title string
	// Referer is HTTP-Referer (or Referer) without user info, query
	// string or fragment, which may carry tokens or personal data.
	Referer string
	// Categories are X-OpenRouter-Categories' entries, normalised.
	Categories    []string
	ClientName    string
	ClientVersion string
}

// FromHeaders reads h.
func FromHeaders(h http.Header) App {
	a := App{
		Title:         safetext.Clean(strings.TrimSpace(first(h, "X-Title", "X-OpenRouter-Title")), MaxTitle),
		ClientName:    safetext.Clean(strings.TrimSpace(h.Get("X-Client-Name")), MaxClientName),
		ClientVersion: safetext.Clean(strings.TrimSpace(h.Get("X-Client-Version")), MaxClientVersion),
		Categories:    categories(h.Get("X-OpenRouter-Categories")),
	}
	var host string
	a.Referer, host = referer(first(h, "HTTP-Referer", "Referer"))
	switch {
	case host != "":
		a.ID = host
	case a.ClientName != "":
		a.ID = slug(a.ClientName)
	}
	return a
}

// Sanitized returns a with every field cleaned and bounded again (records
// may come from elsewhere than FromHeaders).
func (a App) Sanitized() App {
	a.ID = safetext.Clean(a.ID, MaxID)
	a.Title = safetext.Clean(a.Title, MaxTitle)
	a.Referer = safetext.Clean(a.Referer, MaxReferer)
	a.ClientName = safetext.Clean(a.ClientName, MaxClientName)
	a.ClientVersion = safetext.Clean(a.ClientVersion, MaxClientVersion)
	if len(a.Categories) > 0 {
		a.Categories = categories(strings.Join(a.Categories, ","))
	}
	return a
}

func first(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// referer returns the referer to keep and its host. A value that is not
// an absolute http(s) URL is kept cleaned (without a query or fragment) but
// names no app.
func referer(raw string) (kept, host string) {
	raw = strings.TrimSpace(raw)
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	if raw == "" {
		return "", ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return safetext.Clean(raw, MaxReferer), ""
	}
	u.User = nil
	host = strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
	return safetext.Clean(u.String(), MaxReferer), safetext.Clean(host, MaxID)
}

// slug is a client name as an app id: lower case, runs of anything but
// letters, digits, '.', '_' and '-' as one '-'.
func slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		switch {
		case ok:
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	return safetext.Clean(strings.TrimRight(b.String(), "-"), MaxID)
}

// categories parses a comma-separated list: each entry lower-cased, kept
// to letters, digits, '-' and '_', bounded; duplicates and empties dropped,
// at most MaxCategories.
func categories(v string) []string {
	var out []string
	for _, c := range strings.Split(v, ",") {
		c = strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
				return r
			case r >= 'A' && r <= 'Z':
				return r + ('a' - 'A')
			}
			return -1
		}, strings.TrimSpace(c))
		if len(c) > MaxCategory {
			c = c[:MaxCategory]
		}
		if c != "" && !slices.Contains(out, c) && len(out) < MaxCategories {
			out = append(out, c)
		}
	}
	return out
}
