package mockupstream_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
)

func TestFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cfg        mockupstream.Config
		model      string
		headers    []string
		stream     bool
		wantStatus int
		wantType   string
		wantCode   any
	}{
		{name: "header 429", headers: []string{"X-Mock-Fail", "429"}, wantStatus: 429,
			wantType: "requests", wantCode: "rate_limit_exceeded"},
		{name: "header 500", headers: []string{"X-Mock-Fail", "500"}, wantStatus: 500, wantType: "server_error"},
		{name: "header 503 streaming", headers: []string{"X-Mock-Fail", "503"}, stream: true,
			wantStatus: 503, wantType: "server_error"},
		{name: "header 401", headers: []string{"X-Mock-Fail", "401"}, wantStatus: 401,
			wantType: "invalid_request_error", wantCode: "invalid_api_key"},
		{name: "model fail-429", model: "fail-429", wantStatus: 429, wantType: "requests",
			wantCode: "rate_limit_exceeded"},
		{name: "model fail-500 streaming", model: "fail-500", stream: true, wantStatus: 500, wantType: "server_error"},
		{name: "model fail-503", model: "fail-503", wantStatus: 503, wantType: "server_error"},
		{name: "model suffix", model: "mock/fail-503", wantStatus: 503, wantType: "server_error"},
		{name: "header beats model", model: "fail-503", headers: []string{"X-Mock-Fail", "500"},
			wantStatus: 500, wantType: "server_error"},
		{name: "failure rate defaults to 500", cfg: mockupstream.Config{FailureRate: 1}, wantStatus: 500,
			wantType: "server_error"},
		{name: "failure rate with status", cfg: mockupstream.Config{FailureRate: 1, FailureStatus: 429},
			stream: true, wantStatus: 429, wantType: "requests", wantCode: "rate_limit_exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := start(t, tt.cfg)
			model := tt.model
			if model == "" {
				model = "echo"
			}
			extra := ""
			if tt.stream {
				extra = `"stream":true`
			}
			resp := post(t, t.Context(), srv, chatBody(model, "hi", extra), tt.headers...)
			require.Equal(t, tt.wantStatus, resp.StatusCode)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			if tt.wantStatus == http.StatusTooManyRequests {
				require.Equal(t, "1", resp.Header.Get("Retry-After"))
			} else {
				require.Empty(t, resp.Header.Get("Retry-After"))
			}
			body := decode(t, resp)
			require.Len(t, body, 1)
			e := body["error"].(map[string]any)
			require.Len(t, e, 4)
			require.NotEmpty(t, e["message"])
			require.Equal(t, tt.wantType, e["type"])
			require.Nil(t, e["param"])
			require.Equal(t, tt.wantCode, e["code"])
		})
	}
}

func TestRateLimitBody(t *testing.T) {
	t.Parallel()
	srv := start(t, mockupstream.Config{})
	resp := post(t, t.Context(), srv, chatBody("fail-429", "hi", ""))
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.JSONEq(t, `{"error":{"message":"Rate limit reached for fail-429 in organization org-mock on requests `+
		`per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1s.","type":"requests","param":null,`+
		`"code":"rate_limit_exceeded"}}`, string(raw))
}

func TestFailureRateIsSeeded(t *testing.T) {
	t.Parallel()
	outcomes := func() []int {
		srv := start(t, mockupstream.Config{FailureRate: 0.5, Seed: 7})
		var statuses []int
		for range 30 {
			resp := post(t, t.Context(), srv, chatBody("echo", "hi", ""))
			_, _ = io.Copy(io.Discard, resp.Body)
			statuses = append(statuses, resp.StatusCode)
		}
		return statuses
	}
	first := outcomes()
	require.Equal(t, first, outcomes())
	require.Contains(t, first, http.StatusOK)
	require.Contains(t, first, http.StatusInternalServerError)
}
