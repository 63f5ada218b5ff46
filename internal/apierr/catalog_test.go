package apierr

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"
)

const (
	specPath = "../../api/openapi.yaml"
	docsPath = "../../docs/errors.md"
)

// specErrorTypes returns the ErrorType enum of the spec, in its order.
func specErrorTypes(t *testing.T) []Type {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(specPath)
	require.NoError(t, err)
	ref, ok := doc.Components.Schemas["ErrorType"]
	require.True(t, ok, "the spec has no ErrorType schema")
	require.NotNil(t, ref.Value)
	var out []Type
	for _, v := range ref.Value.Enum {
		s, ok := v.(string)
		require.True(t, ok, "ErrorType enum value %v is not a string", v)
		out = append(out, Type(s))
	}
	return out
}

func TestTypesMatchTheSpec(t *testing.T) {
	t.Parallel()
	require.Equal(t, specErrorTypes(t), Types,
		"apierr.Types and the ErrorType enum of api/openapi.yaml must list the same types in the same order")
}

func TestErrorsDocCoversEveryType(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(docsPath)
	require.NoError(t, err)
	doc := string(b)
	for _, typ := range Types {
		if !strings.Contains(doc, "`"+string(typ)+"`") {
			t.Errorf("docs/errors.md does not document %s: add a row for `%s` to its catalog table", typ, typ)
		}
	}
}

func TestTypesAreUnique(t *testing.T) {
	t.Parallel()
	seen := map[Type]bool{}
	for _, typ := range Types {
		require.False(t, seen[typ], "%s listed twice", typ)
		seen[typ] = true
	}
}

// wire decodes an envelope as a client would.
type wire struct {
	Error struct {
		Code     int            `json:"code"`
		Type     string         `json:"type"`
		Message  string         `json:"message"`
		Metadata map[string]any `json:"metadata"`
	} `json:"error"`
}

func decode(t *testing.T, b []byte) wire {
	t.Helper()
	var w wire
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&w), "%s", b)
	return w
}

func TestEnvelope(t *testing.T) {
	t.Parallel()
	e := New(http.StatusNotFound, NoEndpoints, "No endpoint can serve %s.", "a/b").
		With("excluded_by", []string{"credentials"})
	w := decode(t, e.Envelope())
	require.Equal(t, http.StatusNotFound, w.Error.Code, "code is the HTTP status")
	require.Equal(t, "no_endpoints", w.Error.Type)
	require.Equal(t, w.Error.Type, w.Error.Metadata["error_type"])
	require.Equal(t, "No endpoint can serve a/b.", w.Error.Message)
	require.Equal(t, []any{"credentials"}, w.Error.Metadata["excluded_by"], "extra metadata is kept")
	require.NotContains(t, e.Metadata, "error_type", "rendering must not modify the error")
}

func TestEnvelopeWithoutMetadata(t *testing.T) {
	t.Parallel()
	w := decode(t, New(http.StatusUnauthorized, Authentication, "Missing API key.").Envelope())
	require.Equal(t, 401, w.Error.Code)
	require.Equal(t, map[string]any{"error_type": "authentication"}, w.Error.Metadata,
		"metadata is always an object holding error_type")
}

func TestEnvelopeDropsUnmarshalableMetadata(t *testing.T) {
	t.Parallel()
	e := New(http.StatusBadRequest, InvalidRequest, "Bad.").With("bad", func() {})
	w := decode(t, e.Envelope())
	require.Equal(t, 400, w.Error.Code)
	require.Equal(t, "invalid_request", w.Error.Type)
	require.Equal(t, map[string]any{"error_type": "invalid_request"}, w.Error.Metadata)
}

func TestBodyIsTheInnerObject(t *testing.T) {
	t.Parallel()
	e := New(http.StatusBadGateway, ProviderUnavailable, "Provider p failed.").With("provider", "p")
	b, err := json.Marshal(e.Body())
	require.NoError(t, err)
	var inner map[string]any
	require.NoError(t, json.Unmarshal(b, &inner))
	require.EqualValues(t, 502, inner["code"])
	require.Equal(t, "provider_unavailable", inner["type"])
	md := inner["metadata"].(map[string]any)
	require.Equal(t, "provider_unavailable", md["error_type"])
	require.Equal(t, "p", md["provider"])
	require.NotContains(t, inner, "error", "Body is the object inside the envelope")
}

func TestWithCopies(t *testing.T) {
	t.Parallel()
	base := New(http.StatusBadRequest, InvalidRequest, "Bad.")
	a := base.With("field", "/a")
	b := a.With("field", "/b")
	require.Nil(t, base.Metadata)
	require.Equal(t, "/a", a.Metadata["field"])
	require.Equal(t, "/b", b.Metadata["field"])
}

func TestFromHidesUnknownCauses(t *testing.T) {
	t.Parallel()
	cause := errors.New("dial tcp 10.0.0.7:5432: password authentication failed for user perpetuo")
	e := From(cause)
	require.Equal(t, http.StatusInternalServerError, e.Status)
	require.Equal(t, Internal, e.Type)
	require.NotContains(t, e.Message, "10.0.0.7")
	require.NotContains(t, e.Message, "password")
	w := decode(t, e.Envelope())
	require.Equal(t, 500, w.Error.Code)
	require.Equal(t, "internal_error", w.Error.Type)
	require.NotContains(t, w.Error.Message, cause.Error())
	require.NotContains(t, string(e.Envelope()), "10.0.0.7", "the cause never reaches the wire")
	require.ErrorIs(t, e, cause, "the cause is kept for logs")
}

func TestFromKeepsAPIErrors(t *testing.T) {
	t.Parallel()
	orig := New(http.StatusTooManyRequests, RateLimitExceeded, "Slow down.")
	orig.RetryAfter = 3
	wrapped := errors.Join(errors.New("attempt 2"), orig)
	e := From(wrapped)
	require.Equal(t, orig, e)
	require.Equal(t, 3, e.RetryAfter)
	require.True(t, errors.Is(wrapped, &Error{Type: RateLimitExceeded}))
	require.False(t, errors.Is(wrapped, &Error{Type: Timeout}))
}
