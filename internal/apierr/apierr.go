// Package apierr is Perpetuo's error taxonomy: every error a client can see is
// an *Error with an HTTP status and one stable type from the catalog in
// api/openapi.yaml (ErrorType). Domain packages return these; the HTTP layer
// renders them with Envelope, so the envelope is built in exactly one place.
package apierr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Type is a stable, snake_case error type from the spec's ErrorType enum.
type Type string

// The error catalog. Keep in sync with ErrorType in api/openapi.yaml and
// docs/errors.md; a test fails when they drift.
const (
	InvalidRequest        Type = "invalid_request"
	ContextLengthExceeded Type = "context_length_exceeded"
	Authentication        Type = "authentication"
	BudgetExceeded        Type = "budget_exceeded"
	BudgetUnavailable     Type = "budget_unavailable"
	ModelNotAllowed       Type = "model_not_allowed"
	ProviderNotAllowed    Type = "provider_not_allowed"
	PermissionDenied      Type = "permission_denied"
	NotFound              Type = "not_found"
	NoEndpoints           Type = "no_endpoints"
	PrivacyRestricted     Type = "privacy_restricted"
	MethodNotAllowed      Type = "method_not_allowed"
	Conflict              Type = "conflict"
	Timeout               Type = "timeout"
	PayloadTooLarge       Type = "payload_too_large"
	RateLimitExceeded     Type = "rate_limit_exceeded"
	ProviderError         Type = "provider_error"
	ProviderUnavailable   Type = "provider_unavailable"
	ProviderOverloaded    Type = "provider_overloaded"
	Unavailable           Type = "unavailable"
	Internal              Type = "internal_error"
	Interrupted           Type = "interrupted"
	NotSupported          Type = "not_supported"
)

// Types lists the whole catalog, in the spec's order.
var Types = []Type{
	InvalidRequest, ContextLengthExceeded, Authentication, BudgetExceeded, BudgetUnavailable, ModelNotAllowed,
	ProviderNotAllowed, PermissionDenied, NotFound, NoEndpoints, PrivacyRestricted,
	MethodNotAllowed, Conflict, Timeout, PayloadTooLarge, RateLimitExceeded, ProviderError,
	ProviderUnavailable, ProviderOverloaded, Unavailable, Internal, Interrupted, NotSupported,
}

// Error is an error a client may see: status, type, a message that says what
// happened and what to do, and type-specific metadata. Its message must never
// hold secrets, prompt text or raw upstream bodies.
type Error struct {
	Status   int
	Type     Type
	Message  string
	Metadata map[string]any
	// RetryAfter, when positive, is sent as the Retry-After header (seconds).
	RetryAfter int
	// cause is kept for logs only; it never reaches the client.
	cause error
}

// Error implements error.
func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%s (%d): %s: %v", e.Type, e.Status, e.Message, e.cause)
	}
	return fmt.Sprintf("%s (%d): %s", e.Type, e.Status, e.Message)
}

// Unwrap returns the internal cause, for logs and errors.Is.
func (e *Error) Unwrap() error { return e.cause }

// Is matches another *Error of the same type, so callers can write
// errors.Is(err, &apierr.Error{Type: apierr.NotFound}).
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Type == e.Type
}

// New builds an error with a formatted message.
func New(status int, typ Type, format string, args ...any) *Error {
	return &Error{Status: status, Type: typ, Message: fmt.Sprintf(format, args...)}
}

// With returns a copy of e with the metadata key set.
func (e *Error) With(key string, value any) *Error {
	c := *e
	c.Metadata = make(map[string]any, len(e.Metadata)+1)
	for k, v := range e.Metadata {
		c.Metadata[k] = v
	}
	c.Metadata[key] = value
	return &c
}

// WithRetryAfter returns a copy of e that sends Retry-After: seconds.
func (e *Error) WithRetryAfter(seconds int) *Error {
	c := *e
	c.RetryAfter = seconds
	return &c
}

// WithCause returns a copy of e that keeps cause for logs.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.cause = cause
	return &c
}

// From converts any error to an *Error. Unknown errors become a 500 whose
// message says nothing of the cause (5xx never echo err.Error()).
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return (&Error{
		Status:  http.StatusInternalServerError,
		Type:    Internal,
		Message: "Perpetuo hit an internal error; retry, and report it with the X-Request-Id if it persists.",
	}).WithCause(err)
}

// envelope is the wire form: {"error": {"code", "type", "message", "metadata"}}.
type envelope struct {
	Error body `json:"error"`
}

type body struct {
	Code     int            `json:"code"`
	Type     Type           `json:"type"`
	Message  string         `json:"message"`
	Metadata map[string]any `json:"metadata"`
}

// Body returns the inner error object ({"code", "type", "message", "metadata"}),
// used on its own inside in-band stream error chunks.
func (e *Error) Body() any {
	md := make(map[string]any, len(e.Metadata)+1)
	for k, v := range e.Metadata {
		md[k] = v
	}
	md["error_type"] = e.Type
	return body{Code: e.Status, Type: e.Type, Message: e.Message, Metadata: md}
}

// Envelope renders the error as the JSON envelope every route uses.
func (e *Error) Envelope() []byte {
	b, err := json.Marshal(envelope{Error: e.Body().(body)})
	if err != nil { // only unmarshalable metadata can get here; drop it
		b, _ = json.Marshal(envelope{Error: body{Code: e.Status, Type: e.Type, Message: e.Message,
			Metadata: map[string]any{"error_type": e.Type}}})
	}
	return b
}
