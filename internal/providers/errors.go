package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/egress"
	"github.com/perpetuo/perpetuo/internal/sse"
)

// Error is an upstream failure: what the upstream answered (Status 0 when no
// answer arrived), what the client should see, and whether another endpoint
// may succeed where this one failed.
type Error struct {
	Status    int
	Client    *apierr.Error
	Retryable bool
	// Class says whether the provider may bill the attempt: NotSent,
	// Refused or Uncertain ("" is Uncertain).
	Class string
}

// Attempt classes: what a failed attempt means for the provider's bill.
const (
	NotSent   = "not_sent"  // it never reached the provider (no connection, address refused, no base URL)
	Refused   = "refused"   // the provider answered with an error status: nothing was generated
	Uncertain = "uncertain" // sent, then timed out, cut off or answered with garbage: it may be billed
)

// ClassOf is the class of a failed attempt's error.
func ClassOf(err error) string {
	var pe *Error
	if errors.As(err, &pe) && pe.Class != "" {
		return pe.Class
	}
	return Uncertain
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("upstream status %d: %v", e.Status, e.Client)
}

// Unwrap exposes the client-facing error.
func (e *Error) Unwrap() error { return e.Client }

// classifyStatus turns an upstream error response to c into an *Error.
// Only the upstream's own error message is kept, scrubbed (see scrub), and
// only for client errors the caller must fix; raw bodies never reach the
// client.
func classifyStatus(c Call, status int, header http.Header, body []byte) *Error {
	e := &Error{Status: status, Class: Refused}
	p := c.Provider
	if status == http.StatusBadRequest && keyInvalid(body) {
		status = http.StatusUnauthorized // Google's answer to a wrong key
	}
	switch {
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		e.Client = rejected(p, body)
	case status == http.StatusRequestEntityTooLarge:
		e.Client = apierr.New(http.StatusRequestEntityTooLarge, apierr.PayloadTooLarge, "Provider %s says the request is too large; shorten the prompt.", p)
	case status == http.StatusTooManyRequests:
		e.Client = apierr.New(http.StatusTooManyRequests, apierr.RateLimitExceeded, "Provider %s is rate limiting %s; retry later or add a fallback provider.", p, whose(c))
		e.Client.RetryAfter = retryAfter(header)
		e.Retryable = true
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Client = credentialRejected(c, status)
		e.Retryable = true
	case status == http.StatusRequestTimeout || status == http.StatusGatewayTimeout:
		e.Client = apierr.New(http.StatusGatewayTimeout, apierr.Timeout, "Provider %s timed out; retry, or allow fallbacks.", p)
		e.Retryable = true
	case status == http.StatusServiceUnavailable || status == 529:
		e.Client = apierr.New(http.StatusServiceUnavailable, apierr.ProviderOverloaded, "Provider %s is overloaded; retry later or allow fallbacks.", p)
		e.Retryable = true
	case status >= 500:
		e.Client = apierr.New(http.StatusBadGateway, apierr.ProviderUnavailable, "Provider %s failed (status %d); retry, or allow fallbacks.", p, status)
		e.Retryable = true
	default:
		e.Client = apierr.New(http.StatusBadGateway, apierr.ProviderError, "Provider %s answered with unexpected status %d; retry, or allow fallbacks.", p, status)
		e.Retryable = true
	}
	if code := providerCode(body); code != "" {
		e.Client = e.Client.With("provider_code", code)
	}
	return e
}

// keyInvalid reports Google's 400 for a wrong API key (reason
// API_KEY_INVALID in the error's details).
func keyInvalid(body []byte) bool {
	for _, d := range gjson.GetBytes(body, "error.details").Array() {
		if d.Get("reason").String() == "API_KEY_INVALID" {
			return true
		}
	}
	return false
}

// maxProviderCode bounds the upstream error code passed to the client.
const maxProviderCode = 64

// providerCode is the upstream's own error code (OpenAI's error.code, else
// error.type; a numeric code as its digits), when it is a short token: the
// code is an identifier, never free text, so anything else is dropped.
func providerCode(body []byte) string {
	var code string
	for _, r := range gjson.GetManyBytes(body, "error.code", "error.type") {
		if r.Type == gjson.String || r.Type == gjson.Number {
			code = r.String()
		}
		if code != "" {
			break
		}
	}
	if len(code) > maxProviderCode {
		return ""
	}
	for _, c := range []byte(code) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':') {
			return ""
		}
	}
	return code
}

// rejected is a 400 or 422: the request itself is at fault. The upstream's
// reason comes last, after a fixed text, so a reader sees where Perpetuo's
// words end and the (scrubbed) upstream's begin.
func rejected(provider string, body []byte) *apierr.Error {
	msg := upstreamMessage(body)
	reason := orDefault(scrub(msg), "none given")
	if isContextLength(body, msg) {
		return apierr.New(http.StatusBadRequest, apierr.ContextLengthExceeded,
			"Provider %s rejected the request as too long for the model; shorten the messages or lower max_tokens. Its reason: %s", provider, reason)
	}
	return apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
		"Provider %s rejected the request; fix it before sending it again. Its reason: %s", provider, reason)
}

// credentialRejected is a 401 or 403: whoever configured the credential
// must fix it, and for a workspace's own credential (BYOK) that is not the
// operator.
func credentialRejected(c Call, status int) *apierr.Error {
	if c.BYOK {
		return apierr.New(http.StatusBadGateway, apierr.ProviderError,
			"Provider %s rejected the workspace's own credential for it (status %d); a workspace admin must fix or replace that credential.", c.Provider, status)
	}
	return apierr.New(http.StatusBadGateway, apierr.ProviderError,
		"Provider %s rejected the operator's credential (status %d); an operator must fix the provider key.", c.Provider, status)
}

// whose names the credential c was made with.
func whose(c Call) string {
	if c.BYOK {
		return "the workspace's own credential"
	}
	return "the operator's credential"
}

// transportError classifies a failure before any answer arrived: no
// connection (refused, no such host, TLS), or a connection closed before the
// response headers.
func transportError(ctx context.Context, provider string, err error) *Error {
	var blocked *egress.BlockedError
	if errors.As(err, &blocked) {
		// Retryable: another candidate may have a base URL that is fine.
		return &Error{Client: blockedAddress(provider).WithCause(err), Retryable: true, Class: NotSent}
	}
	class := Uncertain // the request may have been written
	if dialFailed(err) {
		class = NotSent
	}
	if timedOut(ctx, err) {
		return &Error{Client: apierr.New(http.StatusGatewayTimeout, apierr.Timeout,
			"Provider %s did not answer in time; retry, or allow fallbacks.", provider).WithCause(err), Retryable: true, Class: class}
	}
	if hungUp(err) {
		return &Error{Client: apierr.New(http.StatusBadGateway, apierr.ProviderUnavailable,
			"Provider %s closed the connection without answering; retry, or allow fallbacks.", provider).WithCause(err), Retryable: true, Class: class}
	}
	return &Error{Client: apierr.New(http.StatusBadGateway, apierr.ProviderUnavailable,
		"Provider %s could not be reached; retry, or allow fallbacks.", provider).WithCause(err), Retryable: true, Class: class}
}

// dialFailed reports a failure to connect (refused, no such host, a dial
// timeout): nothing of the request left this process.
func dialFailed(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// answerError classifies a failure while reading an answer whose headers
// (status) had arrived: the upstream went silent, cut the answer off, or
// sent something no parser accepts.
func answerError(ctx context.Context, provider string, status int, err error) *Error {
	switch {
	case timedOut(ctx, err):
		return &Error{Status: status, Client: apierr.New(http.StatusGatewayTimeout, apierr.Timeout,
			"Provider %s stopped answering before it finished; retry, or allow fallbacks.", provider).WithCause(err), Retryable: true, Class: Uncertain}
	case errors.Is(err, sse.ErrLineTooLong) || errors.Is(err, sse.ErrEventTooLong):
		return &Error{Status: status, Client: malformed(provider).WithCause(err), Retryable: true, Class: Uncertain}
	default:
		return &Error{Status: status, Client: cutOff(provider).WithCause(err), Retryable: true, Class: Uncertain}
	}
}

func timedOut(ctx context.Context, err error) bool {
	return ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) || isTimeout(err)
}

// hungUp reports a connection the upstream closed or reset after it was
// made: it was reached, and gave no answer.
func hungUp(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func upstreamMessage(body []byte) string {
	for _, at := range []string{"error.message", "message", "detail"} {
		switch v := gjson.GetBytes(body, at); {
		case v.Type == gjson.String:
			return v.Str
		case v.IsObject() && v.Get("detail").IsArray():
			return validationDetail(v.Get("detail"))
		case v.IsArray():
			return validationDetail(v)
		}
	}
	return ""
}

// validationDetail reads a FastAPI/pydantic validation error list (Mistral's
// and vLLM's 422s) as "stream_options: Extra inputs are not permitted",
// naming each field and rule but never the input it quotes.
func validationDetail(list gjson.Result) string {
	var parts []string
	for _, d := range list.Array() {
		var loc []string
		for _, l := range d.Get("loc").Array() {
			if l.String() != "body" {
				loc = append(loc, l.String())
			}
		}
		parts = append(parts, strings.Join(loc, ".")+": "+d.Get("msg").String())
	}
	return strings.Join(parts, "; ")
}

func isContextLength(body []byte, msg string) bool {
	code := gjson.GetBytes(body, "error.code").String()
	lower := strings.ToLower(msg)
	return code == "context_length_exceeded" || strings.Contains(lower, "context length") ||
		strings.Contains(lower, "maximum context") || strings.Contains(lower, "prompt is too long") // Anthropic's
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
