package skins

import (
	"encoding/json"
	"strings"

	"github.com/tidwall/gjson"
)

// ResponseStream is a gateway.ChunkWriter that turns the gateway's
// chat.completion chunks into the Responses API's stream events:
// response.created and response.in_progress, per output item its added,
// deltas and done events (output_text for a message, function call
// arguments for a call), then response.completed (or .incomplete) with the
// whole response. An in-band error chunk becomes an error event, which
// ends the stream.
type ResponseStream struct {
	w   EventWriter
	seq int

	started, ended bool
	resp           response
	item           any // the open item (*outputMessage or *functionCall), nil when none
	text           strings.Builder
	calls          map[int64]*functionCall
	finish         string
}

// NewResponseStream writes to w.
func NewResponseStream(w EventWriter) *ResponseStream {
	return &ResponseStream{w: w, calls: map[int64]*functionCall{}}
}

// Open implements gateway.ChunkWriter.
func (s *ResponseStream) Open(generationID string, zdr bool) { s.w.Open(generationID, zdr) }

// WriteComment implements gateway.ChunkWriter.
func (s *ResponseStream) WriteComment(text string) error { return s.w.WriteComment(text) }

// Flush implements gateway.ChunkWriter.
func (s *ResponseStream) Flush() error { return s.w.Flush() }

// WriteDone implements gateway.ChunkWriter: the stream ended with
// response.completed; there is no [DONE].
func (s *ResponseStream) WriteDone() error { return s.w.Flush() }

// event writes one event; fields are the payload's members besides type
// and sequence_number.
func (s *ResponseStream) event(name string, fields map[string]any) error {
	fields["type"], fields["sequence_number"] = name, s.seq
	s.seq++
	b, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	return s.w.WriteEvent(name, b)
}

// WriteChunk implements gateway.ChunkWriter.
func (s *ResponseStream) WriteChunk(data []byte) error {
	if s.ended {
		return nil
	}
	doc := gjson.ParseBytes(data)
	if e := doc.Get("error"); e.IsObject() {
		s.ended = true
		return s.event("error", map[string]any{"code": e.Get("type").String(), "message": e.Get("message").String(),
			"param": nil, "error": json.RawMessage(e.Raw)})
	}
	if !s.started {
		s.started = true
		s.resp = response{ID: doc.Get("id").String(), Object: "response", CreatedAt: doc.Get("created").Int(), Status: "in_progress",
			Model: doc.Get("model").String(), Provider: doc.Get("provider").String(), Output: []any{}, Error: jsonNull}
		if err := s.event("response.created", map[string]any{"response": s.resp}); err != nil {
			return err
		}
		if err := s.event("response.in_progress", map[string]any{"response": s.resp}); err != nil {
			return err
		}
	}
	choices := doc.Get("choices")
	if choices.IsArray() && len(choices.Array()) == 0 && doc.Get("usage").IsObject() {
		return s.complete(doc.Get("usage"))
	}
	ch := choices.Get("0")
	d := ch.Get("delta")
	if t := d.Get("content").String(); t != "" {
		if err := s.textDelta(t); err != nil {
			return err
		}
	}
	for _, tc := range d.Get("tool_calls").Array() {
		if err := s.callDelta(tc); err != nil {
			return err
		}
	}
	if f := ch.Get("finish_reason").String(); f != "" {
		s.finish = f
	}
	return nil
}

func (s *ResponseStream) textDelta(t string) error {
	m, ok := s.item.(*outputMessage)
	if !ok {
		if err := s.closeItem(); err != nil {
			return err
		}
		m = &outputMessage{Type: "message", ID: "msg_" + s.resp.ID, Status: "in_progress", Role: "assistant", Content: []outputText{}}
		s.item = m
		if err := s.event("response.output_item.added", map[string]any{"output_index": len(s.resp.Output), "item": m}); err != nil {
			return err
		}
		if err := s.event("response.content_part.added", map[string]any{"item_id": m.ID, "output_index": len(s.resp.Output),
			"content_index": 0, "part": outputText{Type: "output_text", Annotations: []any{}}}); err != nil {
			return err
		}
	}
	s.text.WriteString(t)
	return s.event("response.output_text.delta", map[string]any{"item_id": m.ID, "output_index": len(s.resp.Output),
		"content_index": 0, "delta": t})
}

func (s *ResponseStream) callDelta(tc gjson.Result) error {
	k := tc.Get("index").Int()
	fc, ok := s.calls[k]
	if !ok {
		if err := s.closeItem(); err != nil {
			return err
		}
		id := tc.Get("id").String()
		fc = &functionCall{Type: "function_call", ID: "fc_" + id, CallID: id, Name: tc.Get("function.name").String(), Status: "in_progress"}
		s.calls[k], s.item = fc, fc
		if err := s.event("response.output_item.added", map[string]any{"output_index": len(s.resp.Output), "item": fc}); err != nil {
			return err
		}
	}
	args := tc.Get("function.arguments").String()
	if args == "" || s.item != fc {
		fc.Arguments += args
		return nil
	}
	fc.Arguments += args
	return s.event("response.function_call_arguments.delta", map[string]any{"item_id": fc.ID, "output_index": len(s.resp.Output), "delta": args})
}

// closeItem ends the open item with its done events and adds it to the
// output.
func (s *ResponseStream) closeItem() error {
	at := len(s.resp.Output)
	switch it := s.item.(type) {
	case *outputMessage:
		text := s.text.String()
		part := outputText{Type: "output_text", Text: text, Annotations: []any{}}
		it.Status, it.Content = "completed", []outputText{part}
		for _, ev := range []struct {
			name   string
			fields map[string]any
		}{
			{"response.output_text.done", map[string]any{"item_id": it.ID, "output_index": at, "content_index": 0, "text": text}},
			{"response.content_part.done", map[string]any{"item_id": it.ID, "output_index": at, "content_index": 0, "part": part}},
			{"response.output_item.done", map[string]any{"output_index": at, "item": it}},
		} {
			if err := s.event(ev.name, ev.fields); err != nil {
				return err
			}
		}
		s.text.Reset()
	case *functionCall:
		it.Status = "completed"
		if err := s.event("response.function_call_arguments.done", map[string]any{"item_id": it.ID, "output_index": at, "arguments": it.Arguments}); err != nil {
			return err
		}
		if err := s.event("response.output_item.done", map[string]any{"output_index": at, "item": it}); err != nil {
			return err
		}
	default:
		return nil
	}
	s.resp.Output = append(s.resp.Output, s.item)
	s.item = nil
	return nil
}

// complete ends the response with its status and usage.
func (s *ResponseStream) complete(u gjson.Result) error {
	s.ended = true
	if err := s.closeItem(); err != nil {
		return err
	}
	s.resp.Status, s.resp.IncompleteDetails = statusOf(s.finish)
	s.resp.Usage = respUsageOf(u)
	name := "response.completed"
	if s.resp.Status == "incomplete" {
		name = "response.incomplete"
	}
	return s.event(name, map[string]any{"response": s.resp})
}
