package sse_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/sse"
)

// readAll parses every event of stream until io.EOF.
func readAll(t testing.TB, r io.Reader) []sse.Event {
	t.Helper()
	reader := sse.NewReader(r)
	var events []sse.Event
	for {
		ev, err := reader.Next()
		if err == io.EOF {
			return events
		}
		require.NoError(t, err)
		events = append(events, ev)
	}
}

func ev(event, data, id string) sse.Event {
	return sse.Event{Event: event, Data: []byte(data), ID: id}
}

func TestReaderNext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		want  []sse.Event
	}{
		{"empty stream", "", nil},
		{"single event", "data: hello\n\n", []sse.Event{ev("", "hello", "")}},
		{"two events", "data: a\n\ndata: b\n\n", []sse.Event{ev("", "a", ""), ev("", "b", "")}},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []sse.Event{ev("", "a", ""), ev("", "b", "")}},
		{"cr", "data: a\r\rdata: b\r\r", []sse.Event{ev("", "a", ""), ev("", "b", "")}},
		{"mixed endings", "data: a\r\ndata: b\rdata: c\n\r\n", []sse.Event{ev("", "a\nb\nc", "")}},
		{"multi-line data", "data: line1\ndata: line2\ndata: line3\n\n", []sse.Event{ev("", "line1\nline2\nline3", "")}},
		{"comments ignored", ": OPENROUTER PROCESSING\n\n:keep-alive\ndata: x\n: inside\n\n", []sse.Event{ev("", "x", "")}},
		{"no space after colon", "data:{\"a\":1}\n\n", []sse.Event{ev("", `{"a":1}`, "")}},
		{"only one space stripped", "data:  two\n\n", []sse.Event{ev("", " two", "")}},
		{"missing final blank line", "data: a\n\ndata: last", []sse.Event{ev("", "a", ""), ev("", "last", "")}},
		{"missing final newline after data line", "data: last\n", []sse.Event{ev("", "last", "")}},
		{"empty data", "data:\n\n", []sse.Event{ev("", "", "")}},
		{"empty data with space", "data: \n\n", []sse.Event{ev("", "", "")}},
		{"field without colon", "data\n\n", []sse.Event{ev("", "", "")}},
		{"empty data lines joined", "data:\ndata:\n\n", []sse.Event{ev("", "\n", "")}},
		{"event name", "event: message_start\ndata: {}\n\n", []sse.Event{ev("message_start", "{}", "")}},
		{"event name resets", "event: ping\ndata: 1\n\ndata: 2\n\n", []sse.Event{ev("ping", "1", ""), ev("", "2", "")}},
		{"id", "id: 7\ndata: x\n\n", []sse.Event{ev("", "x", "7")}},
		{"id with nul ignored", "id: a\x00b\ndata: x\n\n", []sse.Event{ev("", "x", "")}},
		{"no data is not dispatched", "event: ping\n\nid: 3\n\ndata: x\n\n", []sse.Event{ev("", "x", "")}},
		{"unknown fields ignored", "retry: 1000\nfoo: bar\ndata: x\n\n", []sse.Event{ev("", "x", "")}},
		{"leading blank lines", "\n\n\r\ndata: x\n\n", []sse.Event{ev("", "x", "")}},
		{"byte order mark", "\xEF\xBB\xBFdata: x\n\n", []sse.Event{ev("", "x", "")}},
		{"done", "data: {}\n\ndata: [DONE]\n\n", []sse.Event{ev("", "{}", ""), ev("", "[DONE]", "")}},
		{"colon in value kept", "data: a: b\n\n", []sse.Event{ev("", "a: b", "")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, readAll(t, strings.NewReader(tt.input)))
			// One byte at a time exercises every buffer boundary.
			require.Equal(t, tt.want, readAll(t, iotest.OneByteReader(strings.NewReader(tt.input))))
		})
	}
}

func TestReaderDataIsOwnedByCaller(t *testing.T) {
	t.Parallel()
	r := sse.NewReader(strings.NewReader("data: first\n\ndata: other\n\n"))
	first, err := r.Next()
	require.NoError(t, err)
	_, err = r.Next()
	require.NoError(t, err)
	require.Equal(t, "first", string(first.Data))
}

func TestReaderEOFIsSticky(t *testing.T) {
	t.Parallel()
	r := sse.NewReader(strings.NewReader("data: x"))
	_, err := r.Next()
	require.NoError(t, err)
	for range 2 {
		_, err = r.Next()
		require.Equal(t, io.EOF, err)
	}
}

func TestReaderErrorDiscardsPartialEvent(t *testing.T) {
	t.Parallel()
	r := sse.NewReader(io.MultiReader(
		strings.NewReader("data: whole\n\ndata: part"),
		iotest.ErrReader(io.ErrUnexpectedEOF),
	))
	got, err := r.Next()
	require.NoError(t, err)
	require.Equal(t, "whole", string(got.Data))
	_, err = r.Next()
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.ErrorContains(t, err, "read event")
}

func TestReaderLargeLine(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 5<<20)
	events := readAll(t, strings.NewReader("data: "+big+"\n\ndata: after\n\n"))
	require.Len(t, events, 2)
	require.Equal(t, big, string(events[0].Data))
	require.Equal(t, "after", string(events[1].Data))
}

func TestReaderLineTooLong(t *testing.T) {
	t.Parallel()
	r := sse.NewReader(strings.NewReader("data: " + strings.Repeat("x", sse.MaxLineSize) + "\n\n"))
	_, err := r.Next()
	require.ErrorIs(t, err, sse.ErrLineTooLong)
}

func TestReaderDispatchesWithoutReadingAhead(t *testing.T) {
	t.Parallel()
	// A live stream must yield an event as soon as its blank line arrives,
	// even with "\r" endings, where the next byte might be a "\n".
	pr, pw := io.Pipe()
	t.Cleanup(func() { _ = pr.Close() })
	r := sse.NewReader(pr)
	go func() { _, _ = io.WriteString(pw, "data: a\r\r") }()
	got, err := r.Next()
	require.NoError(t, err)
	require.Equal(t, "a", string(got.Data))
	go func() {
		_, _ = io.WriteString(pw, "\ndata: b\n\n")
		_ = pw.Close()
	}()
	got, err = r.Next()
	require.NoError(t, err)
	require.Equal(t, "b", string(got.Data))
	_, err = r.Next()
	require.True(t, errors.Is(err, io.EOF))
}

func TestEventIsDone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		data string
		want bool
	}{
		{"[DONE]", true},
		{" [DONE] ", true},
		{"[done]", false},
		{"{}", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.data, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, sse.Event{Data: []byte(tt.data)}.IsDone())
		})
	}
}

func TestEventsAreBounded(t *testing.T) {
	line := "data: " + strings.Repeat("x", 1<<20) + "\n"
	r := sse.NewReader(strings.NewReader(strings.Repeat(line, 9) + "\n"))
	_, err := r.Next()
	require.ErrorIs(t, err, sse.ErrEventTooLong, "nine 1 MB data lines of one event pass the 8 MB bound")
}

// TestReadyOnlyWhenTheNextEventIsWhole: Ready is the relay's cue to hold a
// flush, so it must never be true while the next event is still partial
// (its chunk would wait for the upstream's next write).
func TestReadyOnlyWhenTheNextEventIsWhole(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		ready       bool
	}{
		{"nothing after the event", "data: a\n\n", false},
		{"the next event whole (LF)", "data: a\n\ndata: b\n\n", true},
		{"the next event whole (CRLF)", "data: a\r\n\r\ndata: b\r\n\r\n", true},
		{"the next event whole (CR)", "data: a\r\rdata: b\r\r", true},
		{"the next event partial", "data: a\n\ndata: b", false},
		{"the next event without its blank line", "data: a\n\ndata: b\n", false},
		{"only a comment after the event", "data: a\n\n: keep-alive\n\n", false},
		{"only a dataless block after the event", "data: a\n\nevent: ping\nid: 7\n\n", false},
		{"a field named like data", "data: a\n\ndatum: b\n\n", false},
		{"a comment, then the next event whole", "data: a\n\n: keep-alive\n\ndata: b\n\n", true},
		{"a comment, then the next event whole (CRLF)", "data: a\r\n\r\n: c\r\n\r\ndata: b\r\n\r\n", true},
		{"a data field without a colon", "data: a\n\ndata\n\n", true},
		{"the next event's blank line a lone CR", "data: a\r\rdata\r\r", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sse.NewReader(strings.NewReader(tc.input))
			ev, err := r.Next()
			require.NoError(t, err)
			require.Equal(t, "a", string(ev.Data))
			require.Equal(t, tc.ready, r.Ready())
		})
	}
}
