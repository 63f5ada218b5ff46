package mockupstream_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
	"github.com/perpetuo/perpetuo/internal/sse"
)

func TestStreamChunks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		extra        string
		includeUsage bool
		wantWords    []string
		wantFinish   string
	}{
		{name: "plain", extra: `"stream":true`, wantWords: []string{"one ", "two ", "three"}, wantFinish: "stop"},
		{name: "include usage false", extra: `"stream":true,"stream_options":{"include_usage":false}`,
			wantWords: []string{"one ", "two ", "three"}, wantFinish: "stop"},
		{name: "include usage", extra: `"stream":true,"stream_options":{"include_usage":true}`, includeUsage: true,
			wantWords: []string{"one ", "two ", "three"}, wantFinish: "stop"},
		{name: "truncated", extra: `"stream":true,"max_tokens":2,"stream_options":{"include_usage":true}`,
			includeUsage: true, wantWords: []string{"one ", "two"}, wantFinish: "length"},
	}
	srv := start(t, mockupstream.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := post(t, t.Context(), srv, chatBody("echo", "one two three", tt.extra))
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
			require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
			chunks, done, err := readStream(t, resp)
			require.NoError(t, err)
			require.True(t, done)

			want := len(tt.wantWords) + 2
			if tt.includeUsage {
				want++
			}
			require.Len(t, chunks, want)
			id := chunks[0]["id"]
			for i, c := range chunks {
				require.Equal(t, id, c["id"])
				require.Equal(t, "chat.completion.chunk", c["object"])
				require.Equal(t, "echo", c["model"])
				require.Equal(t, "fp_mock", c["system_fingerprint"])
				usage, has := c["usage"]
				require.Equal(t, tt.includeUsage, has)
				if has && i < len(chunks)-1 {
					require.Nil(t, usage)
				}
			}
			first := chunks[0]["choices"].([]any)[0].(map[string]any)
			require.Equal(t, map[string]any{"role": "assistant", "content": ""}, first["delta"])
			require.Contains(t, first, "logprobs")
			require.Nil(t, first["finish_reason"])
			for i, w := range tt.wantWords {
				require.Equal(t, w, contentOf(t, chunks[1+i]))
			}
			finish := chunks[len(tt.wantWords)+1]["choices"].([]any)[0].(map[string]any)
			require.Equal(t, map[string]any{}, finish["delta"])
			require.Equal(t, tt.wantFinish, finish["finish_reason"])
			if tt.includeUsage {
				last := chunks[len(chunks)-1]
				require.Equal(t, []any{}, last["choices"])
				u := last["usage"].(map[string]any)
				require.Equal(t, float64(7), u["prompt_tokens"])
				require.Equal(t, float64(len(tt.wantWords)), u["completion_tokens"])
				require.Equal(t, float64(7+len(tt.wantWords)), u["total_tokens"])
			}
		})
	}
}

func TestStreamWireFormat(t *testing.T) {
	t.Parallel()
	srv := start(t, mockupstream.Config{})
	resp := post(t, t.Context(), srv, chatBody("echo", "hi", `"stream":true,"stream_options":{"include_usage":true}`))
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	events := strings.Split(string(raw), "\n\n")
	require.Len(t, events, 6) // role, content, finish, usage, [DONE], trailing ""
	for _, e := range events[:4] {
		require.True(t, strings.HasPrefix(e, `data: {"id":"chatcmpl-`), e)
	}
	require.Contains(t, events[1], `"choices":[{"index":0,"delta":{"content":"hi"},"logprobs":null,"finish_reason":null}],"usage":null}`)
	require.Contains(t, events[3], `"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6,`+
		`"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`)
	require.Equal(t, "data: [DONE]", events[4])
	require.Empty(t, events[5])
}

func TestStreamIsIncremental(t *testing.T) {
	t.Parallel()
	const words = 8
	srv := start(t, mockupstream.Config{TokensPerSecond: 20}) // 50ms between content chunks
	begin := time.Now()
	resp := post(t, t.Context(), srv, chatBody("echo", strings.Repeat("word ", words), `"stream":true`))
	r := sse.NewReader(resp.Body)
	_, err := r.Next() // role chunk
	require.NoError(t, err)
	_, err = r.Next() // first content chunk
	require.NoError(t, err)
	firstChunk := time.Since(begin)
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
	}
	total := time.Since(begin)
	require.GreaterOrEqual(t, total, (words-1)*50*time.Millisecond)
	require.Less(t, firstChunk, total/2, "first chunk after %v of %v", firstChunk, total)
}

func TestStreamTTFT(t *testing.T) {
	t.Parallel()
	srv := start(t, mockupstream.Config{})
	begin := time.Now()
	resp := post(t, t.Context(), srv, chatBody("echo", "hi", `"stream":true`), "X-Mock-TTFT", "150ms")
	_, err := sse.NewReader(resp.Body).Next()
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(begin), 150*time.Millisecond)
}

func TestMidStreamFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		cfg         mockupstream.Config
		model       string
		headers     []string
		content     string
		wantContent int
	}{
		{name: "config", cfg: mockupstream.Config{MidStreamFailAfter: 2}, content: "a b c d e", wantContent: 2},
		{name: "header", headers: []string{"X-Mock-Mid-Stream-Fail-After", "1"}, content: "a b c", wantContent: 1},
		{name: "model", model: "midstream-fail", content: "a b c d e", wantContent: 3},
		{name: "short reply still fails", model: "midstream-fail", content: "a", wantContent: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := start(t, tt.cfg)
			model := tt.model
			if model == "" {
				model = "echo"
			}
			resp := post(t, t.Context(), srv, chatBody(model, tt.content, `"stream":true`), tt.headers...)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			chunks, done, err := readStream(t, resp)
			require.ErrorIs(t, err, io.ErrUnexpectedEOF)
			require.False(t, done)
			require.Len(t, chunks, 1+tt.wantContent)
			for _, c := range chunks[1:] {
				require.NotEmpty(t, contentOf(t, c))
			}
		})
	}
}

func TestStreamStopsWhenClientLeaves(t *testing.T) {
	t.Parallel()
	h, done := handlerDone(mockupstream.New(mockupstream.Config{TokensPerSecond: 0.5}))
	srv := startHandler(t, h)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	resp := post(t, ctx, srv, chatBody("echo", "many words that would take a long while", `"stream":true`))
	r := sse.NewReader(resp.Body)
	for range 2 { // role and first content chunk
		_, err := r.Next()
		require.NoError(t, err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("handler still streaming after the client went away")
	}
}

func TestSlowModel(t *testing.T) {
	t.Parallel()
	h, done := handlerDone(mockupstream.New(mockupstream.Config{}))
	srv := startHandler(t, h)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/chat/completions",
		strings.NewReader(chatBody("slow", "hi", `"stream":true`)))
	require.NoError(t, err)
	_, err = srv.Client().Do(req) //nolint:bodyclose // the request fails
	require.ErrorIs(t, err, context.DeadlineExceeded, "slow model answered within 300ms")
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("handler still waiting after the client went away")
	}
}
