package sse_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/sse"
)

// splitReader returns its input in reads of the sizes sizes gives in turn
// (1 to 256 bytes each), so event and line boundaries fall anywhere: inside
// a "\r\n", inside a UTF-8 sequence, inside "data:".
type splitReader struct {
	data  []byte
	sizes []byte
	i     int
}

func (s *splitReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(s.sizes) > 0 {
		n = int(s.sizes[s.i%len(s.sizes)]) + 1
		s.i++
	}
	n = min(n, len(p), len(s.data))
	copy(p, s.data[:n])
	s.data = s.data[n:]
	return n, nil
}

// parseAll parses r to its end, returning the events and the final error
// (nil at a clean io.EOF).
func parseAll(r io.Reader) ([]sse.Event, error) {
	reader := sse.NewReader(r)
	var out []sse.Event
	for {
		ev, err := reader.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

func corpus(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "streams", "*.sse"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		out[filepath.Base(f)] = b
	}
	return out
}

// FuzzSplitParse: however a stream is split across reads, the events are
// the ones of the unsplit parse. The seeds are real-looking streams
// (OpenAI text and tool calls, OpenRouter with comments and CRLF, CR-only
// with every field, Anthropic's named events, an error event and a partial
// tail), each with several split patterns.
func FuzzSplitParse(f *testing.F) {
	for _, b := range corpus(f) {
		for _, sizes := range [][]byte{nil, {0}, {1, 0, 2}, {6, 255, 3}, {100}, {13, 7, 0, 0, 31}} {
			f.Add(b, sizes)
		}
	}
	f.Fuzz(func(t *testing.T, stream, sizes []byte) {
		want, wantErr := parseAll(bytes.NewReader(stream))
		got, gotErr := parseAll(&splitReader{data: stream, sizes: sizes})
		require.Equal(t, wantErr == nil, gotErr == nil, "errors: whole %v, split %v", wantErr, gotErr)
		require.Equal(t, len(want), len(got))
		for i := range want {
			require.Equal(t, string(want[i].Data), string(got[i].Data), "event %d", i)
			require.Equal(t, want[i].Event, got[i].Event, "event %d", i)
			require.Equal(t, want[i].ID, got[i].ID, "event %d", i)
		}
	})
}

// TestCorpusParses pins what the unsplit parse of the corpus yields, so the
// fuzz test's reference is itself right.
func TestCorpusParses(t *testing.T) {
	c := corpus(t)
	parse := func(name string) []sse.Event {
		evs, err := parseAll(bytes.NewReader(c[name]))
		require.NoError(t, err, name)
		return evs
	}

	evs := parse("openai-text.sse")
	require.Len(t, evs, 14)
	require.True(t, evs[13].IsDone())
	require.Contains(t, string(evs[9].Data), `"content":"日本語 "`)

	evs = parse("openai-tool-calls.sse")
	require.Len(t, evs, 7)
	require.Contains(t, string(evs[3].Data), `"arguments":"ris, \\\"FR`, "escaped quotes split across fragments")

	evs = parse("openrouter-crlf.sse")
	require.Len(t, evs, 5, "comments are not events")
	require.Contains(t, string(evs[0].Data), `"reasoning":"Thinking"`)
	require.Equal(t, sse.Event{Event: "message", ID: "7", Data: []byte("part one\npart two")}, evs[3])
	require.True(t, evs[4].IsDone())

	evs = parse("cr-fields.sse")
	require.Len(t, evs, 3)
	require.Equal(t, "message", evs[0].Event)
	require.Equal(t, "1", evs[0].ID)
	require.True(t, strings.HasPrefix(string(evs[0].Data), `{"id":`), "data: without a space")
	require.Equal(t, sse.Event{ID: "2", Data: []byte("line one\nline two\n")}, evs[1])
	require.True(t, evs[2].IsDone())

	evs = parse("anthropic.sse")
	require.Len(t, evs, 7)
	require.Equal(t, []string{"message_start", "content_block_start", "ping", "content_block_delta",
		"content_block_stop", "message_delta", "message_stop"}, names(evs))

	evs = parse("error-partial-tail.sse")
	require.Len(t, evs, 3)
	require.Contains(t, string(evs[0].Data), `"content":"partial"`, "the byte order mark is dropped")
	require.Contains(t, string(evs[1].Data), `"error"`)
	require.Equal(t, `{"tail":true}`, string(evs[2].Data), "a partial tail at EOF is still an event")
}

func names(evs []sse.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Event
	}
	return out
}
