package attribution

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestFromHeaders(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.Header
		want App
	}{
		{"nothing: unattributed", headers(), App{}},
		{"referer host names the app, query and fragment dropped",
			headers("HTTP-Referer", "https://www.Example.com:8443/chat?token=secret#frag", "X-Title", "Example Chat"),
			App{ID: "example.com", Title: "Example Chat", Referer: "https://www.Example.com:8443/chat"}},
		{"user info dropped from the referer", headers("Referer", "https://bob:pw@app.example.org/x"),
			App{ID: "app.example.org", Referer: "https://app.example.org/x"}},
		{"OpenRouter's title header", headers("X-OpenRouter-Title", "Agent"), App{Title: "Agent"}},
		{"client name when there is no referer", headers("X-Client-Name", "My CLI  Tool!", "X-Client-Version", "1.2.3"),
			App{ID: "my-cli-tool", ClientName: "My CLI  Tool!", ClientVersion: "1.2.3"}},
		{"a referer that is not a URL names no app", headers("HTTP-Referer", "not a url?x=1", "X-Client-Name", "cli"),
			App{ID: "cli", Referer: "not a url", ClientName: "cli"}},
		{"categories normalised", headers("X-OpenRouter-Categories", " Coding, cli-agent,coding,,Role Play!,"),
			App{Categories: []string{"coding", "cli-agent", "roleplay"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := FromHeaders(tc.h)
			if len(tc.want.Categories) == 0 {
				require.Empty(t, got.Categories)
				got.Categories = nil
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestEverythingIsBoundedAndValidUTF8(t *testing.T) {
	long := strings.Repeat("é", 600) + "\xff\x00"
	a := FromHeaders(headers("HTTP-Referer", "https://"+strings.Repeat("a", 300)+".com/"+long, "X-Title", long,
		"X-Client-Name", long, "X-Client-Version", long,
		"X-OpenRouter-Categories", strings.Repeat("x", 100)+","+strings.Repeat("a,b,c,d,e,f,g,h,i,j,", 3)))
	for _, f := range []struct {
		v   string
		max int
	}{{a.ID, MaxID}, {a.Title, MaxTitle}, {a.Referer, MaxReferer}, {a.ClientName, MaxClientName}, {a.ClientVersion, MaxClientVersion}} {
		require.LessOrEqual(t, len(f.v), f.max)
		require.True(t, utf8.ValidString(f.v), "%q", f.v)
		require.NotContains(t, f.v, "\x00")
	}
	require.Len(t, a.Categories, MaxCategories)
	require.Len(t, a.Categories[0], MaxCategory)
	require.Equal(t, a, a.Sanitized(), "sanitising again changes nothing")
}
