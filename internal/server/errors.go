package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/safetext"
	"github.com/perpetuo/perpetuo/internal/validation"
)

// writeError is the one place an error becomes a response: every handler,
// middleware and generated-code error hook calls it.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := apierr.From(err)
	if e.Status >= 500 {
		s.log.Error("request failed", "request_id", requestID(r.Context()), "type", e.Type, "err", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if r.Body != nil && r.Body != http.NoBody && rawBody(r.Context()) == nil {
		// Refused before its body was read: close rather than let net/http
		// read (up to 256 KB of) a body nobody wants before answering.
		h.Set("Connection", "close")
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.WriteHeader(e.Status)
	body := e.Envelope()
	if anthropicShaped(r) {
		body = anthropicEnvelope(body)
	}
	_, _ = w.Write(body)
}

// requestError maps errors raised while decoding a request (parameter
// binding, JSON decoding, spec validation) to invalid_request, naming the
// offending field but never echoing its value.
// bodyError is the envelope for a body the compiled validator refused.
func bodyError(err error) *apierr.Error {
	var ve *validation.Error
	if !errors.As(err, &ve) {
		return requestError(err)
	}
	if ve.Truncated {
		return apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
			"The request body is not valid JSON: it ends too early. Send a JSON object as described at /docs.")
	}
	if ve.Syntax {
		return apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
			"The request body is not valid JSON (error at byte %d: %s). Send a JSON object as described at /docs.", ve.Offset, ve.Reason)
	}
	field, where := ve.Field, "at "+ve.Field
	if field == "" {
		field, where = "/", "for the body as a whole"
	}
	return apierr.New(http.StatusBadRequest, apierr.InvalidRequest, "Invalid request: %s %s.", ve.Reason, where).With("field", field)
}

func requestError(err error) *apierr.Error {
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae
	}
	var re *openapi3filter.RequestError
	if errors.As(err, &re) {
		if re.Parameter != nil {
			return apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
				"Invalid %s parameter '%s': %s.", re.Parameter.In, re.Parameter.Name, reasonOf(re)).With("field", re.Parameter.Name)
		}
	}
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		field := "/" + strings.Join(se.JSONPointer(), "/")
		where := "at " + field
		if field == "/" {
			where = "for the body as a whole"
		}
		reason := strings.TrimSuffix(se.Reason, ".")
		if strings.Contains(reason, "json.Number") { // kin-openapi names a Go type for 1e999
			reason = "value must be a finite number"
		}
		return apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
			"Invalid request: %s %s.", reason, where).With("field", field)
	}
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		field := "/" + strings.ReplaceAll(ute.Field, ".", "/")
		return apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
			"Invalid request: value at %s must be %s.", field, kindOf(ute.Type)).With("field", field)
	}
	if errors.As(err, &re) && re.RequestBody != nil && errors.Is(err, openapi3filter.ErrInvalidRequired) {
		return apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
			"The request body is empty. Send a JSON object as described at /docs.")
	}
	if e := jsonSyntax(err); e != nil {
		return e
	}
	if errors.As(err, &re) && re.RequestBody != nil {
		return apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
			"Invalid request body: %s. Send a JSON object as described at /docs.", reasonOf(re))
	}
	var se2 *openapi3filter.SecurityRequirementsError
	if errors.As(err, &se2) {
		return apierr.New(http.StatusUnauthorized, apierr.Authentication, "Missing API key: send 'Authorization: Bearer pk_...'.")
	}
	return apierr.New(http.StatusBadRequest, apierr.InvalidRequest, "Invalid request: %s.", safeReason(err))
}

// kindOf names what a JSON value must be to decode into t, in the API's
// terms (never Go's).
func kindOf(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return "an integer between -9223372036854775808 and 9223372036854775807"
	case reflect.Int32:
		return "an integer between -2147483648 and 2147483647"
	case reflect.Int8, reflect.Int16, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer in range"
	case reflect.Float32, reflect.Float64:
		return "a finite number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Pointer:
		return kindOf(t.Elem())
	}
	return "an object as described at /docs"
}

// reasonOf describes a RequestError without the request's values.
func reasonOf(re *openapi3filter.RequestError) string {
	if re.Reason != "" {
		return re.Reason
	}
	return safeReason(re.Err)
}

// safeReason keeps the first line of a decoding error, unless it names Go
// types or quotes a value (encoding/json's "cannot unmarshal ... into Go
// struct field ..." does both): then only that the body did not decode.
func safeReason(err error) string {
	if err == nil {
		return "malformed request"
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	for _, leak := range []string{"Go ", "json:", "unmarshal", "reflect", "json.Number"} {
		if strings.Contains(msg, leak) {
			return "the body does not match the request schema described at /docs"
		}
	}
	return safetext.Clean(msg, 200)
}

// notFound answers routes the spec does not define.
func notFound(r *http.Request) *apierr.Error {
	return apierr.New(http.StatusNotFound, apierr.NotFound,
		"No route %s %s; the API is described at /docs.", r.Method, r.URL.Path)
}

func methodNotAllowed(r *http.Request) *apierr.Error {
	return apierr.New(http.StatusMethodNotAllowed, apierr.MethodNotAllowed,
		"%s is not allowed on %s; the API is described at /docs.", r.Method, r.URL.Path)
}

// jsonSyntax explains a body that is not JSON at all, by position only
// (never by quoting it).
func jsonSyntax(err error) *apierr.Error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
			"The request body is not valid JSON (error at byte %d). Send a JSON object as described at /docs.", syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
			"The request body is not valid JSON: it ends too early. Send a JSON object as described at /docs.")
	}
	return nil
}
