package sse

import (
	"errors"
	"fmt"
	"io"
)

// ErrInvalidField reports an event name or ID containing a line break,
// which the format cannot represent.
var ErrInvalidField = errors.New("sse: event name or id contains a line break")

// WriteData writes data as one event: "data: <data>\n\n". Each line of
// data (split on "\n", "\r\n" or "\r") becomes its own data line, so a
// reader gets the lines back joined with "\n". The event is written with a
// single Write call.
func WriteData(w io.Writer, data []byte) error {
	return WriteEvent(w, Event{Data: data})
}

// WriteEvent writes e with its "event:" and "id:" fields when set, then
// its data lines as WriteData does, with a single Write call.
func WriteEvent(w io.Writer, e Event) error {
	buf, err := AppendEvent(make([]byte, 0, len(e.Data)+len(e.Event)+len(e.ID)+24), e)
	if err != nil {
		return err
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	return nil
}

// AppendData appends data as one event, as WriteData writes it: a relay
// that keeps its buffer encodes events without allocating.
func AppendData(dst, data []byte) []byte {
	return append(appendLines(dst, "data", data), '\n')
}

// AppendEvent appends e as WriteEvent writes it.
func AppendEvent(dst []byte, e Event) ([]byte, error) {
	if hasLineBreak(e.Event) || hasLineBreak(e.ID) {
		return dst, ErrInvalidField
	}
	if e.Event != "" {
		dst = appendField(dst, "event", []byte(e.Event))
	}
	if e.ID != "" {
		dst = appendField(dst, "id", []byte(e.ID))
	}
	return AppendData(dst, e.Data), nil
}

// WriteDone writes the "data: [DONE]" event that ends an OpenAI stream.
func WriteDone(w io.Writer) error {
	if _, err := w.Write(AppendDone(nil)); err != nil {
		return fmt.Errorf("write done: %w", err)
	}
	return nil
}

// AppendDone appends the "data: [DONE]" event.
func AppendDone(dst []byte) []byte { return append(dst, "data: [DONE]\n\n"...) }

// WriteComment writes ": <text>\n\n", a comment readers ignore, typically a
// keep-alive. Each line of a multi-line text becomes its own comment line.
func WriteComment(w io.Writer, text string) error {
	if _, err := w.Write(AppendComment(nil, text)); err != nil {
		return fmt.Errorf("write comment: %w", err)
	}
	return nil
}

// AppendComment appends text as WriteComment writes it.
func AppendComment(dst []byte, text string) []byte {
	return append(appendLines(dst, "", []byte(text)), '\n')
}

// appendLines appends one "name: line\n" per line of value.
func appendLines(buf []byte, name string, value []byte) []byte {
	for {
		i := indexLineEnd(value)
		if i < 0 {
			return appendField(buf, name, value)
		}
		buf = appendField(buf, name, value[:i])
		if value[i] == '\r' && i+1 < len(value) && value[i+1] == '\n' {
			i++
		}
		value = value[i+1:]
	}
}

// appendField appends "name: value\n".
func appendField(buf []byte, name string, value []byte) []byte {
	buf = append(buf, name...)
	buf = append(buf, ": "...)
	buf = append(buf, value...)
	return append(buf, '\n')
}

func hasLineBreak(s string) bool {
	return indexLineEnd([]byte(s)) >= 0
}
