package providers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/egress"
)

// Error is an upstream failure: what the upstream answered (Status 0 when no
// answer arrived), what the client should see, and whether another endpoint
// may succeed where this one failed.
type Error struct {
	Status    int
	Client    *apierr.Error
	Retryable bool
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("upstream status %d: %v", e.Status, e.Client)
}

// Unwrap exposes the client-facing error.
func (e *Error) Unwrap() error { return e.Client }

// classifyStatus turns an upstream error response into an *Error. Only the
// upstream's own error message is kept, and only for client errors the
// caller must fix; raw bodies never reach the client.
func classifyStatus(provider string, status int, header http.Header, body []byte) *Error {
	msg := upstreamMessage(body)
	e := &Error{Status: status}
	switch {
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		typ := apierr.InvalidRequest
		if isContextLength(body, msg) {
			typ = apierr.ContextLengthExceeded
		}
		e.Client = apierr.New(http.StatusBadRequest, typ, "Provider %s rejected the request: %s", provider, orDefault(msg, "no reason given"))
	case status == http.StatusRequestEntityTooLarge:
		e.Client = apierr.New(http.StatusRequestEntityTooLarge, apierr.PayloadTooLarge, "Provider %s says the request is too large; shorten the prompt.", provider)
	case status == http.StatusTooManyRequests:
		e.Client = apierr.New(http.StatusTooManyRequests, apierr.RateLimitExceeded, "Provider %s is rate limiting this workspace's credential; retry later or add a fallback provider.", provider)
		e.Client.RetryAfter = retryAfter(header)
		e.Retryable = true
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Client = apierr.New(http.StatusBadGateway, apierr.ProviderError, "Provider %s rejected the configured credential (status %d); an operator must fix the provider key.", provider, status)
		e.Retryable = true
	case status == http.StatusRequestTimeout || status == http.StatusGatewayTimeout:
		e.Client = apierr.New(http.StatusGatewayTimeout, apierr.Timeout, "Provider %s timed out; retry, or allow fallbacks.", provider)
		e.Retryable = true
	case status == http.StatusServiceUnavailable || status == 529:
		e.Client = apierr.New(http.StatusServiceUnavailable, apierr.ProviderOverloaded, "Provider %s is overloaded; retry later or allow fallbacks.", provider)
		e.Retryable = true
	case status >= 500:
		e.Client = apierr.New(http.StatusBadGateway, apierr.ProviderUnavailable, "Provider %s failed (status %d); retry, or allow fallbacks.", provider, status)
		e.Retryable = true
	default:
		e.Client = apierr.New(http.StatusBadGateway, apierr.ProviderError, "Provider %s answered with unexpected status %d.", provider, status)
		e.Retryable = true
	}
	return e
}

// transportError classifies a failure to get any answer.
func transportError(ctx context.Context, provider string, err error) *Error {
	var blocked *egress.BlockedError
	if errors.As(err, &blocked) {
		// Retryable: another candidate may have a base URL that is fine.
		return &Error{Client: blockedAddress(provider).WithCause(err), Retryable: true}
	}
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) || isTimeout(err) {
		return &Error{Client: apierr.New(http.StatusGatewayTimeout, apierr.Timeout,
			"Provider %s did not answer in time; retry, or allow fallbacks.", provider).WithCause(err), Retryable: true}
	}
	return &Error{Client: apierr.New(http.StatusBadGateway, apierr.ProviderUnavailable,
		"Provider %s could not be reached; retry, or allow fallbacks.", provider).WithCause(err), Retryable: true}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func upstreamMessage(body []byte) string {
	m := gjson.GetBytes(body, "error.message").String()
	if m == "" {
		m = gjson.GetBytes(body, "message").String()
	}
	if len(m) > 300 {
		m = m[:300] + "…"
	}
	return m
}

func isContextLength(body []byte, msg string) bool {
	code := gjson.GetBytes(body, "error.code").String()
	return code == "context_length_exceeded" || strings.Contains(strings.ToLower(msg), "context length") ||
		strings.Contains(strings.ToLower(msg), "maximum context")
}

func retryAfter(h http.Header) int {
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s > 0 {
		return s
	}
	return 1
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
