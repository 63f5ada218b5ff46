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
	if hasLineBreak(e.Event) || hasLineBreak(e.ID) {
		return ErrInvalidField
	}
	buf := make([]byte, 0, len(e.Data)+len(e.Event)+len(e.ID)+24)
	if e.Event != "" {
		buf = appendField(buf, "event", []byte(e.Event))
	}
	if e.ID != "" {
		buf = appendField(buf, "id", []byte(e.ID))
	}
	buf = appendLines(buf, "data", e.Data)
	buf = append(buf, '\n')
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	return nil
}

// WriteDone writes the "data: [DONE]" event that ends an OpenAI stream.
func WriteDone(w io.Writer) error {
	if _, err := io.WriteString(w, "data: [DONE]\n\n"); err != nil {
		return fmt.Errorf("write done: %w", err)
	}
	return nil
}

// WriteComment writes ": <text>\n\n", a comment readers ignore, typically a
// keep-alive. Each line of a multi-line text becomes its own comment line.
func WriteComment(w io.Writer, text string) error {
	buf := appendLines(nil, "", []byte(text))
	buf = append(buf, '\n')
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write comment: %w", err)
	}
	return nil
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
