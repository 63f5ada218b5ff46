package mockupstream_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
)

func TestAPIKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		auth       string
		wantStatus int
		wantCode   any
	}{
		{"missing", "", http.StatusUnauthorized, nil},
		{"wrong", "Bearer nope", http.StatusUnauthorized, "invalid_api_key"},
		{"not bearer", "sk-test", http.StatusUnauthorized, "invalid_api_key"},
		{"right", "Bearer sk-test", http.StatusOK, nil},
	}
	srv := start(t, mockupstream.Config{APIKey: "sk-test"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var headers []string
			if tt.auth != "" {
				headers = []string{"Authorization", tt.auth}
			}
			resp := post(t, t.Context(), srv, chatBody("echo", "hi", ""), headers...)
			require.Equal(t, tt.wantStatus, resp.StatusCode)
			got := decode(t, resp)
			if tt.wantStatus == http.StatusOK {
				return
			}
			e := got["error"].(map[string]any)
			require.Equal(t, "invalid_request_error", e["type"])
			require.Equal(t, tt.wantCode, e["code"])
		})
	}
	t.Run("models", func(t *testing.T) {
		t.Parallel()
		resp, err := srv.Client().Get(srv.URL + "/v1/models")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
}

func TestLatency(t *testing.T) {
	t.Parallel()
	srv := start(t, mockupstream.Config{})
	begin := time.Now()
	resp := post(t, t.Context(), srv, chatBody("echo", "hi", ""), "X-Mock-Latency", "150ms")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.GreaterOrEqual(t, time.Since(begin), 150*time.Millisecond)
}

func TestCancelDuringLatency(t *testing.T) {
	t.Parallel()
	h, done := handlerDone(mockupstream.New(mockupstream.Config{Latency: time.Minute}))
	srv := startHandler(t, h)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/chat/completions",
		strings.NewReader(chatBody("echo", "hi", "")))
	require.NoError(t, err)
	_, err = srv.Client().Do(req) //nolint:bodyclose // the request fails
	require.ErrorIs(t, err, context.DeadlineExceeded)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("handler still waiting after the client went away")
	}
}

func TestRegisterFlags(t *testing.T) {
	t.Parallel()
	cfg := mockupstream.Config{FailureStatus: 503}
	fs := flagSet()
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{
		"-latency", "1s", "-ttft", "2s", "-tokens-per-second", "30.5", "-failure-rate", "0.25",
		"-mid-stream-fail-after", "4", "-api-key", "k", "-seed", "42",
	}))
	require.Equal(t, mockupstream.Config{
		Latency: time.Second, TTFT: 2 * time.Second, TokensPerSecond: 30.5, FailureRate: 0.25,
		FailureStatus: 503, MidStreamFailAfter: 4, APIKey: "k", Seed: 42,
	}, cfg)
}
