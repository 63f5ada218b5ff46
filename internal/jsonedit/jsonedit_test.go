package jsonedit_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/jsonedit"
)

func TestObject(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		doc   string
		edits []jsonedit.Edit
		want  string
	}{
		{"no edits copies", ` {"a": 1} `, nil, ` {"a": 1} `},
		{"replace", `{"a":1,"b":2}`, []jsonedit.Edit{jsonedit.Int("b", 3)}, `{"a":1,"b":3}`},
		{"replace keeps whitespace and order", "{ \"a\" : 1 ,\n \"b\" : 2 }", []jsonedit.Edit{jsonedit.String("a", "x")},
			"{ \"a\" : \"x\" ,\n \"b\" : 2 }"},
		{"replace an object value", `{"a":{"b":[1,2]},"c":3}`, []jsonedit.Edit{jsonedit.Raw("a", []byte(`{"x":true}`))},
			`{"a":{"x":true},"c":3}`},
		{"append", `{"a":1}`, []jsonedit.Edit{jsonedit.Int("b", 2)}, `{"a":1,"b":2}`},
		{"append in edit order", `{"a":1}`, []jsonedit.Edit{jsonedit.Bool("c", true), jsonedit.Bool("b", false)},
			`{"a":1,"c":true,"b":false}`},
		{"append before trailing whitespace", "{\n  \"a\": 1\n}\n", []jsonedit.Edit{jsonedit.Int("b", 2)},
			"{\n  \"a\": 1,\"b\":2\n}\n"},
		{"append to empty", `{}`, []jsonedit.Edit{jsonedit.Int("b", 2), jsonedit.Int("c", -3)}, `{"b":2,"c":-3}`},
		{"append to empty with whitespace", `{ }`, []jsonedit.Edit{jsonedit.Int("b", 2)}, `{"b":2 }`},
		{"delete from empty", `{ }`, []jsonedit.Edit{jsonedit.Delete("b")}, `{ }`},
		{"delete missing", `{"a":1}`, []jsonedit.Edit{jsonedit.Delete("b")}, `{"a":1}`},
		{"delete first", `{"a":1,"b":2,"c":3}`, []jsonedit.Edit{jsonedit.Delete("a")}, `{"b":2,"c":3}`},
		{"delete middle", `{"a":1,"b":2,"c":3}`, []jsonedit.Edit{jsonedit.Delete("b")}, `{"a":1,"c":3}`},
		{"delete last", `{"a":1,"b":2,"c":3}`, []jsonedit.Edit{jsonedit.Delete("c")}, `{"a":1,"b":2}`},
		{"delete only", `{"a":1}`, []jsonedit.Edit{jsonedit.Delete("a")}, `{}`},
		{"delete first two", `{"a":1,"b":2,"c":3}`, []jsonedit.Edit{jsonedit.Delete("a"), jsonedit.Delete("b")}, `{"c":3}`},
		{"delete last two", `{"a":1,"b":2,"c":3}`, []jsonedit.Edit{jsonedit.Delete("c"), jsonedit.Delete("b")}, `{"a":1}`},
		{"delete all", `{"a":1,"b":2}`, []jsonedit.Edit{jsonedit.Delete("a"), jsonedit.Delete("b")}, `{}`},
		{"delete spaced first", `{ "a" : 1 , "b" : 2 , "c" : 3 }`, []jsonedit.Edit{jsonedit.Delete("a")}, `{ "b" : 2 , "c" : 3 }`},
		{"delete spaced middle", `{ "a" : 1 , "b" : 2 , "c" : 3 }`, []jsonedit.Edit{jsonedit.Delete("b")}, `{ "a" : 1 , "c" : 3 }`},
		{"delete spaced last", `{ "a" : 1 , "b" : 2 , "c" : 3 }`, []jsonedit.Edit{jsonedit.Delete("c")}, `{ "a" : 1 , "b" : 2 }`},
		{"delete spaced only", `{ "a" : 1 }`, []jsonedit.Edit{jsonedit.Delete("a")}, `{ }`},
		{"delete pretty first", "{\n  \"a\": 1,\n  \"b\": [\n    2\n  ]\n}\n", []jsonedit.Edit{jsonedit.Delete("a")},
			"{\n  \"b\": [\n    2\n  ]\n}\n"},
		{"delete pretty last", "{\n  \"a\": 1,\n  \"b\": [\n    2\n  ]\n}\n", []jsonedit.Edit{jsonedit.Delete("b")},
			"{\n  \"a\": 1\n}\n"},
		{"delete all then append", `{ "a" : 1 }`, []jsonedit.Edit{jsonedit.Delete("a"), jsonedit.Int("b", 2)}, `{"b":2 }`},
		{"delete and replace and append", `{"x":0,"model":"a","y":[],"stream":true,"z":{}}`,
			[]jsonedit.Edit{jsonedit.Delete("x"), jsonedit.Delete("y"), jsonedit.Delete("z"), jsonedit.String("model", "b"),
				jsonedit.Bool("stream", false), jsonedit.Raw("stream_options", []byte(`{"include_usage":true}`))},
			`{"model":"b","stream":false,"stream_options":{"include_usage":true}}`},
		{"default kept when present", `{"a":1,"b":"x"}`, []jsonedit.Edit{jsonedit.Default("b", []byte("null"))}, `{"a":1,"b":"x"}`},
		{"default kept when present as null", `{"b":null}`, []jsonedit.Edit{jsonedit.Default("b", []byte(`"y"`))}, `{"b":null}`},
		{"default added when missing", `{"a":1}`, []jsonedit.Edit{jsonedit.Default("b", []byte("null")), jsonedit.Int("c", 2)},
			`{"a":1,"b":null,"c":2}`},
		{"duplicates all replaced", `{"a":1,"b":2,"a":3}`, []jsonedit.Edit{jsonedit.Int("a", 9)}, `{"a":9,"b":2,"a":9}`},
		{"duplicates all deleted", `{"a":1,"b":2,"a":3}`, []jsonedit.Edit{jsonedit.Delete("a")}, `{"b":2}`},
		{"duplicates all deleted, leading", `{"a":1,"a":3,"b":2}`, []jsonedit.Edit{jsonedit.Delete("a")}, `{"b":2}`},
		{"escaped key replaced", `{"mod\u0065l":"x","m":1}`, []jsonedit.Edit{jsonedit.String("model", "y")},
			`{"mod\u0065l":"y","m":1}`},
		{"escaped key deleted", `{"m":1,"mod\u0065l":"x"}`, []jsonedit.Edit{jsonedit.Delete("model")}, `{"m":1}`},
		{"escaped and plain duplicates", `{"model":1,"mod\u0065l":2}`, []jsonedit.Edit{jsonedit.Int("model", 3)},
			`{"model":3,"mod\u0065l":3}`},
		{"unicode key", `{"é":1}`, []jsonedit.Edit{jsonedit.Int("é", 2), jsonedit.Int("\u00e9x", 3)}, `{"é":2,"éx":3}`},
		{"appended key escaped", `{}`, []jsonedit.Edit{jsonedit.Int("a\"b<\n", 1)}, `{"a\"b\u003c\n":1}`},
		{"nested members untouched", `{"a":{"model":1},"b":[{"model":2}],"c":"model"}`, []jsonedit.Edit{jsonedit.String("model", "x")},
			`{"a":{"model":1},"b":[{"model":2}],"c":"model","model":"x"}`},
		{"nested members not deleted", `{"a":{"model":1},"model":2}`, []jsonedit.Edit{jsonedit.Delete("model")}, `{"a":{"model":1}}`},
		{"strings with braces and escapes skipped", `{"a":"}\",{","b":"\\"}`, []jsonedit.Edit{jsonedit.Int("b", 1)},
			`{"a":"}\",{","b":1}`},
		{"later edit wins: set after delete stays in place", `{"a":1,"b":2}`,
			[]jsonedit.Edit{jsonedit.Delete("a"), jsonedit.Int("a", 3)}, `{"a":3,"b":2}`},
		{"later edit wins: delete after set", `{"b":2}`, []jsonedit.Edit{jsonedit.Int("a", 3), jsonedit.Delete("a")}, `{"b":2}`},
		{"later edit wins: set after set", `{}`, []jsonedit.Edit{jsonedit.Int("a", 3), jsonedit.Int("a", 4)}, `{"a":4}`},
		{"alias present", `{"max_tokens":5}`, []jsonedit.Edit{jsonedit.Int("max_completion_tokens", 9).Or("max_tokens")},
			`{"max_tokens":9}`},
		{"both names present", `{"max_tokens":5,"max_completion_tokens":6}`,
			[]jsonedit.Edit{jsonedit.Int("max_completion_tokens", 9).Or("max_tokens")}, `{"max_tokens":9,"max_completion_tokens":9}`},
		{"no name present", `{"n":1}`, []jsonedit.Edit{jsonedit.Int("max_completion_tokens", 9).Or("max_tokens")},
			`{"n":1,"max_completion_tokens":9}`},
		{"whitespace around the object kept", " \t{\"a\":1}\r\n ", []jsonedit.Edit{jsonedit.Int("a", 2)}, " \t{\"a\":2}\r\n "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := jsonedit.Object([]byte(tc.doc), tc.edits...)
			require.NoError(t, err)
			require.Equal(t, tc.want, string(got))
			require.Equal(t, len(got), cap(got), "the result is allocated at its size")
			require.True(t, json.Valid(got))
		})
	}
}

func TestObjectRefuses(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		``, `   `, `[]`, `"x"`, `1`, `null`, `true`, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,"a":1}`, `{"a":1}x`,
		`{"a":1}{}`, `{a:1}`, `{'a':1}`, `{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":1e}`, `{"a":[1,]}`, `{"a":[1}`,
		`{"a":{"b":1]}`, "{\"a\":\"\x01\"}", `{"a":"\q"}`, `{"a":"\u12g4"}`, `{"a":"x}`, `{"a":tru}`, `{"a":nul}`,
		`{"a":1 "b":2}`, `{"a" 1}`, "{\"a\":1}\x00",
	} {
		t.Run(doc, func(t *testing.T) {
			t.Parallel()
			_, err := jsonedit.Object([]byte(doc), jsonedit.Int("a", 1))
			require.ErrorIs(t, err, jsonedit.ErrNotObject)
		})
	}
}

func TestObjectRefusesInvalidValue(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"", " ", "{", `{"a":}`, "1 2", "nul", `"x`} {
		_, err := jsonedit.Object([]byte(`{}`), jsonedit.Raw("a", []byte(v)))
		require.ErrorIs(t, err, jsonedit.ErrInvalidValue, v)
	}
}

// TestObjectDepth checks the nesting limit is encoding/json's.
func TestObjectDepth(t *testing.T) {
	t.Parallel()
	nested := func(n int) []byte { // an object holding arrays n levels deep in all
		return []byte(`{"a":` + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + `}`)
	}
	require.True(t, json.Valid(nested(10000)))
	_, err := jsonedit.Object(nested(10000), jsonedit.Int("b", 1))
	require.NoError(t, err)
	require.False(t, json.Valid(nested(10001)))
	_, err = jsonedit.Object(nested(10001), jsonedit.Int("b", 1))
	require.ErrorIs(t, err, jsonedit.ErrNotObject)
}

func TestStringEscapesAsMarshal(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", "quote\" back\\ slash/", "<script>&</script>", "\b\f\n\r\t\x00\x1f\x7f",
		"é ü 日本 🎉", "\u2028\u2029", "bad \xff utf-8 \xc3", "\ufffd"} {
		got, err := jsonedit.Object([]byte(`{}`), jsonedit.String(s, s))
		require.NoError(t, err)
		want, err := json.Marshal(map[string]string{s: s})
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
		require.Equal(t, len(got), cap(got))
	}
}

// TestMembersAreWhatGjsonSees: Members passes each top-level member's
// decoded key and raw value, in order, as gjson's ForEach does (repeated
// and escaped keys, nested members of the same name, every kind of value),
// stops when told, and refuses what is not one object.
func TestMembersAreWhatGjsonSees(t *testing.T) {
	for _, doc := range []string{
		`{"model":"a/b","models":["c/d", "e/f"],"messages":[{"model":"nested"}],"n":null,"t":true,"x":-1.5e3}`,
		` { "model" : "a" , "model":"again", "\u006dodels":[] , "s":"caf\u00e9 \"q\""} `,
		`{}`,
	} {
		type kv struct{ k, v string }
		var want, got []kv
		gjson.Parse(doc).ForEach(func(k, v gjson.Result) bool {
			want = append(want, kv{k.Str, v.Raw})
			return true
		})
		require.NoError(t, jsonedit.Members([]byte(doc), func(k, v []byte) bool {
			got = append(got, kv{string(k), string(v)})
			return true
		}))
		require.Equal(t, want, got, doc)
	}
	n := 0
	require.NoError(t, jsonedit.Members([]byte(`{"a":1,"b":2,"c":3}`), func(k, v []byte) bool { n++; return n < 2 }))
	require.Equal(t, 2, n, "stops when fn says so")
	for _, bad := range []string{`[1]`, `{"a":1,}`, `{"a":1} x`, `{"a":`, ``} {
		require.ErrorIs(t, jsonedit.Members([]byte(bad), func(k, v []byte) bool { return true }), jsonedit.ErrNotObject, bad)
	}
}
