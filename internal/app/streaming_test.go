package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
	"github.com/perpetuo/perpetuo/internal/sse"
)

// script is a fake upstream that answers every request with the same SSE
// bytes, written step by step: a string is written and flushed, a
// time.Duration pauses, cut closes the connection mid-stream.
type script []any

type cutStep struct{}

var cut = cutStep{}

func (s script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for _, step := range s {
		switch v := step.(type) {
		case string:
			if _, err := io.WriteString(w, v); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		case time.Duration:
			select {
			case <-time.After(v):
			case <-r.Context().Done():
				return
			}
		case cutStep:
			panic(http.ErrAbortHandler)
		}
	}
}

// chunkEvent is one upstream chunk event whose first choice has delta.
func chunkEvent(delta string) string {
	return `data: {"id":"up-1","object":"chat.completion.chunk","created":1700000000,"model":"upstream-model",` +
		`"choices":[{"index":0,"delta":` + delta + `,"finish_reason":null}]}` + "\n\n"
}

func textEvent(text string) string { return chunkEvent(`{"content":` + toJSONString(text) + `}`) }

func toJSONString(s string) string { b, _ := json.Marshal(s); return string(b) }

const stopEvent = `data: {"id":"up-1","object":"chat.completion.chunk","created":1700000000,"model":"upstream-model","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n"

// streamBody opens a stream with a raw HTTP client.
func (e *env) streamBody(ctx context.Context, body string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(body))
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	return resp
}

// events parses a whole SSE body with the gateway's framer.
func events(t *testing.T, body []byte) []sse.Event {
	t.Helper()
	r := sse.NewReader(bytes.NewReader(body))
	var out []sse.Event
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		out = append(out, ev)
	}
}

const leaky = `{"model":"test/leaky","stream":true,"messages":[{"role":"user","content":"one two three"}]}`

// TestPreStreamErrorsAreHTTPErrors: until anything went out, a streaming
// request's failure is a real status with the JSON envelope, never SSE.
func TestPreStreamErrorsAreHTTPErrors(t *testing.T) {
	t.Parallel()
	e := setupWith(t, map[string]http.Handler{
		"flaky": mockupstream.New(mockupstream.Config{FailureRate: 1, FailureStatus: 429}),
		"tri-a": mockupstream.New(mockupstream.Config{FailureRate: 1, FailureStatus: 500}),
		"tri-b": mockupstream.New(mockupstream.Config{TTFT: 3 * time.Second}),
	}, func(o *Options) { o.FirstByteTimeout, o.AttemptTimeout = 200*time.Millisecond, 200*time.Millisecond })
	governedID, governed := e.newKey(`{"name":"governed"}`)
	e.assign("keys", governedID, e.guardrail(`{"name":"test only","allowed_models":["test/*"]}`))
	_, broke := e.newKey(`{"name":"broke","limit":0.0000001}`)
	cases := []struct {
		name, key, body string
		status          int
		typ             string
	}{
		{"policy", governed, `{"model":"mock/echo","stream":true,"messages":[{"role":"user","content":"x"}]}`, 403, "model_not_allowed"},
		{"budget", broke, `{"model":"mock/echo","stream":true,"messages":[{"role":"user","content":"x"}]}`, 402, "budget_exceeded"},
		{"validation", e.key, `{"model":"mock/echo","stream":true,"messages":"hi"}`, 400, "invalid_request"},
		{"authentication", "pk_wrong", `{"model":"mock/echo","stream":true,"messages":[{"role":"user","content":"x"}]}`, 401, "authentication"},
		{"routing", e.key, `{"model":"nobody/nothing","stream":true,"messages":[{"role":"user","content":"x"}]}`, 404, "not_found"},
		{"upstream 429", e.key, leaky, 429, "rate_limit_exceeded"},
		{"upstream 5xx", e.key, `{"model":"test/trio","provider":{"order":["tri-a"],"allow_fallbacks":false},"stream":true,"messages":[{"role":"user","content":"x"}]}`, 502, "provider_unavailable"},
		{"upstream timeout", e.key, `{"model":"test/trio","provider":{"order":["tri-b"],"allow_fallbacks":false},"stream":true,"messages":[{"role":"user","content":"x"}]}`, 504, "timeout"},
	}
	// The same refusals without streaming: the same statuses and types
	// (a non-streaming call's timeout is PERPETUO_ATTEMPT_TIMEOUT's).
	for _, tc := range cases {
		tc.name, tc.body = tc.name+", not streamed", strings.Replace(tc.body, `"stream":true`, `"stream":false`, 1)
		cases = append(cases, tc)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, raw := send(t, e.srv.URL, http.MethodPost, "/v1/chat/completions", tc.key, tc.body)
			require.Equal(t, tc.status, status, "%s", raw)
			require.Equal(t, "application/json", hdr.Get("Content-Type"))
			require.NotContains(t, string(raw), "data:")
			var doc map[string]any
			require.NoError(t, json.Unmarshal(raw, &doc), "%s", raw)
			requireEnvelope(t, doc, tc.status, tc.typ)
		})
	}
	// The official client sees the status as an API error.
	stream := e.openai.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "test/leaky", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}})
	defer stream.Close()
	require.False(t, stream.Next())
	var apiErr *openai.Error
	require.ErrorAs(t, stream.Err(), &apiErr)
	require.Equal(t, 429, apiErr.StatusCode)
}

// TestMidStreamErrorsEndTheStreamInBand: after the first chunk, every
// failure keeps the 200 and ends the stream with one error chunk (choice
// finishing with "error"), the usage chunk, then [DONE]; the official
// client surfaces an error, never a clean finish.
func TestMidStreamErrorsEndTheStreamInBand(t *testing.T) {
	t.Parallel()
	first := []any{textEvent("one "), textEvent("two ")}
	steps := func(more ...any) script { return script(append(append([]any{}, first...), more...)) }
	cases := []struct {
		name     string
		upstream script
		typ      string
		code     float64
		provCode string
		native   string
	}{
		{"upstream disconnect", steps(cut), "provider_unavailable", 502, "", "error"},
		{"upstream error event", steps(`data: {"error":{"message":"The server had an error","type":"server_error","code":"server_error"}}` + "\n\n"),
			"provider_unavailable", 502, "server_error", "error"},
		{"idle timeout", steps(5 * time.Second), "timeout", 504, "", "error"},
		{"malformed chunk", steps("data: {\"choices\":[{\"delta\":{\"content\":\"x\"\n\n"), "provider_error", 502, "", "error"},
		{"chunk not an object", steps("data: [1,2,3]\n\n"), "provider_error", 502, "", "error"},
		{"over-long event", steps("data: " + strings.Repeat("x", sse.MaxLineSize+1) + "\n\n"), "provider_error", 502, "", "error"},
		// The upstream said stop, then the stream was cut before [DONE].
		{"ends without [DONE]", steps(stopEvent), "provider_unavailable", 502, "", "stop"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idle := 10 * time.Second // an 8 MiB event may take a while on a loaded machine
			if tc.name == "idle timeout" {
				idle = 300 * time.Millisecond
			}
			e := setupWith(t, map[string]http.Handler{"flaky": tc.upstream}, func(o *Options) { o.StreamIdle = idle })
			resp := e.streamBody(context.Background(), leaky)
			raw, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, 200, resp.StatusCode)
			evs := events(t, raw)
			require.GreaterOrEqual(t, len(evs), 5, "%s", raw)
			n := len(evs)
			require.Equal(t, `one `, gjson.GetBytes(evs[0].Data, "choices.0.delta.content").String())
			require.Equal(t, `two `, gjson.GetBytes(evs[1].Data, "choices.0.delta.content").String())
			errChunk, usage := gjson.ParseBytes(evs[n-3].Data), gjson.ParseBytes(evs[n-2].Data)
			require.True(t, evs[n-1].IsDone())
			require.Equal(t, tc.code, errChunk.Get("error.code").Float(), "%s", errChunk.Raw)
			require.Equal(t, tc.typ, errChunk.Get("error.metadata.error_type").String())
			require.NotEmpty(t, errChunk.Get("error.message").String())
			require.Equal(t, tc.provCode, errChunk.Get("error.metadata.provider_code").String())
			require.Equal(t, "error", errChunk.Get("choices.0.finish_reason").String())
			require.Equal(t, tc.native, errChunk.Get("choices.0.native_finish_reason").String())
			require.Equal(t, "chat.completion.chunk", errChunk.Get("object").String())
			require.Equal(t, resp.Header.Get("X-Generation-Id"), errChunk.Get("id").String())
			require.Equal(t, "0", usage.Get("choices.#").String())
			require.True(t, usage.Get("usage.completion_tokens").Int() > 0, "what was produced is billed: %s", usage.Raw)
			require.True(t, usage.Get("usage.usage_estimated").Bool())

			g := e.generation(resp.Header.Get("X-Generation-Id"))
			require.Equal(t, 200, g.Status)
			require.Equal(t, "error", *g.FinishReason)
			require.Equal(t, tc.typ, string(*g.ErrorType))
			require.False(t, g.Cancelled)

			// The same failure through the official client: an error, after
			// the partial content.
			stream := e.openai.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
				Model: "test/leaky", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}})
			defer stream.Close()
			content := ""
			for stream.Next() {
				if c := stream.Current(); len(c.Choices) > 0 {
					content += c.Choices[0].Delta.Content
				}
			}
			require.Equal(t, "one two ", content)
			require.Error(t, stream.Err(), "a cut stream must never look like a finished one")
			require.Contains(t, stream.Err().Error(), tc.typ)
		})
	}
}

// TestCancellationAbortsTheUpstreamAtOnce: a client that hangs up closes the
// upstream connection within 100 ms; the partial usage is billed (the
// upstream's figure when it sent one, else the estimate) and settled, and the
// record says cancelled.
func TestCancellationAbortsTheUpstreamAtOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		usage     string // a usage object the upstream sends with its first chunk
		estimated bool

		onHandlers int // StreamsOnHandlers: 0 keeps it on its handler, -1 detaches it
	}{
		{"no upstream usage", "", true, 0},
		{"upstream usage", `,"usage":{"prompt_tokens":11,"completion_tokens":3,"total_tokens":14}`, false, 0},
		{"no upstream usage, detached", "", true, -1},
		{"upstream usage, detached", `,"usage":{"prompt_tokens":11,"completion_tokens":3,"total_tokens":14}`, false, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var closedAt atomic.Int64
			up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				rc := http.NewResponseController(w)
				fmt.Fprintf(w, `data: {"id":"u","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"first "}}]%s}`+"\n\n", tc.usage)
				_ = rc.Flush()
				// Three more chunks at once, then a long silence: the hang-up
				// must reach the upstream without waiting for a write to fail.
				for i := 0; ; i++ {
					pause := time.Duration(0)
					if i >= 3 {
						pause = time.Second
					}
					select {
					case <-r.Context().Done(): // net/http cancels it when the connection closes
						closedAt.Store(time.Now().UnixNano())
						return
					case <-time.After(pause):
					}
					fmt.Fprint(w, textEvent(fmt.Sprintf("w%d ", i)))
					_ = rc.Flush()
				}
			})
			e := setupWith(t, map[string]http.Handler{"flaky": up}, func(o *Options) { o.StreamsOnHandlers = tc.onHandlers })
			keyID, key := e.newKey(`{"name":"limited","limit":5}`)
			req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(leaky))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			r := sse.NewReader(resp.Body)
			for range 4 {
				_, err := r.Next()
				require.NoError(t, err)
			}
			hungUp := time.Now()
			require.NoError(t, resp.Body.Close())
			within(t, 2*time.Second, func() bool { return closedAt.Load() != 0 }, "the upstream must see its connection closed")
			lag := time.Duration(closedAt.Load() - hungUp.UnixNano())
			t.Logf("the upstream saw the hang-up %s after the client", lag)
			require.Less(t, lag, 100*time.Millisecond)

			g := e.waitGeneration(resp.Header.Get("X-Generation-Id"))
			require.True(t, g.Cancelled)
			require.Equal(t, tc.estimated, g.UsageEstimated)
			if tc.estimated {
				require.Positive(t, g.CompletionTokens)
			} else {
				require.Equal(t, 11, g.PromptTokens)
				require.Equal(t, 3, g.CompletionTokens)
			}
			require.True(t, g.Cost.IsPositive())
			spent, reserved := e.ledger(keyID, "")
			require.True(t, spent.Equal(g.Cost), "the budget is settled with the billed cost: %s, want %s", spent, g.Cost)
			require.True(t, reserved.IsZero(), "no hold is left: %s", reserved)
		})
	}
}

// TestKeepAliveCommentsThroughSilences: while the upstream is silent, before
// its first byte and between chunks, the client gets SSE comments; clients
// stream through them, and an upstream's own comments never become data.
func TestKeepAliveCommentsThroughSilences(t *testing.T) {
	t.Parallel()
	up := script{400 * time.Millisecond, ": OPENROUTER PROCESSING\n\n", textEvent("slow "), 350 * time.Millisecond,
		textEvent("but "), ":comment\r\n\r\n", textEvent("sure"), stopEvent, "data: [DONE]\n\n"}
	e := setupWith(t, map[string]http.Handler{"flaky": up}, func(o *Options) { o.KeepAlive = 100 * time.Millisecond })
	resp := e.streamBody(context.Background(), leaky)
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	text := string(raw)
	first := strings.Index(text, "data:")
	require.Greater(t, strings.Count(text[:first], ": PERPETUO PROCESSING\n\n"), 1, "keep-alives before the first chunk: %q", text)
	between := text[strings.Index(text, "slow"):strings.Index(text, "but")]
	require.Contains(t, between, ": PERPETUO PROCESSING\n\n", "keep-alives between chunks")
	require.NotContains(t, text, "OPENROUTER", "the upstream's comments are dropped")
	content := ""
	for _, ev := range events(t, raw) {
		if ev.IsDone() {
			continue
		}
		require.True(t, gjson.ValidBytes(ev.Data), "every data event is JSON: %q", ev.Data)
		content += gjson.GetBytes(ev.Data, "choices.0.delta.content").String()
	}
	require.Equal(t, "slow but sure", content)

	stream := e.openai.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "test/leaky", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}})
	defer stream.Close()
	content = ""
	for stream.Next() {
		if c := stream.Current(); len(c.Choices) > 0 {
			content += c.Choices[0].Delta.Content
		}
	}
	require.NoError(t, stream.Err())
	require.Equal(t, "slow but sure", content)
}

// TestKeepAliveKeepsFallbackOpen: keep-alives may send the headers before
// any chunk; the request still falls back until the first data event, and
// when nothing answers the error comes in-band (the status is already 200).
func TestKeepAliveKeepsFallbackOpen(t *testing.T) {
	t.Parallel()
	hung := mockupstream.New(mockupstream.Config{TTFT: 5 * time.Second})
	e := setupWith(t, map[string]http.Handler{"flaky": hung}, func(o *Options) {
		o.KeepAlive, o.FirstByteTimeout = 50*time.Millisecond, 400*time.Millisecond
	})
	status, hdr, raw := e.postRaw("/v1/chat/completions",
		`{"model":"test/duo","provider":{"order":["flaky","steady"]},"stream":true,"messages":[{"role":"user","content":"fell back"}]}`)
	require.Equal(t, 200, status)
	require.Contains(t, string(raw), ": PERPETUO PROCESSING")
	content := ""
	evs := events(t, raw)
	for _, ev := range evs[:len(evs)-1] {
		content += gjson.GetBytes(ev.Data, "choices.0.delta.content").String()
	}
	require.Equal(t, "fell back", content)
	require.True(t, evs[len(evs)-1].IsDone())
	g := e.generation(hdr.Get("X-Generation-Id"))
	require.Equal(t, "steady", *g.ProviderName)
	require.Equal(t, "timeout", string(*g.Attempts[0].ErrorType))

	status, hdr, raw = e.postRaw("/v1/chat/completions",
		`{"model":"test/duo","provider":{"order":["flaky"],"allow_fallbacks":false},"stream":true,"messages":[{"role":"user","content":"x"}]}`)
	require.Equal(t, 200, status, "keep-alives went out: the status was sent")
	evs = events(t, raw)
	require.Len(t, evs, 3, "%s", raw)
	require.Equal(t, "timeout", gjson.GetBytes(evs[0].Data, "error.metadata.error_type").String())
	require.Equal(t, "error", gjson.GetBytes(evs[0].Data, "choices.0.finish_reason").String())
	require.Equal(t, "test/duo", gjson.GetBytes(evs[0].Data, "model").String())
	require.Equal(t, int64(0), gjson.GetBytes(evs[1].Data, "usage.completion_tokens").Int())
	require.True(t, evs[2].IsDone())
	g = e.generation(hdr.Get("X-Generation-Id"))
	require.Equal(t, 200, g.Status)
	require.Equal(t, "timeout", string(*g.ErrorType))
	require.Equal(t, "error", *g.FinishReason)
}

// toolCallStream is how OpenAI streams a tool call: the id and name first,
// then the arguments in fragments that split JSON tokens anywhere.
var toolCallStream = script{
	chunkEvent(`{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":""}}]}`),
	chunkEvent(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"loc"}}]}`),
	chunkEvent(`{"tool_calls":[{"index":0,"function":{"arguments":"ation\": \"Paris, Fr"}}]}`),
	chunkEvent(`{"tool_calls":[{"index":0,"function":{"arguments":"ance\", \"unit\": \"c\\u00b0\"}"}}]}`),
	chunkEvent(`{"tool_calls":[{"index":1,"id":"call_def","type":"function","function":{"name":"get_time","arguments":"{}"}}]}`),
	`data: {"id":"up-1","object":"chat.completion.chunk","created":1700000000,"model":"upstream-model","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}` + "\n\n",
	"data: [DONE]\n\n",
}

// TestToolCallsAndReasoningStreamThroughIntact: tool-call fragments,
// reasoning deltas and refusals are relayed unchanged, reassemble in
// openai-go exactly as sent, and count toward the usage estimate.
func TestToolCallsAndReasoningStreamThroughIntact(t *testing.T) {
	t.Parallel()
	reasoning := script{
		chunkEvent(`{"role":"assistant","reasoning":"Let me think","reasoning_details":[{"type":"reasoning.text","text":"Let me think","index":0}]}`),
		chunkEvent(`{"reasoning":" about it.","reasoning_details":[{"type":"reasoning.text","text":" about it.","index":0}]}`),
		chunkEvent(`{"refusal":"I can't share that."}`),
		chunkEvent(`{"content":"Done."}`),
		stopEvent, "data: [DONE]\n\n",
	}
	e := setup(t, map[string]http.Handler{"flaky": toolCallStream, "steady": reasoning})

	stream := e.openai.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "test/leaky", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("weather?")}})
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	require.NoError(t, stream.Err())
	calls := acc.Choices[0].Message.ToolCalls
	require.Len(t, calls, 2)
	require.Equal(t, "call_abc", calls[0].ID)
	require.Equal(t, "get_weather", calls[0].Function.Name)
	require.Equal(t, `{"location": "Paris, France", "unit": "c\u00b0"}`, calls[0].Function.Arguments, "the escape as sent")
	require.Equal(t, "call_def", calls[1].ID)
	require.Equal(t, "{}", calls[1].Function.Arguments)
	require.Equal(t, "tool_calls", acc.Choices[0].FinishReason)

	// Raw: every relayed choice is the upstream's, byte for byte.
	for _, tc := range []struct {
		body     string
		upstream script
	}{
		{leaky, toolCallStream},
		{`{"model":"test/duo","provider":{"order":["steady"]},"stream":true,"messages":[{"role":"user","content":"x"}]}`, reasoning},
	} {
		_, hdr, raw := e.postRaw("/v1/chat/completions", tc.body)
		var sent []string
		for _, step := range tc.upstream {
			if s, ok := step.(string); ok && !strings.Contains(s, "[DONE]") {
				sent = append(sent, gjson.Get(strings.TrimPrefix(strings.TrimSpace(s), "data: "), "choices").Raw)
			}
		}
		evs := events(t, raw)
		var got []string
		generated := 0
		for _, ev := range evs[:len(evs)-2] { // without the usage chunk and [DONE]
			got = append(got, gjson.GetBytes(ev.Data, "choices").Raw)
			d := gjson.GetBytes(ev.Data, "choices.0.delta")
			generated += len(d.Get("content").Str) + len(d.Get("reasoning").Str) + len(d.Get("refusal").Str)
			for _, c := range d.Get("tool_calls").Array() {
				generated += len(c.Get("function.name").Str) + len(c.Get("function.arguments").Str)
			}
		}
		require.Equal(t, sent, got)
		g := e.generation(hdr.Get("X-Generation-Id"))
		require.True(t, g.UsageEstimated, "the upstream sent no usage")
		require.Equal(t, (generated+3)/4, g.TokensCompletion, "the estimate counts everything generated, reasoning and tool calls included")
	}
}

// TestNonStreamingFailureAfterPartialOutput: an upstream that answers 200
// with partial output and an error is relayed as a 200 whose choice
// finishes with "error" and carries the error, classified and recorded.
func TestNonStreamingFailureAfterPartialOutput(t *testing.T) {
	t.Parallel()
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"up","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,`+
			`"message":{"role":"assistant","content":"The first half"},"finish_reason":"error",`+
			`"error":{"code":502,"message":"upstream secret detail","metadata":{"raw":"x"}}}],`+
			`"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}`)
	})
	e := setup(t, map[string]http.Handler{"flaky": up})
	status, hdr, raw := e.postRaw("/v1/chat/completions", `{"model":"test/leaky","messages":[{"role":"user","content":"x"}]}`)
	require.Equal(t, 200, status, "%s", raw)
	doc := gjson.ParseBytes(raw)
	require.Equal(t, "The first half", doc.Get("choices.0.message.content").String())
	require.Equal(t, "error", doc.Get("choices.0.finish_reason").String())
	require.Equal(t, "provider_unavailable", doc.Get("choices.0.error.metadata.error_type").String())
	require.Equal(t, int64(502), doc.Get("choices.0.error.code").Int())
	require.NotContains(t, string(raw), "secret detail", "the upstream's own text is not relayed")
	require.Equal(t, int64(3), doc.Get("usage.completion_tokens").Int())
	g := e.generation(hdr.Get("X-Generation-Id"))
	require.Equal(t, "error", *g.FinishReason)
	require.Equal(t, "provider_unavailable", string(*g.ErrorType))
	require.Equal(t, 3, g.TokensCompletion)
}

// TestAChunkWithACommentBehindItIsNotHeld: an upstream that sends a chunk
// and, in the same write, a comment, then waits, gets that chunk to the
// client at once, on the handler and detached. The relay holds its flush
// only while the next event is already read; a comment is not one, and
// waiting on the upstream behind it would keep the chunk in the gateway.
func TestAChunkWithACommentBehindItIsNotHeld(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		onHandlers int
	}{{"on the handler", 0}, {"detached", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			seen := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
			var held atomic.Int32
			up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				rc := http.NewResponseController(w)
				for i, text := range []string{"a ", "b "} { // the first chunk, then a later one
					fmt.Fprint(w, textEvent(text)+": keep-alive\n\n")
					_ = rc.Flush()
					select {
					case <-seen[i]:
					case <-time.After(5 * time.Second): // far below the gateway's 15 s keep-alive
						held.Add(1)
					case <-r.Context().Done():
						return
					}
				}
				fmt.Fprint(w, textEvent("c ")+stopEvent+"data: [DONE]\n\n")
			})
			e := setupWith(t, map[string]http.Handler{"flaky": up}, func(o *Options) { o.StreamsOnHandlers = tc.onHandlers })
			resp := e.streamBody(context.Background(), leaky)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			r := sse.NewReader(resp.Body)
			var text strings.Builder
			for {
				ev, err := r.Next()
				require.NoError(t, err)
				if ev.IsDone() {
					break
				}
				text.WriteString(gjson.GetBytes(ev.Data, "choices.0.delta.content").String())
				switch text.String() {
				case "a ":
					close(seen[0])
				case "a b ":
					close(seen[1])
				}
			}
			require.Equal(t, "a b c ", text.String())
			require.Zero(t, held.Load(), "a chunk waited in the gateway for the upstream's next write")
		})
	}
}
