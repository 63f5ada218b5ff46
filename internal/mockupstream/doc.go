// Package mockupstream is a fake OpenAI-compatible provider speaking the
// real Chat Completions wire format, streaming and non-streaming, errors
// included. Tests, benchmarks, the `perpetuo mock-upstream` command and the
// offline demo (model mock/echo) use it.
//
// New serves POST /v1/chat/completions and GET /v1/models. The reply echoes
// the words of the last user message ("Hello from the Perpetuo mock
// upstream." when it has none), truncated to max_tokens words, and usage
// counts are deterministic: each message costs its whitespace-separated
// words plus 4 prompt tokens, and each emitted word is one completion token.
//
// It plays a small model, the same one NewAnthropic plays (see play), so
// that one conformance suite checks every adapter against the same
// answers: offered tools are called (tool_choice "none" forbids, a named
// function forces), tool results are answered "Tool said: ...", images
// are acknowledged ("[image url <url>]", "[image base64 <type>]"),
// reasoning (reasoning or reasoning_effort) adds "Considering ..." as
// reasoning with its reasoning_tokens, stop sequences end the text, and a
// repeated prompt prefix of at least 32 tokens is reported as
// cached_tokens, as OpenAI's automatic prompt cache does.
//
// Config sets the default behaviour (latency, time to first token, pacing,
// random failures, mid-stream aborts, API key). A request can override it,
// most specific last:
//
// The model name, which a gateway catalog entry can choose (matched on its
// suffix, so "mock/fail-429" works too):
//   - fail-429, fail-500, fail-503 (any fail-<status>, 400 to 599): always
//     fail with that status before any output;
//   - midstream-fail: streams abort after 3 content chunks;
//   - midstream-error: streams send an in-band error (OpenRouter's shape,
//     code 503) after 3 content chunks, then end;
//   - slow: 2s time to first token;
//   - any other model behaves normally.
//
// Request headers, for direct calls (a gateway does not forward them):
//   - X-Mock-Fail: <status> fails the request with that status;
//   - X-Mock-Mid-Stream-Fail-After: <n> aborts the stream after n chunks;
//   - X-Mock-TTFT: <duration> and X-Mock-Latency: <duration>, in
//     time.ParseDuration syntax, replace Config.TTFT and Config.Latency.
//
// A failure answers with the status and OpenAI's error body; 429 also sets
// "Retry-After: 1". A mid-stream abort panics with http.ErrAbortHandler
// once the chunks are flushed, so net/http cuts the connection without the
// final chunk or "data: [DONE]" and the client sees an unexpected EOF;
// callers invoking the handler outside net/http must recover that panic.
package mockupstream
