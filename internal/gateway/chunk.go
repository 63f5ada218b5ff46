package gateway

import (
	"slices"

	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/jsonedit"
)

// chunkFields are the top-level fields of an upstream chunk the relay
// needs, found in one pass over the document.
type chunkFields struct {
	id, model, provider, usage, choices gjson.Result
	usageKey                            gjson.Result // the usage member's key, to cut the member out
}

func parseChunk(chunk []byte) chunkFields {
	var f chunkFields
	gjson.ParseBytes(chunk).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "id":
			f.id = v
		case "model":
			f.model = v
		case "provider":
			f.provider = v
		case "usage":
			f.usage, f.usageKey = v, k
		case "choices":
			f.choices = v
		}
		return true
	})
	return f
}

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
	type edit struct {
		at, n int
		with  []byte
	}
	edits := make([]edit, 0, 3)
	for _, x := range []struct {
		r    gjson.Result
		with []byte
	}{{f.id, idn.id}, {f.model, idn.model}, {f.provider, idn.provider}} {
		if x.r.Exists() {
			if x.r.Index <= 0 {
				return nil, false
			}
			edits = append(edits, edit{at: x.r.Index, n: len(x.r.Raw), with: x.with})
		}
	}
	if !f.id.Exists() || !f.model.Exists() {
		return nil, false
	}
	if f.usage.Exists() {
		from, to, ok := memberSpan(chunk, f.usageKey, f.usage)
		if !ok {
			return nil, false
		}
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
	if !f.provider.Exists() {
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

// memberSpan is the bytes to cut to remove the member key: value from its
// object: with the comma before it, or, for the first member, the one
// after it. It reports false when the positions are not known.
func memberSpan(doc []byte, key, value gjson.Result) (from, to int, ok bool) {
	if key.Index <= 0 || value.Index <= key.Index {
		return 0, 0, false
	}
	from, to = key.Index, value.Index+len(value.Raw)
	i := from - 1
	for i >= 0 && isSpace(doc[i]) {
		i--
	}
	if i >= 0 && doc[i] == ',' {
		return i, to, true
	}
	j := to
	for j < len(doc) && isSpace(doc[j]) {
		j++
	}
	if j < len(doc) && doc[j] == ',' {
		return from, j + 1, true
	}
	return from, to, true // the only member
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
