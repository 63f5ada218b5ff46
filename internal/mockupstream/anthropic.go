package mockupstream

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// NewAnthropic returns a fake of Anthropic's Messages API (POST
// /v1/messages), with the documented request rules, stream events in the
// API's order, usage with prompt-cache reads and writes, and error bodies
// as Anthropic sends them. It answers like New: it echoes the last user
// turn's words (one output token each), and the model-name suffixes and
// X-Mock-* headers of New's documentation apply, plus "midstream-error"
// (an overloaded_error event after 3 deltas). Beyond that it plays a model:
//   - with tools offered (and tool_choice not none), a user turn without
//     tool results is answered by a tool_use of the chosen (else first) tool
//     with input {"query": <the turn's text>};
//   - a turn of tool results is answered "Tool said: <their text>";
//   - images and documents are acknowledged as [image base64 image/png],
//     [image url <url>] or [document];
//   - with thinking enabled, a thinking block ("Considering <words>") with a
//     signature this fake checks when the block is sent back;
//   - cache_control breakpoints are remembered: a prefix seen before is
//     read from the cache, a new one written to it.
func NewAnthropic(cfg Config) http.Handler {
	s := &anthropicServer{server: &server{cfg: cfg, rng: newRNG(cfg.Seed)}, cache: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/messages", s.messages)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		anError(w, http.StatusNotFound, "not_found_error", "Not Found")
	})
	return s.authenticate(mux)
}

type anthropicServer struct {
	*server
	mu    sync.Mutex
	cache map[string]bool // prompt prefixes (hashes) written to the cache
}

// authenticate requires the x-api-key header (when a key is configured)
// and the anthropic-version header, as the API does.
func (s *anthropicServer) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.APIKey != "" {
			key := r.Header.Get("x-api-key")
			if key == "" {
				anError(w, http.StatusUnauthorized, "authentication_error", "x-api-key header is required")
				return
			}
			if subtle.ConstantTimeCompare([]byte(key), []byte(s.cfg.APIKey)) != 1 {
				anError(w, http.StatusUnauthorized, "authentication_error", "invalid x-api-key")
				return
			}
		}
		if r.Header.Get("anthropic-version") == "" {
			anError(w, http.StatusBadRequest, "invalid_request_error", "anthropic-version: header is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// anError writes Anthropic's error body with status.
func anError(w http.ResponseWriter, status int, typ, message string) {
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("request-id", newID("req_"))
	writeJSON(w, status, map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": message},
		"request_id": newID("req_")})
}

// anFailure is the error type and message Anthropic answers with status.
func anFailure(status int) (string, string) {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request_error", "There was an issue with the format or content of your request."
	case http.StatusUnauthorized:
		return "authentication_error", "invalid x-api-key"
	case http.StatusForbidden:
		return "permission_error", "Your API key does not have permission to use the specified resource."
	case http.StatusNotFound:
		return "not_found_error", "The requested resource could not be found."
	case http.StatusRequestEntityTooLarge:
		return "request_too_large", "Request exceeds the maximum allowed number of bytes."
	case http.StatusTooManyRequests:
		return "rate_limit_error", "This request would exceed the rate limit for your organization."
	case 529:
		return "overloaded_error", "Overloaded"
	default:
		return "api_error", "Internal server error"
	}
}

func (s *anthropicServer) messages(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err != nil {
		anError(w, http.StatusRequestEntityTooLarge, "request_too_large", "Request exceeds the maximum allowed number of bytes.")
		return
	}
	req, msg := readAnthropic(body)
	if msg != "" {
		anError(w, http.StatusBadRequest, "invalid_request_error", msg)
		return
	}
	p, err := s.planFor(r, req.Model)
	if err != nil {
		anError(w, http.StatusBadRequest, "invalid_request_error", err.Error())
		return
	}
	if p.failStatus != 0 {
		typ, msg := anFailure(p.failStatus)
		anError(w, p.failStatus, typ, msg)
		return
	}
	reply := s.reply(req)
	if req.Stream {
		s.stream(w, r, reply, p)
		return
	}
	if !sleep(r, p.latency+p.ttft) {
		return
	}
	writeJSON(w, http.StatusOK, reply.message(true))
}

// anReply is the fake model's answer, with Anthropic's ids and usage.
type anReply struct {
	answer
	id, model string
	usage     anUsage
}

type anUsage struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	OutputTokens             int `json:"output_tokens"`
}

// thinkingSignature is the signature the fake gives a thinking text, and
// checks when the block comes back.
func thinkingSignature(text string) string {
	h := sha256.Sum256([]byte("mock-thinking:" + text))
	return "sig-" + hex.EncodeToString(h[:12])
}

func (s *anthropicServer) reply(req anRequest) anReply {
	last := req.Messages[len(req.Messages)-1]
	t := turn{lastRole: last.Role, think: req.thinkingOn(), stops: req.StopSequences, budget: *req.MaxTokens}
	for _, b := range last.blocks {
		switch b.Type {
		case "text":
			t.words = append(t.words, strings.Fields(b.Text)...)
		case "tool_result":
			t.results = append(t.results, resultText(b.Content))
		case "image", "document":
			t.media = append(t.media, mediaNote(b.Type, b.Source.URL, b.Source.MediaType))
		}
	}
	for _, tool := range req.Tools {
		t.tools = append(t.tools, tool.Name)
	}
	if c := req.ToolChoice; c != nil {
		t.noTools = c.Type == "none"
		if c.Type == "tool" {
			t.forced = c.Name
		}
	}
	rep := anReply{answer: play(t, "toolu_"), id: newID("msg_"), model: req.Model}
	rep.usage = s.promptUsage(req)
	rep.usage.OutputTokens = rep.outputTokens()
	return rep
}

// stopReason is Anthropic's name for why the answer ended.
func (rep anReply) stopReason() string {
	if rep.stop == "" {
		return "end_turn"
	}
	return rep.stop
}

// resultText is a tool_result's content (a string or text blocks) as text.
func resultText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var blocks []anBlock
	_ = json.Unmarshal(raw, &blocks)
	var parts []string
	for _, b := range blocks {
		parts = append(parts, b.Text)
	}
	return strings.Join(parts, " ")
}

// promptUsage counts the prompt (a token per word, 4 per message) in the
// order the API caches it (tools, system, messages), and splits it at the
// cache_control breakpoints: the longest prefix cached before is read, the
// rest up to the last breakpoint written.
func (s *anthropicServer) promptUsage(req anRequest) anUsage {
	h := sha256.New()
	total := 0
	type point struct {
		key    string
		tokens int
	}
	var points []point
	mark := func(cached bool) {
		if cached {
			points = append(points, point{hex.EncodeToString(h.Sum(nil)), total})
		}
	}
	count := func(text string) {
		h.Write([]byte(text))
		total += len(strings.Fields(text))
	}
	for _, t := range req.Tools {
		count(t.Name + " " + t.Description)
		mark(len(t.CacheControl) > 0)
	}
	if len(req.System) > 0 {
		total += perMessageTokens // as the OpenAI fake counts a system message
	}
	var system string
	if json.Unmarshal(req.System, &system) == nil {
		count(system)
	} else {
		var blocks []anBlock
		_ = json.Unmarshal(req.System, &blocks)
		for _, b := range blocks {
			count(b.Text)
			mark(b.CacheControl != nil)
		}
	}
	for _, m := range req.Messages {
		total += perMessageTokens
		h.Write([]byte(m.Role))
		for _, b := range m.blocks {
			count(b.Text + resultText(b.Content) + string(b.Input))
			if b.Source != nil {
				count(b.Source.Data + b.Source.URL)
			}
			mark(b.CacheControl != nil)
		}
	}
	u := anUsage{InputTokens: total}
	if len(points) == 0 {
		return u
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(points) - 1; i >= 0; i-- {
		if s.cache[points[i].key] {
			u.CacheReadInputTokens = points[i].tokens
			break
		}
	}
	u.CacheCreationInputTokens = points[len(points)-1].tokens - u.CacheReadInputTokens
	for _, p := range points {
		s.cache[p.key] = true
	}
	u.InputTokens = total - u.CacheReadInputTokens - u.CacheCreationInputTokens
	return u
}

// blocks are the reply's content blocks in order.
func (rep anReply) blocks() []map[string]any {
	var out []map[string]any
	if rep.thinking != nil {
		t := strings.Join(rep.thinking, " ")
		out = append(out, map[string]any{"type": "thinking", "thinking": t, "signature": thinkingSignature(t)})
	}
	if len(rep.text) > 0 || rep.tool == nil {
		out = append(out, map[string]any{"type": "text", "text": strings.Join(rep.text, " ")})
	}
	if rep.tool != nil {
		out = append(out, map[string]any{"type": "tool_use", "id": rep.tool.ID, "name": rep.tool.Name, "input": rep.tool.Input})
	}
	return out
}

// message is the Message object: whole, or (for message_start) empty with
// the input usage.
func (rep anReply) message(whole bool) map[string]any {
	m := map[string]any{"id": rep.id, "type": "message", "role": "assistant", "model": rep.model,
		"content": []any{}, "stop_reason": nil, "stop_sequence": nil}
	u := rep.usage
	if whole {
		m["content"], m["stop_reason"], m["stop_sequence"] = rep.blocks(), rep.stopReason(), rep.stopSeq
	} else {
		u.OutputTokens = 1
	}
	m["usage"] = u
	return m
}

// stream writes the reply as Anthropic's events: message_start, each
// block's start, deltas and stop (a ping after the first start),
// message_delta with the stop reason and output usage, message_stop.
func (s *anthropicServer) stream(w http.ResponseWriter, r *http.Request, rep anReply, p plan) {
	if !sleep(r, p.latency+p.ttft) {
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	interval := pace(p.tokensPerSecond)
	deltas := 0
	emit := func(event string, data any) bool {
		b, err := json.Marshal(data)
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		return flush(rc) == nil
	}
	delta := func(index int, d map[string]any) bool {
		if deltas > 0 && !sleep(r, interval) {
			return false
		}
		if !emit("content_block_delta", map[string]any{"type": "content_block_delta", "index": index, "delta": d}) {
			return false
		}
		deltas++
		if p.midStreamFailAfter > 0 && deltas == p.midStreamFailAfter {
			panic(http.ErrAbortHandler)
		}
		if p.midStreamError && deltas == midstreamFailChunks {
			emit("error", map[string]any{"type": "error", "error": map[string]string{"type": "overloaded_error", "message": "Overloaded"}})
			return false
		}
		return true
	}
	if !emit("message_start", map[string]any{"type": "message_start", "message": rep.message(false)}) {
		return
	}
	for i, b := range rep.blocks() {
		start := map[string]any{}
		for k, v := range b {
			start[k] = v
		}
		switch b["type"] {
		case "thinking":
			start["thinking"], start["signature"] = "", ""
		case "text":
			start["text"] = ""
		case "tool_use":
			start["input"] = map[string]any{}
		}
		if !emit("content_block_start", map[string]any{"type": "content_block_start", "index": i, "content_block": start}) {
			return
		}
		if i == 0 && !emit("ping", map[string]string{"type": "ping"}) {
			return
		}
		ok := true
		switch b["type"] {
		case "thinking":
			for j, word := range rep.thinking {
				ok = ok && delta(i, map[string]any{"type": "thinking_delta", "thinking": spaced(j, word)})
			}
			ok = ok && delta(i, map[string]any{"type": "signature_delta", "signature": b["signature"]})
		case "text":
			for j, word := range rep.text {
				ok = ok && delta(i, map[string]any{"type": "text_delta", "text": spaced(j, word)})
			}
		case "tool_use":
			in := string(rep.tool.Input)
			half := len(in) / 2
			ok = delta(i, map[string]any{"type": "input_json_delta", "partial_json": in[:half]}) &&
				delta(i, map[string]any{"type": "input_json_delta", "partial_json": in[half:]})
		}
		if !ok || !emit("content_block_stop", map[string]any{"type": "content_block_stop", "index": i}) {
			return
		}
	}
	if !emit("message_delta", map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": rep.stopReason(), "stop_sequence": rep.stopSeq},
		"usage": map[string]int{"output_tokens": rep.usage.OutputTokens}}) {
		return
	}
	emit("message_stop", map[string]string{"type": "message_stop"})
}

// spaced is word j of a delta sequence: words after the first carry the
// space before them.
func spaced(j int, word string) string {
	if j == 0 {
		return word
	}
	return " " + word
}
