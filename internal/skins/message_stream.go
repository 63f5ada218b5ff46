package skins

import (
	"encoding/json"

	"github.com/tidwall/gjson"
)

// EventWriter writes named server-sent events (Anthropic names each one).
type EventWriter interface {
	Open(generationID string, zdr bool)
	WriteEvent(name string, data []byte) error
	WriteComment(text string) error
	Flush() error
}

// MessageStream is a gateway.ChunkWriter that turns the gateway's
// chat.completion chunks into Anthropic's stream events: message_start,
// then per block (thinking, text, tool_use) its start, deltas and stop,
// then message_delta with the stop reason and usage, and message_stop.
// An in-band error chunk becomes an error event, which ends the stream.
type MessageStream struct {
	w EventWriter

	started, ended bool
	block          string // the open block's type, "" when none
	index          int    // the open block's index; the next block's is index+1
	tools          map[int64]bool
	stop           string
}

// NewMessageStream writes to w.
func NewMessageStream(w EventWriter) *MessageStream {
	return &MessageStream{w: w, index: -1, tools: map[int64]bool{}}
}

// Open implements gateway.ChunkWriter.
func (s *MessageStream) Open(generationID string, zdr bool) { s.w.Open(generationID, zdr) }

// WriteComment implements gateway.ChunkWriter: keep-alives pass as comments.
func (s *MessageStream) WriteComment(text string) error { return s.w.WriteComment(text) }

// Flush implements gateway.ChunkWriter.
func (s *MessageStream) Flush() error { return s.w.Flush() }

// WriteDone implements gateway.ChunkWriter: Anthropic's streams end with
// message_stop, already sent; there is no [DONE].
func (s *MessageStream) WriteDone() error { return s.w.Flush() }

func (s *MessageStream) event(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.w.WriteEvent(name, b)
}

// WriteChunk implements gateway.ChunkWriter.
func (s *MessageStream) WriteChunk(data []byte) error {
	if s.ended {
		return nil
	}
	doc := gjson.ParseBytes(data)
	if e := doc.Get("error"); e.IsObject() {
		s.ended = true
		return s.w.WriteEvent("error", []byte(`{"type":"error","error":`+e.Raw+`}`))
	}
	if !s.started {
		s.started = true
		if err := s.event("message_start", map[string]any{"type": "message_start", "message": message{
			ID: doc.Get("id").String(), Type: "message", Role: "assistant", Model: doc.Get("model").String(),
			Provider: doc.Get("provider").String(), Content: []contentBlock{}, Usage: &msgUsage{}}}); err != nil {
			return err
		}
	}
	choices := doc.Get("choices")
	if choices.IsArray() && len(choices.Array()) == 0 && doc.Get("usage").IsObject() {
		return s.finish(doc.Get("usage"))
	}
	ch := choices.Get("0")
	d := ch.Get("delta")
	for _, rd := range d.Get("reasoning_details").Array() {
		if err := s.reasoning(rd); err != nil {
			return err
		}
	}
	if r := d.Get("reasoning").String(); r != "" && !d.Get("reasoning_details").Exists() {
		if err := s.delta("thinking", contentBlock{Type: "thinking", Thinking: str(""), Signature: str("")},
			map[string]any{"type": "thinking_delta", "thinking": r}); err != nil {
			return err
		}
	}
	if t := d.Get("content").String(); t != "" {
		if err := s.delta("text", contentBlock{Type: "text", Text: str("")}, map[string]any{"type": "text_delta", "text": t}); err != nil {
			return err
		}
	}
	for _, tc := range d.Get("tool_calls").Array() {
		k := tc.Get("index").Int()
		if !s.tools[k] {
			s.tools[k] = true
			if err := s.open("tool_use", contentBlock{Type: "tool_use", ID: tc.Get("id").String(),
				Name: tc.Get("function.name").String(), Input: json.RawMessage("{}")}); err != nil {
				return err
			}
		}
		if args := tc.Get("function.arguments").String(); args != "" {
			if err := s.event("content_block_delta", map[string]any{"type": "content_block_delta", "index": s.index,
				"delta": map[string]any{"type": "input_json_delta", "partial_json": args}}); err != nil {
				return err
			}
		}
	}
	if f := ch.Get("finish_reason").String(); f != "" {
		s.stop = stopReason(f, ch.Get("native_finish_reason").String())
	}
	return nil
}

// reasoning relays a reasoning_details entry: its text as a thinking
// delta, its signature as a signature delta, an encrypted one as a
// redacted_thinking block.
func (s *MessageStream) reasoning(rd gjson.Result) error {
	switch rd.Get("type").String() {
	case "reasoning.encrypted":
		if err := s.open("redacted_thinking", contentBlock{Type: "redacted_thinking", Data: rd.Get("data").String()}); err != nil {
			return err
		}
		return s.close()
	case "reasoning.text":
		start := contentBlock{Type: "thinking", Thinking: str(""), Signature: str("")}
		if t := rd.Get("text").String(); t != "" {
			if err := s.delta("thinking", start, map[string]any{"type": "thinking_delta", "thinking": t}); err != nil {
				return err
			}
		}
		if sig := rd.Get("signature").String(); sig != "" {
			return s.delta("thinking", start, map[string]any{"type": "signature_delta", "signature": sig})
		}
	}
	return nil
}

// delta sends d in a block of kind, opening one (start) unless it is open.
func (s *MessageStream) delta(kind string, start contentBlock, d map[string]any) error {
	if s.block != kind {
		if err := s.open(kind, start); err != nil {
			return err
		}
	}
	return s.event("content_block_delta", map[string]any{"type": "content_block_delta", "index": s.index, "delta": d})
}

func (s *MessageStream) open(kind string, start contentBlock) error {
	if err := s.close(); err != nil {
		return err
	}
	s.index++
	s.block = kind
	return s.event("content_block_start", map[string]any{"type": "content_block_start", "index": s.index, "content_block": start})
}

func (s *MessageStream) close() error {
	if s.block == "" {
		return nil
	}
	s.block = ""
	return s.event("content_block_stop", map[string]any{"type": "content_block_stop", "index": s.index})
}

// finish ends the message with its stop reason and usage.
func (s *MessageStream) finish(u gjson.Result) error {
	s.ended = true
	if err := s.close(); err != nil {
		return err
	}
	if s.stop == "" {
		s.stop = "end_turn"
	}
	if err := s.event("message_delta", map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": s.stop, "stop_sequence": nil}, "usage": usageOf(u)}); err != nil {
		return err
	}
	return s.event("message_stop", map[string]string{"type": "message_stop"})
}
