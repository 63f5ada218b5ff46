package providers

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/perpetuo/perpetuo/internal/apierr"
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
	out, err := UpstreamBody(in, "up-model", true)
	require.NoError(t, err)
	require.JSONEq(t, `{"model":"up-model","messages":[],"vendor":1,"stream":true,"stream_options":{"include_usage":true}}`, string(out))
	out, err = UpstreamBody(in, "up-model", false)
	require.NoError(t, err)
	require.JSONEq(t, `{"model":"up-model","messages":[],"vendor":1,"stream":false}`, string(out))
}
