package gateway

import (
	"encoding/json"
	"slices"

	"github.com/tidwall/gjson"
)

// chunkFields are the top-level fields of an upstream chunk the relay
// needs, found in one pass over the document.
type chunkFields struct {
	id, model, provider, usage, choices gjson.Result
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
			f.usage = v
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
	q := func(s string) []byte { b, _ := json.Marshal(s); return b }
	return identity{id: q(id), model: q(model), provider: q(provider)}
}

// splice rewrites a chunk's id and model and sets its provider, copying the
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

func lastBrace(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '}' {
			return i
		}
	}
	return -1
}
