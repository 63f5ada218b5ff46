package validation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/gen/api"
)

// oracle is kin-openapi's verdict on a chat request body, as the server
// gave it before this package: the reference Validate must agree with.
type oracle struct {
	t     testing.TB
	route func(body []byte) error
}

func newOracle(t testing.TB) *oracle {
	spec, err := api.GetSwagger()
	require.NoError(t, err)
	spec.Servers = nil
	r, err := gorillamux.NewRouter(spec)
	require.NoError(t, err)
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	return &oracle{t: t, route: func(body []byte) error {
		req, _ := http.NewRequest(http.MethodPost, "http://gw/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		route, params, err := r.FindRoute(req)
		if err != nil {
			panic(err)
		}
		return openapi3filter.ValidateRequest(context.Background(),
			&openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts})
	}}
}

// decodes reports whether the generated server type takes the body: the
// strict handler decodes into it after validation.
func decodes(body []byte) bool {
	var r api.ChatCompletionRequest
	return json.Unmarshal(body, &r) == nil
}

func chatValidator(t testing.TB) *Validator {
	spec, err := api.GetSwagger()
	require.NoError(t, err)
	v, err := Compile(spec.Components.Schemas["ChatCompletionRequest"].Value)
	require.NoError(t, err)
	return v
}

// TestCompilesEveryRequestBody: every JSON request body of the spec uses
// only keywords this package checks (Compile refuses others).
func TestCompilesEveryRequestBody(t *testing.T) {
	spec, err := api.GetSwagger()
	require.NoError(t, err)
	n := 0
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody == nil {
				continue
			}
			mt := op.RequestBody.Value.Content.Get("application/json")
			require.NotNil(t, mt, "%s %s has a body that is not JSON", method, path)
			_, err := Compile(mt.Schema.Value)
			require.NoError(t, err, "%s %s", method, path)
			n++
		}
	}
	require.Greater(t, n, 5)
}

func TestCompileRefusesWhatItCannotCheck(t *testing.T) {
	for name, s := range map[string]*openapi3.Schema{
		"not":           {Not: openapi3.NewSchemaRef("", openapi3.NewStringSchema())},
		"uniqueItems":   {UniqueItems: true},
		"multipleOf":    {MultipleOf: openapi3.Float64Ptr(2)},
		"minProperties": {MinProps: 1},
		"format":        {Type: &openapi3.Types{"string"}, Format: "email"},
		"enum":          {Enum: []any{1.0}},
		"nested":        {Type: &openapi3.Types{"object"}, Properties: openapi3.Schemas{"a": openapi3.NewSchemaRef("", &openapi3.Schema{UniqueItems: true})}},
	} {
		_, err := Compile(s)
		require.Error(t, err, name)
	}
}

const msg = `{"role":"user","content":"hello"}`

// chatCases are bodies with the verdict and, when refused, the field the
// error must name.
var chatCases = []struct {
	name, body, field string
	ok                bool
}{
	{"minimal", `{"model":"m","messages":[` + msg + `]}`, "", true},
	{"parts", `{"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"x"}}]}]}`, "", true},
	{"null content", `{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c"}]}]}`, "", true},
	{"unknown fields pass", `{"messages":[` + msg + `],"logit_bias":{"1":2},"x":[1,{"y":null}]}`, "", true},
	{"escaped strings", `{"messages":[{"role":"us\u0065r","content":"a\"b\\c\n\ud83d\ude00"}]}`, "", true},
	{"whitespace", " \n{ \"messages\" :\t[ " + msg + " ] } \r\n", "", true},
	{"numbers", `{"messages":[` + msg + `],"temperature":1.5e0,"top_p":0,"max_tokens":100000000,"seed":-9223372036854775808}`, "", true},
	{"stop string or list", `{"messages":[` + msg + `],"stop":["a","b","c","d"]}`, "", true},
	{"metadata strings", `{"messages":[` + msg + `],"metadata":{"a":"b"}}`, "", true},
	{"provider sort object", `{"messages":[` + msg + `],"provider":{"sort":{"by":"price","partition":"none"}}}`, "", true},

	{"not an object", `[1]`, "", false},
	{"messages missing", `{"model":"m"}`, "/messages", false},
	{"messages empty", `{"messages":[]}`, "/messages", false},
	{"messages not array", `{"messages":"hi"}`, "/messages", false},
	{"role missing", `{"messages":[{"content":"x"}]}`, "/messages/0/role", false},
	{"role bad", `{"messages":[` + msg + `,{"role":"wizard"}]}`, "/messages/1/role", false},
	{"role escaped bad", `{"messages":[{"role":"us\u0065"}]}`, "/messages/0/role", false},
	{"content number", `{"messages":[{"role":"user","content":5}]}`, "/messages/0/content", false},
	{"part without type", `{"messages":[{"role":"user","content":[{"text":"x"}]}]}`, "/messages/0/content/0/type", false},
	{"temperature string", `{"messages":[` + msg + `],"temperature":"hot"}`, "/temperature", false},
	{"temperature high", `{"messages":[` + msg + `],"temperature":2.5}`, "/temperature", false},
	{"max_tokens zero", `{"messages":[` + msg + `],"max_tokens":0}`, "/max_tokens", false},
	{"max_tokens huge", `{"messages":[` + msg + `],"max_tokens":99999999999999999999}`, "/max_tokens", false},
	{"max_tokens fraction", `{"messages":[` + msg + `],"max_tokens":1.5}`, "/max_tokens", false},
	{"max_tokens infinite", `{"messages":[` + msg + `],"max_tokens":1e999}`, "/max_tokens", false},
	{"seed overflow", `{"messages":[` + msg + `],"seed":9223372036854775808}`, "/seed", false},
	{"n two", `{"messages":[` + msg + `],"n":2}`, "/n", false},
	{"stop too many", `{"messages":[` + msg + `],"stop":["a","b","c","d","e"]}`, "/stop", false},
	{"stop number", `{"messages":[` + msg + `],"stop":3}`, "/stop", false},
	{"models too many", `{"models":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"],"messages":[` + msg + `]}`, "/models", false},
	{"user too long", `{"messages":[` + msg + `],"user":"` + strings.Repeat("é", 257) + `"}`, "/user", false},
	{"metadata number", `{"messages":[` + msg + `],"metadata":{"a":1}}`, "/metadata/a", false},
	{"metadata sixteen tags", `{"messages":[` + msg + `],"metadata":{` + tags(16) + `}}`, "", true},
	{"metadata seventeen tags", `{"messages":[` + msg + `],"metadata":{` + tags(17) + `}}`, "/metadata", false},
	{"metadata value too long", `{"messages":[` + msg + `],"metadata":{"a":"` + strings.Repeat("x", 513) + `"}}`, "/metadata/a", false},
	{"provider extra", `{"messages":[` + msg + `],"provider":{"ordr":["x"]}}`, "/provider", false},
	{"provider sort bad", `{"messages":[` + msg + `],"provider":{"sort":"random"}}`, "/provider/sort", false},
	{"data_collection bad", `{"messages":[` + msg + `],"provider":{"data_collection":"maybe"}}`, "/provider/data_collection", false},
	{"stream string", `{"messages":[` + msg + `],"stream":"yes"}`, "/stream", false},
	{"strategy bad", `{"messages":[` + msg + `],"strategy":"random"}`, "/strategy", false},
}

// TestAgreesWithKinOpenAPI: for each case the verdict is the one the
// server gave before (kin-openapi, then the generated type's decode), and
// a refusal names the field.
func TestAgreesWithKinOpenAPI(t *testing.T) {
	v, o := chatValidator(t), newOracle(t)
	for _, tc := range chatCases {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			before := o.route(body) == nil && decodes(body)
			require.Equal(t, tc.ok, before, "the case's verdict is kin-openapi's")
			err := v.Validate(body)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			var ve *Error
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tc.field, ve.Field, "%v", ve)
			require.NotEmpty(t, ve.Reason)
		})
	}
}

// TestSyntaxErrors: invalid JSON is refused with where it went wrong, and
// a document cut short says so.
func TestSyntaxErrors(t *testing.T) {
	v := chatValidator(t)
	for _, tc := range []struct {
		body      string
		offset    int
		truncated bool
	}{
		{`{"model": zebra}`, 11, false},
		{`{"messages":[` + msg + `],}`, 49, false},
		{`{"messages":[` + msg, 0, true},
		{`{"model":"m",`, 0, true},
		{`{"model":"a` + "\x01" + `"}`, 12, false},
		{`{"model":"\x"}`, 11, false},
		{`{"messages":[` + msg + `]} x`, 50, false},
		{`{"temperature":01}`, 17, false},
		{`{"temperature":-}`, 17, false},
		{``, 0, true},
	} {
		err := v.Validate([]byte(tc.body))
		var ve *Error
		require.ErrorAs(t, err, &ve, tc.body)
		require.True(t, ve.Syntax, "%s: %v", tc.body, ve)
		require.Equal(t, tc.truncated, ve.Truncated, tc.body)
		if !tc.truncated {
			require.Equal(t, tc.offset, ve.Offset, "%s: %v", tc.body, ve)
		}
	}
}

// TestErrorsNeverEchoValues: reasons name the rule, not what was sent.
func TestErrorsNeverEchoValues(t *testing.T) {
	v := chatValidator(t)
	for _, body := range []string{
		`{"messages":[{"role":"secret-role"}]}`,
		`{"messages":[{"role":"user","content":{"secret":1}}]}`,
		`{"messages":[` + msg + `],"user":"secret` + strings.Repeat("x", 300) + `"}`,
		`{"messages":[` + msg + `],"max_tokens":12345678901234}`,
		`{"messages":[` + msg + `],"metadata":{"k":{"secret":true}}}`,
	} {
		err := v.Validate([]byte(body))
		require.Error(t, err)
		require.NotContains(t, err.Error(), "secret", body)
		require.NotContains(t, err.Error(), "12345678901234", body)
	}
}

// TestDepthIsBounded: deep nesting is refused, not recursed into without
// limit (8 MB of '[' would otherwise take the stack).
func TestDepthIsBounded(t *testing.T) {
	v := chatValidator(t)
	deep := `{"messages":[` + msg + `],"x":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`
	err := v.Validate([]byte(deep))
	var ve *Error
	require.ErrorAs(t, err, &ve)
	require.True(t, ve.Syntax)
	require.Contains(t, ve.Reason, "nests deeper")
	ok := `{"messages":[` + msg + `],"x":` + strings.Repeat("[", MaxDepth-2) + strings.Repeat("]", MaxDepth-2) + `}`
	require.NoError(t, v.Validate([]byte(ok)))
}

// TestMaxItemsStopsEarly: a body with far more messages than allowed is
// refused at the first one too many, before the rest is read (the rest
// here is not even valid JSON).
func TestMaxItemsStopsEarly(t *testing.T) {
	v := chatValidator(t)
	body := `{"models":[` + strings.Repeat(`"a",`, 16) + `"b" GARBAGE`
	err := v.Validate([]byte(body))
	var ve *Error
	require.ErrorAs(t, err, &ve)
	require.False(t, ve.Syntax, "%v", ve)
	require.Equal(t, "/models", ve.Field)
}

// FuzzAgreesWithKinOpenAPI: whatever the body, Validate never accepts what
// kin-openapi and the generated type's decode refused, and accepts
// everything they both accept (duplicate property names aside: Validate
// checks every occurrence, encoding/json keeps the last).
func FuzzAgreesWithKinOpenAPI(f *testing.F) {
	for _, tc := range chatCases {
		f.Add([]byte(tc.body))
	}
	v, o := chatValidator(f), newOracle(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		ours := v.Validate(body) == nil
		theirs := o.route(body) == nil && decodes(body)
		if ours && !theirs {
			t.Fatalf("accepted what kin-openapi refused: %q: %v", body, o.route(body))
		}
		if theirs && !ours && !hasDuplicateKeys(body) {
			t.Fatalf("refused what kin-openapi accepted: %q: %v", body, v.Validate(body))
		}
	})
}

// FuzzSyntaxMatchesEncodingJSON: with a schema that takes anything,
// Validate accepts exactly the documents encoding/json does.
func FuzzSyntaxMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{`{}`, `[1,2.5e-3,"a\u00e9",true,false,null]`, `{"a":{"b":[]}}`, `"x`, `01`, `1.`, `-`, `[1,]`, ` `, `"\ud800"`} {
		f.Add([]byte(s))
	}
	v, err := Compile(&openapi3.Schema{})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, doc []byte) {
		if bytes.Count(doc, []byte("["))+bytes.Count(doc, []byte("{")) >= MaxDepth {
			return // nesting beyond MaxDepth is refused on purpose
		}
		ours, theirs := v.Validate(doc) == nil, json.Valid(doc)
		if ours != theirs {
			t.Fatalf("Validate %v, json.Valid %v for %q", ours, theirs, doc)
		}
	})
}

func hasDuplicateKeys(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		obj  bool
		keys map[string]bool
		key  bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{':
				if top != nil && top.obj {
					top.key = true
				}
				stack = append(stack, &frame{obj: true, keys: map[string]bool{}, key: true})
				continue
			case '[':
				if top != nil && top.obj {
					top.key = true
				}
				stack = append(stack, &frame{})
				continue
			default:
				stack = stack[:len(stack)-1]
				continue
			}
		case string:
			if top != nil && top.obj && top.key {
				if top.keys[tok] {
					return true
				}
				top.keys[tok] = true
				top.key = false
				continue
			}
		}
		if top != nil && top.obj {
			top.key = true
		}
	}
}

// TestPlain8MatchesBytewise: the 8-byte skip agrees with checking each
// byte, on every single special byte at every position and random words.
func TestPlain8MatchesBytewise(t *testing.T) {
	bytewise := func(w [8]byte) bool {
		for _, c := range w {
			if c == '"' || c == '\\' || c < 0x20 {
				return false
			}
		}
		return true
	}
	word := func(w [8]byte) uint64 {
		var x uint64
		for i := 7; i >= 0; i-- {
			x = x<<8 | uint64(w[i])
		}
		return x
	}
	for c := range 256 {
		for pos := range 8 {
			w := [8]byte{'a', 'b', 0xc3, 0xa9, 'z', '~', 0x80, 0xff}
			w[pos] = byte(c)
			require.Equal(t, bytewise(w), plain8(word(w)), "byte %#x at %d", c, pos)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		var w [8]byte
		for i := range w {
			w[i] = byte(r.IntN(256))
		}
		require.Equal(t, bytewise(w), plain8(word(w)), "%v", w)
	}
}

// tags is n metadata members, "t0":"v" and on.
func tags(n int) string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`"t%d":"v"`, i)
	}
	return strings.Join(out, ",")
}
