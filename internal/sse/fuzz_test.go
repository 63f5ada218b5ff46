package sse_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/sse"
)

// parseLenient parses input until the first error and returns the events.
func parseLenient(input []byte) ([]sse.Event, error) {
	r := sse.NewReader(bytes.NewReader(input))
	var events []sse.Event
	for {
		e, err := r.Next()
		if err == io.EOF {
			return events, nil
		}
		if err != nil {
			return events, err
		}
		events = append(events, e)
	}
}

func FuzzParseSSE(f *testing.F) {
	seeds := []string{
		"data: {\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-4o\"," +
			"\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n" +
			"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}]}\n\n" +
			"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n" +
			"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1,\"total_tokens\":10}}\n\n" +
			"data: [DONE]\n\n",
		": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]\n\n",
		"event: message_start\ndata: {\"type\":\"message_start\"}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n" +
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hi\"}}\n\n",
		"data: a\r\ndata: b\r\n\r\nid: 1\rdata: c\r\r",
		"data:no-space\ndata:\n\ndata\n\n:comment\nretry: 10\n\n",
		"\xEF\xBB\xBFdata: bom\n\nevent: x\n\ndata: unterminated",
		"id: a\x00b\ndata: \x00\xff\n\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		events, err := parseLenient(input)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		for _, e := range events {
			require.NoError(t, sse.WriteEvent(&buf, e))
		}
		again, err := parseLenient(buf.Bytes())
		require.NoError(t, err)
		require.Equal(t, len(events), len(again), "re-encoded: %q", buf.String())
		for i := range events {
			require.Equal(t, string(events[i].Data), string(again[i].Data))
			require.Equal(t, events[i].Event, again[i].Event)
			require.Equal(t, events[i].ID, again[i].ID)
			require.False(t, strings.ContainsAny(events[i].Event+events[i].ID, "\r\n"))
		}
	})
}
