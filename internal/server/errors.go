package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/perpetuo/perpetuo/internal/apierr"
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
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(e.Envelope())
}

// requestError maps errors raised while decoding a request (parameter
// binding, JSON decoding, spec validation) to invalid_request, naming the
// offending field but never echoing its value.
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
		return apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
			"Invalid request: %s %s.", strings.TrimSuffix(se.Reason, "."), where).With("field", field)
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

// reasonOf describes a RequestError without the request's values.
func reasonOf(re *openapi3filter.RequestError) string {
	if re.Reason != "" {
		return re.Reason
	}
	return safeReason(re.Err)
}

// safeReason keeps the first line of a decoding error: encoding/json's
// messages name types and offsets, not values.
func safeReason(err error) string {
	if err == nil {
		return "malformed request"
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
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
