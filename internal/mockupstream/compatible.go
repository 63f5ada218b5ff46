package mockupstream

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
)

// Dialect is how an OpenAI-compatible provider departs from OpenAI's Chat
// Completions wire format; the zero value departs in nothing.
type Dialect struct {
	// AuthHeader is the header that must carry the key as it is (x-api-key,
	// api-key); "" is Authorization: Bearer.
	AuthHeader string
	// Forbid are top-level request fields the provider refuses with a 422
	// as Mistral does (pydantic's extra_forbidden).
	Forbid []string
	// StreamUsage "always" sends usage in every stream unasked; "none"
	// never sends it.
	StreamUsage string
	// ReasoningField "reasoning_content" puts reasoning text there (as
	// DeepSeek, vLLM and xAI do) and sends no reasoning_details.
	ReasoningField string
	// CacheHitFields reports cached prompt tokens as DeepSeek does, in
	// usage.prompt_cache_hit_tokens and prompt_cache_miss_tokens rather
	// than prompt_tokens_details.cached_tokens.
	CacheHitFields bool
}

// NewCompatible returns a fake OpenAI-compatible provider speaking d's
// dialect: the answers are New's, the departures d's.
func NewCompatible(cfg Config, d Dialect) http.Handler {
	key := cfg.APIKey
	if d.AuthHeader != "" {
		cfg.APIKey = "" // checked here, in its own header
	}
	inner := New(cfg)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.AuthHeader != "" && key != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get(d.AuthHeader)), []byte(key)) != 1 {
			writeError(w, http.StatusUnauthorized, errorDetail{Message: "Unauthorized", Type: "authentication_error", Code: nullable("invalid_api_key")})
			return
		}
		body, doc, ok := readObject(w, r)
		if !ok {
			return
		}
		if doc != nil {
			var bad []map[string]any
			for _, f := range d.Forbid {
				if v, ok := doc[f]; ok {
					bad = append(bad, map[string]any{"type": "extra_forbidden", "loc": []string{"body", f},
						"msg": "Extra inputs are not permitted", "input": v})
				}
			}
			if len(bad) > 0 {
				writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"object": "error",
					"message": map[string]any{"detail": bad}, "type": "invalid_request_error", "param": nil, "code": nil})
				return
			}
			switch d.StreamUsage {
			case "always":
				doc["stream_options"] = json.RawMessage(`{"include_usage":true}`)
			case "none":
				delete(doc, "stream_options")
			}
			body, _ = json.Marshal(doc)
		}
		if d.ReasoningField != "reasoning_content" && !d.CacheHitFields {
			replay(inner, w, r, r.URL.Path, body)
			return
		}
		rw := &dialectWriter{ResponseWriter: w, d: d}
		replay(inner, rw, r, r.URL.Path, body)
		rw.finish()
	})
}

// dialectWriter rewrites New's answers into d's dialect: each event of a
// stream as it completes, a JSON answer when it ends.
type dialectWriter struct {
	http.ResponseWriter
	d      Dialect
	buf    []byte
	stream bool
	sniff  bool
}

func (w *dialectWriter) WriteHeader(code int) {
	w.stream = strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream")
	w.Header().Del("Content-Length")
	w.sniff = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *dialectWriter) Write(p []byte) (int, error) {
	if !w.sniff {
		w.WriteHeader(http.StatusOK)
	}
	w.buf = append(w.buf, p...)
	if w.stream {
		for {
			i := bytes.Index(w.buf, []byte("\n\n"))
			if i < 0 {
				break
			}
			if _, err := w.ResponseWriter.Write(w.rewriteEvent(w.buf[:i+2])); err != nil {
				return 0, err
			}
			w.buf = w.buf[i+2:]
		}
	}
	return len(p), nil
}

func (w *dialectWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *dialectWriter) finish() {
	if len(w.buf) == 0 {
		return
	}
	if w.stream {
		_, _ = w.ResponseWriter.Write(w.rewriteEvent(w.buf))
	} else {
		_, _ = w.ResponseWriter.Write(w.rewrite(w.buf, "message"))
	}
	w.buf = nil
}

func (w *dialectWriter) rewriteEvent(ev []byte) []byte {
	data, ok := bytes.CutPrefix(ev, []byte("data: "))
	if !ok || bytes.HasPrefix(data, []byte("[DONE]")) {
		return ev
	}
	return append(append([]byte("data: "), w.rewrite(bytes.TrimRight(data, "\n"), "delta")...), '\n', '\n')
}

// rewrite moves each choice's reasoning (in its message or delta) to
// reasoning_content without reasoning_details, and the cached tokens to
// DeepSeek's fields, as d says.
func (w *dialectWriter) rewrite(doc []byte, in string) []byte {
	var v map[string]any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return doc
	}
	if u, ok := v["usage"].(map[string]any); ok && w.d.CacheHitFields {
		var hit int64
		if det, ok := u["prompt_tokens_details"].(map[string]any); ok {
			n, _ := det["cached_tokens"].(json.Number)
			hit, _ = n.Int64()
		}
		p, _ := u["prompt_tokens"].(json.Number)
		prompt, _ := p.Int64()
		delete(u, "prompt_tokens_details")
		u["prompt_cache_hit_tokens"], u["prompt_cache_miss_tokens"] = hit, prompt-hit
	}
	choices, _ := v["choices"].([]any)
	for _, c := range choices {
		if w.d.ReasoningField != "reasoning_content" {
			break
		}
		m, _ := c.(map[string]any)[in].(map[string]any)
		if m == nil {
			continue
		}
		if r, ok := m["reasoning"]; ok {
			m["reasoning_content"] = r
			delete(m, "reasoning")
		}
		delete(m, "reasoning_details")
	}
	out, err := json.Marshal(v)
	if err != nil {
		return doc
	}
	return out
}
