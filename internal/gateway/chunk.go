package gateway

import (
	"slices"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/jsonedit"
)

// chunkFields are the top-level fields of an upstream chunk the relay
// needs, found in the pass that validates it. A member absent from the
// chunk has a zero Span.
type chunkFields struct {
	id, model, provider, usage jsonedit.Span
	usageValue, choices        gjson.Result
}

// parseChunk checks that chunk is one JSON object and finds its fields, in
// one pass (validating it first, then walking it with gjson, read every
// chunk twice). A later duplicate of a member wins, as in a JSON decoder.
func parseChunk(chunk []byte) (chunkFields, error) {
	var f chunkFields
	err := jsonedit.Spans(chunk, func(key []byte, at jsonedit.Span) bool {
		switch string(key) {
		case "id":
			f.id = at
		case "model":
			f.model = at
		case "provider":
			f.provider = at
		case "usage":
			f.usage, f.usageValue = at, parseIn(chunk, at)
		case "choices":
			f.choices = parseIn(chunk, at)
		}
		return true
	})
	return f, err
}

// parseIn is the value at in chunk for gjson, without a copy
// (gjson.ParseBytes copies): the result shares chunk's bytes, which nothing
// writes to while the relay uses the fields, before it reads the next chunk
// (its output is a new slice).
func parseIn(chunk []byte, at jsonedit.Span) gjson.Result {
	v := chunk[at.ValStart:at.ValEnd]
	return gjson.Parse(unsafe.String(unsafe.SliceData(v), len(v)))
}

// present reports whether a member was found.
func present(at jsonedit.Span) bool { return at.ValEnd > 0 }

// identity is the generation's id, model and provider as JSON strings,
// quoted once per request and spliced into every chunk.
type identity struct {
	id, model, provider []byte
}

func newIdentity(id, model, provider string) identity {
	return identity{id: jsonedit.AppendQuoted(nil, id), model: jsonedit.AppendQuoted(nil, model), provider: jsonedit.AppendQuoted(nil, provider)}
}

// splice rewrites a chunk's id and model, sets its provider and removes its
// usage member (usage rides only Perpetuo's last chunk), copying the
// document once instead of re-parsing it per field. It reports false when
// the chunk lacks a field it must replace in place (the caller then falls
// back to a general JSON rewrite).
func (idn identity) splice(chunk []byte, f chunkFields) ([]byte, bool) {
	if !present(f.id) || !present(f.model) {
		return nil, false
	}
	type edit struct {
		at, n int
		with  []byte
	}
	edits := make([]edit, 0, 4)
	for _, x := range []struct {
		at   jsonedit.Span
		with []byte
	}{{f.id, idn.id}, {f.model, idn.model}, {f.provider, idn.provider}} {
		if present(x.at) {
			edits = append(edits, edit{at: x.at.ValStart, n: x.at.ValEnd - x.at.ValStart, with: x.with})
		}
	}
	if present(f.usage) {
		from, to := memberSpan(chunk, f.usage)
		edits = append(edits, edit{at: from, n: to - from})
	}
	slices.SortFunc(edits, func(a, b edit) int { return a.at - b.at })
	out := make([]byte, 0, len(chunk)+64)
	prev := 0
	for _, e := range edits {
		out = append(out, chunk[prev:e.at]...)
		out = append(out, e.with...)
		prev = e.at + e.n
	}
	rest := chunk[prev:]
	if !present(f.provider) {
		end := lastBrace(rest)
		if end < 0 {
			return nil, false
		}
		out = append(out, rest[:end]...)
		out = append(out, `,"provider":`...)
		out = append(out, idn.provider...)
		rest = rest[end:]
	}
	return append(out, rest...), true
}

// memberSpan is the bytes to cut to remove the member at from its object:
// with the comma before it, or, for the first member, the one after it.
func memberSpan(doc []byte, at jsonedit.Span) (from, to int) {
	from, to = at.KeyStart, at.ValEnd
	i := from - 1
	for i >= 0 && isSpace(doc[i]) {
		i--
	}
	if i >= 0 && doc[i] == ',' {
		return i, to
	}
	j := to
	for j < len(doc) && isSpace(doc[j]) {
		j++
	}
	if j < len(doc) && doc[j] == ',' {
		return from, j + 1
	}
	return from, to // the only member
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func lastBrace(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '}' {
			return i
		}
	}
	return -1
}
