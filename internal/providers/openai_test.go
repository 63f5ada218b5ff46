package providers

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
	"go.uber.org/goleak"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/mockupstream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func requireUpstreamError(t *testing.T, err error, status int, typ apierr.Type, retryable bool) {
	t.Helper()
	var pe *Error
	require.True(t, errors.As(err, &pe), "%v", err)
	require.Equal(t, status, pe.Status)
	require.Equal(t, typ, pe.Client.Type)
	require.Equal(t, retryable, pe.Retryable)
}

func TestUpstreamStatusesAreClassified(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status    int
		body      string
		client    int
		typ       apierr.Type
		retryable bool
	}{
		{400, `{"error":{"message":"bad temperature"}}`, 400, apierr.InvalidRequest, false},
		{400, `{"error":{"message":"This model's maximum context length is 8192 tokens","code":"context_length_exceeded"}}`, 400, apierr.ContextLengthExceeded, false},
		{401, `{}`, 502, apierr.ProviderError, true},
		{404, `{}`, 502, apierr.ProviderError, true},
		{408, `{}`, 504, apierr.Timeout, true},
		{413, `{}`, 413, apierr.PayloadTooLarge, false},
		{429, `{}`, 429, apierr.RateLimitExceeded, true},
		{500, `{}`, 502, apierr.ProviderUnavailable, true},
		{503, `{}`, 503, apierr.ProviderOverloaded, true},
		{529, `{}`, 503, apierr.ProviderOverloaded, true},
	}
	for _, tc := range cases {
		e := classifyStatus(Call{Provider: "p"}, tc.status, http.Header{"Retry-After": {"7"}}, []byte(tc.body))
		require.Equal(t, tc.client, e.Client.Status, "%d", tc.status)
		require.Equal(t, tc.typ, e.Client.Type, "%d", tc.status)
		require.Equal(t, tc.retryable, e.Retryable, "%d", tc.status)
		require.NotContains(t, e.Client.Message, "{", "raw upstream bodies never reach the client")
		if tc.status == 429 {
			require.Equal(t, 7, e.Client.RetryAfter)
		}
	}
}

func TestUnreachableAndSlowUpstreams(t *testing.T) {
	t.Parallel()
	a := NewOpenAI(NewHTTPClient(), nil)
	// A closed port: nothing answers.
	ln := httptest.NewServer(http.NotFoundHandler())
	dead := ln.URL
	ln.Close()
	_, err := a.Complete(context.Background(), Call{Provider: "p", BaseURL: dead + "/v1", Body: []byte(`{}`)})
	requireUpstreamError(t, err, 0, apierr.ProviderUnavailable, true)

	slow := httptest.NewServer(mockupstream.New(mockupstream.Config{Latency: 2 * time.Second}))
	defer slow.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = a.Complete(ctx, Call{Provider: "p", BaseURL: slow.URL + "/v1", UpstreamModel: "echo",
		Body: []byte(`{"messages":[{"role":"user","content":"x"}]}`)})
	requireUpstreamError(t, err, 0, apierr.Timeout, true)
}

func TestUpstreamBodyStripsExtensions(t *testing.T) {
	t.Parallel()
	in := []byte(`{"model":"a/b","models":["a/b"],"provider":{},"strategy":"cheapest","session_id":"s","metadata":{},"usage":{},"transforms":[],"route":"x","stream_options":{"include_usage":false},"messages":[],"vendor":1}`)
	out, err := UpstreamBody(in, "up-model", true, catalog.Compat{})
	require.NoError(t, err)
	require.JSONEq(t, `{"model":"up-model","messages":[],"vendor":1,"stream":true,"stream_options":{"include_usage":true}}`, string(out))
	out, err = UpstreamBody(in, "up-model", false, catalog.Compat{})
	require.NoError(t, err)
	require.JSONEq(t, `{"model":"up-model","messages":[],"vendor":1,"stream":false}`, string(out))
}

// TestCompatAuthHeader: a provider that reads the key from its own header
// gets it there, as it is; sent as Bearer it refuses the call.
func TestCompatAuthHeader(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(mockupstream.NewCompatible(mockupstream.Config{APIKey: "k-1"}, mockupstream.Dialect{AuthHeader: "x-api-key"}))
	defer srv.Close()
	a := NewOpenAI(NewHTTPClient(), nil)
	c := Call{Provider: "p", BaseURL: srv.URL + "/v1", APIKey: "k-1", UpstreamModel: "echo",
		Body: []byte(`{"messages":[{"role":"user","content":"hi"}]}`), Compat: catalog.Compat{AuthHeader: "x-api-key"}}
	comp, err := a.Complete(context.Background(), c)
	require.NoError(t, err)
	require.Equal(t, "hi", gjson.GetBytes(comp.Body, "choices.0.message.content").String())
	c.Compat = catalog.Compat{}
	_, err = a.Complete(context.Background(), c)
	requireUpstreamError(t, err, 401, apierr.ProviderError, true)
}

// TestCompatStreamUsage: a provider declared to send no stream usage gets
// no stream_options (it would refuse them) and the stream still ends
// cleanly, without usage (the gateway estimates it); one declared to send
// it always gets none either and reports usage.
func TestCompatStreamUsage(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{catalog.StreamUsageNone, catalog.StreamUsageAlways} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(mockupstream.NewCompatible(mockupstream.Config{},
				mockupstream.Dialect{StreamUsage: mode, Forbid: []string{"stream_options"}}))
			defer srv.Close()
			st, err := NewOpenAI(NewHTTPClient(), nil).Stream(context.Background(), Call{Provider: "p", BaseURL: srv.URL + "/v1",
				UpstreamModel: "echo", Body: []byte(`{"messages":[{"role":"user","content":"a b"}],"stream_options":{"include_usage":true}}`),
				Compat: catalog.Compat{StreamUsage: mode}})
			require.NoError(t, err)
			msg, finish, _, hasUsage, err := streamed(t, st)
			require.NoError(t, err)
			require.Equal(t, "a b", msg["content"])
			require.Equal(t, "stop", finish)
			require.Equal(t, mode == catalog.StreamUsageAlways, hasUsage)
		})
	}
	in := []byte(`{"messages":[],"stream_options":{"include_usage":true}}`)
	out, err := UpstreamBody(in, "m", true, catalog.Compat{StreamUsage: catalog.StreamUsageNone})
	require.NoError(t, err)
	require.JSONEq(t, `{"model":"m","messages":[],"stream":true}`, string(out))
}

// TestValidationErrorsNameTheField: a pydantic-style 422 (Mistral's, vLLM's)
// reaches the client naming the field and the rule, never the input it
// quotes.
func TestValidationErrorsNameTheField(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(mockupstream.NewCompatible(mockupstream.Config{}, mockupstream.Dialect{Forbid: []string{"frequency_penalty"}}))
	defer srv.Close()
	_, err := NewOpenAI(NewHTTPClient(), nil).Complete(context.Background(), Call{Provider: "mistral", BaseURL: srv.URL + "/v1",
		UpstreamModel: "echo", Body: []byte(`{"messages":[{"role":"user","content":"secret-prompt"}],"frequency_penalty":0.123456}`)})
	requireUpstreamError(t, err, 422, apierr.InvalidRequest, false)
	var pe *Error
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "Provider mistral rejected the request; fix it before sending it again. Its reason: frequency_penalty: Extra inputs are not permitted", pe.Client.Message)
	require.NotContains(t, pe.Client.Message, "0.123456")
}

// TestMembersFindWhatGetFinds: the one-pass read of an answer's top-level
// members agrees with a gjson.Get per name, with members nested under the
// same names, repeated, escaped, missing, or a document that is no object;
// and it refuses what is not valid JSON, or no object.
func TestMembersFindWhatGetFinds(t *testing.T) {
	names := []string{"id", "choices", "usage", "error"}
	for _, doc := range []string{
		`{"choices":[{"id":"nested","finish_reason":"stop"}],"id":"chatcmpl-1","usage":{"prompt_tokens":3}}`,
		`{"id":"first","id":"second","choices":[],"choices":[1]}`,
		`{"\u0069d":"escaped","usage":{"error":{"message":"nested"}}}`,
		`{"object":"chat.completion"}`,
		`[{"id":"in an array"}]`,
		`{}`,
		`{"id":"x","choices":[}`,
	} {
		got, valid := members([]byte(doc), names...)
		require.Equal(t, gjson.Valid(doc) && gjson.Parse(doc).IsObject(), valid, doc)
		if !gjson.Valid(doc) {
			continue // refused: what was read before the error is not used
		}
		for i, n := range names {
			want := gjson.Get(doc, n)
			require.Equal(t, want.Exists(), got[i].Exists(), "%s in %s", n, doc)
			require.Equal(t, want.Raw, got[i].Raw, "%s in %s", n, doc)
		}
	}
}
