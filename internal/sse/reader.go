package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Event is one dispatched Server-Sent Event.
type Event struct {
	// Event is the value of the "event:" field, empty if the event had none.
	Event string
	// Data holds the values of the event's "data:" lines joined with "\n".
	// It is never nil for an event returned by Reader.Next, and the caller
	// owns it: later calls to Next do not overwrite it.
	Data []byte
	// ID is the value of the event's last "id:" field, empty if it had none.
	// Unlike a browser's EventSource, the ID does not carry over to later
	// events.
	ID string
}

// IsDone reports whether e is the "[DONE]" sentinel ending an OpenAI stream.
func (e Event) IsDone() bool {
	return bytes.Equal(bytes.TrimSpace(e.Data), doneData)
}

var (
	doneData = []byte("[DONE]")
	bom      = []byte("\xEF\xBB\xBF")
)

// MaxEventSize bounds the data of one event (its data lines joined): an
// upstream sending endless data lines without a blank one cannot make the
// gateway hold them all.
const MaxEventSize = MaxLineSize

// ErrEventTooLong reports an event whose data passed MaxEventSize.
var ErrEventTooLong = errors.New("sse: event too long")

// Reader parses a text/event-stream into events.
type Reader struct {
	lines   lineReader
	started bool
}

// NewReader returns a Reader parsing the stream r. Lines may end with "\n",
// "\r\n" or "\r" and may be up to MaxLineSize bytes long.
func NewReader(r io.Reader) *Reader {
	return &Reader{lines: lineReader{r: r}}
}

// Ready reports whether the next event is already read from the source in
// full, so that Next returns it without waiting: a relay can then hold its
// flush and send a burst of events in one write.
func (r *Reader) Ready() bool { return r.lines.holdsEvent() }

// Next returns the next event. Comment lines (starting with ':') and unknown
// fields are ignored; a single space after a field's colon is dropped.
// Following the specification, blocks without any "data:" line are not
// dispatched. An event still pending when the input ends without a blank
// line is returned; after the last event Next returns io.EOF itself
// (unwrapped). Other read errors are wrapped, and a partial event before
// them is discarded.
func (r *Reader) Next() (Event, error) {
	var (
		ev      Event
		hasData bool
	)
	for {
		line, err := r.lines.line()
		if err == io.EOF && hasData {
			return ev, nil
		}
		if err == io.EOF {
			return Event{}, io.EOF
		}
		if err != nil {
			return Event{}, fmt.Errorf("read event: %w", err)
		}
		if !r.started {
			r.started = true
			line = bytes.TrimPrefix(line, bom)
		}
		if len(line) == 0 {
			if hasData {
				return ev, nil
			}
			ev = Event{}
			continue
		}
		if parseField(&ev, line) {
			hasData = true
			if len(ev.Data) > MaxEventSize {
				return Event{}, fmt.Errorf("read event: %w", ErrEventTooLong)
			}
		}
	}
}

// parseField applies one non-blank line to ev and reports whether it was a
// data line.
func parseField(ev *Event, line []byte) bool {
	if line[0] == ':' {
		return false
	}
	name, value, _ := bytes.Cut(line, []byte(":"))
	value = bytes.TrimPrefix(value, []byte(" "))
	switch string(name) {
	case "data":
		if ev.Data == nil {
			ev.Data = make([]byte, 0, len(value))
		} else {
			ev.Data = append(ev.Data, '\n')
		}
		ev.Data = append(ev.Data, value...)
		return true
	case "event":
		ev.Event = string(value)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			ev.ID = string(value)
		}
	}
	return false
}
