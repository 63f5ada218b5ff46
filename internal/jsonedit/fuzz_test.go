package jsonedit_test

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/jsonedit"
)

// FuzzObject checks Object against encoding/json: it accepts exactly the
// valid JSON objects, its result is valid JSON allocated at its size, and
// decoded into a map it equals the input decoded and then edited in the map.
// ops holds two bits per key of {key, "model", "a", ""}: none, delete, set a
// string, set a number or a raw object.
func FuzzObject(f *testing.F) {
	for _, seed := range []struct {
		doc, key, str string
		ops           uint8
		n             int
	}{
		{`{}`, "b", "x", 0b10_01_10_11, 1},
		{`{"model":"a","a":1,"":null}`, "k", "new", 0b01_10_01_10, 2},
		{` { "a" : [1,{"model":2}] , "model" : "x" } `, "a", "<&>", 0b11_10_11_01, -3},
		{"{\n\t\"a\": null,\n\t\"b\": {}\n}\n", "b", "\u2028", 0b00_01_11_01, 4},
		{`{"mod\u0065l":1,"model":2,"a":3,"a":4}`, "model", "y", 0b00_00_01_10, 5},
		{`{"\ud800":1,"\ufffd":2}`, "\ufffd", "z", 0b00_00_00_10, 6},
		{"{\"a\xff\":1}", "a\ufffd", "\xff", 0b00_00_00_11, 7},
		{`{"a":1,"a":2}`, "", "", 0, 0},
		{`[1]`, "a", "b", 0b01, 0},
		{`{"a":1,}`, "a", "b", 0b01, 0},
		{`{"a":1e999}`, "b", "c", 0b10, 0},
		{`{"a":"\u0000"}`, "a", "\x00", 0b11_11_11_11, 8},
	} {
		f.Add([]byte(seed.doc), seed.key, seed.str, seed.ops, seed.n)
	}
	f.Fuzz(func(t *testing.T, doc []byte, key, str string, ops uint8, n int) {
		key = strings.ToValidUTF8(key, "?") // encoding/json would turn the key into another
		var edits []jsonedit.Edit
		for i, k := range []string{key, "model", "a", ""} {
			switch ops >> (2 * i) & 3 {
			case 1:
				edits = append(edits, jsonedit.Delete(k))
			case 2:
				edits = append(edits, jsonedit.String(k, str))
			case 3:
				if n%2 == 0 {
					edits = append(edits, jsonedit.Int(k, n))
				} else {
					edits = append(edits, jsonedit.Raw(k, []byte(` {"include_usage": [true, 1.5e3]} `)))
				}
			}
		}
		got, err := jsonedit.Object(doc, edits...)
		if trimmed := bytes.TrimLeft(doc, " \t\r\n"); !json.Valid(doc) || trimmed[0] != '{' {
			require.ErrorIs(t, err, jsonedit.ErrNotObject)
			return
		}
		require.NoError(t, err)
		require.True(t, json.Valid(got), "result %q", got)
		require.Equal(t, len(got), cap(got))
		if len(edits) == 0 {
			require.Equal(t, doc, got)
		}
		want := decode(t, doc)
		for i, k := range []string{key, "model", "a", ""} {
			switch ops >> (2 * i) & 3 {
			case 1:
				delete(want, k)
			case 2:
				quoted, err := json.Marshal(str)
				require.NoError(t, err)
				want[k] = decodeAny(t, quoted)
			case 3:
				if n%2 == 0 {
					want[k] = json.Number(strconv.Itoa(n))
				} else {
					want[k] = decodeAny(t, []byte(`{"include_usage": [true, 1.5e3]}`))
				}
			}
		}
		require.Equal(t, want, decode(t, got))
	})
}

// decode reads a JSON object as encoding/json does (the last of duplicate
// keys wins), with numbers kept as written so none overflows.
func decode(t *testing.T, doc []byte) map[string]any {
	m, ok := decodeAny(t, doc).(map[string]any)
	require.True(t, ok)
	return m
}

func decodeAny(t *testing.T, doc []byte) any {
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var v any
	require.NoError(t, d.Decode(&v))
	return v
}
