package sse_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/sse"
)

func TestWriteData(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data string
		want string
	}{
		{"json", `{"a":1}`, "data: {\"a\":1}\n\n"},
		{"empty", "", "data: \n\n"},
		{"multi-line", "a\nb", "data: a\ndata: b\n\n"},
		{"crlf and cr", "a\r\nb\rc", "data: a\ndata: b\ndata: c\n\n"},
		{"trailing newline", "a\n", "data: a\ndata: \n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			require.NoError(t, sse.WriteData(&buf, []byte(tt.data)))
			require.Equal(t, tt.want, buf.String())
		})
	}
}

func TestWriteEvent(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	require.NoError(t, sse.WriteEvent(&buf, sse.Event{Event: "ping", ID: "9", Data: []byte("x")}))
	require.Equal(t, "event: ping\nid: 9\ndata: x\n\n", buf.String())
	require.ErrorIs(t, sse.WriteEvent(&buf, sse.Event{Event: "a\nb"}), sse.ErrInvalidField)
	require.ErrorIs(t, sse.WriteEvent(&buf, sse.Event{ID: "a\rb"}), sse.ErrInvalidField)
}

func TestWriteDoneAndComment(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	require.NoError(t, sse.WriteComment(&buf, "OPENROUTER PROCESSING"))
	require.NoError(t, sse.WriteDone(&buf))
	require.Equal(t, ": OPENROUTER PROCESSING\n\ndata: [DONE]\n\n", buf.String())
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestWriteErrorsAreWrapped(t *testing.T) {
	t.Parallel()
	require.ErrorContains(t, sse.WriteData(failingWriter{}, []byte("x")), "write event: broken pipe")
	require.ErrorContains(t, sse.WriteDone(failingWriter{}), "write done: broken pipe")
	require.ErrorContains(t, sse.WriteComment(failingWriter{}, "x"), "write comment: broken pipe")
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	sent := []sse.Event{
		{Data: []byte(`{"id":"chatcmpl-1","choices":[{"delta":{"content":"Hi"}}]}`)},
		{Event: "message_delta", ID: "2", Data: []byte("multi\nline\n\ndata")},
		{Data: []byte("")},
		{Data: []byte(" leading space")},
	}
	var buf bytes.Buffer
	require.NoError(t, sse.WriteComment(&buf, "keep-alive"))
	for _, e := range sent {
		require.NoError(t, sse.WriteEvent(&buf, e))
	}
	require.NoError(t, sse.WriteDone(&buf))

	got := readAll(t, &buf)
	require.Len(t, got, len(sent)+1)
	require.Equal(t, sent, got[:len(sent)])
	require.True(t, got[len(sent)].IsDone())
}

func TestAppendReusesTheBuffer(t *testing.T) { // not parallel: AllocsPerRun refuses to run in parallel tests
	// What a relay does: one buffer, reset and reused for every event, so
	// encoding an event allocates nothing once the buffer is large enough.
	buf := make([]byte, 0, 256)
	buf = sse.AppendData(buf[:0], []byte("a\nb"))
	require.Equal(t, "data: a\ndata: b\n\n", string(buf))
	buf, err := sse.AppendEvent(buf[:0], sse.Event{Event: "ping", ID: "9", Data: []byte("x")})
	require.NoError(t, err)
	require.Equal(t, "event: ping\nid: 9\ndata: x\n\n", string(buf))
	_, err = sse.AppendEvent(buf[:0], sse.Event{Event: "a\nb"})
	require.ErrorIs(t, err, sse.ErrInvalidField)
	require.Equal(t, "data: [DONE]\n\n", string(sse.AppendDone(buf[:0])))
	require.Equal(t, ": a\n: b\n\n", string(sse.AppendComment(buf[:0], "a\nb")))
	data := []byte(`{"choices":[{"delta":{"content":"x"}}]}`)
	allocs := testing.AllocsPerRun(100, func() { buf = sse.AppendData(buf[:0], data) })
	require.Zero(t, allocs)
}
