package app

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/perpetuo/perpetuo/gen/api"
)

var (
	guardOnce   sync.Once
	guardRouter routers.Router
	guardErr    error
)

// specGuard validates every JSON response of the handler against the spec
// (status, content type, body schema), so the code cannot drift from the
// contract unnoticed. Streams pass through untouched.
func specGuard(t testing.TB, next http.Handler) http.Handler {
	return specGuardTo(t, t.Errorf, next)
}

func specGuardTo(t testing.TB, errorf func(string, ...any), next http.Handler) http.Handler {
	guardOnce.Do(func() {
		var spec *openapi3.T
		if spec, guardErr = api.GetSwagger(); guardErr == nil {
			spec.Servers = nil
			guardRouter, guardErr = gorillamux.NewRouter(spec)
		}
	})
	if guardErr != nil {
		t.Fatalf("spec guard: %v", guardErr)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, params, err := guardRouter.FindRoute(r)
		if err != nil { // not a spec route (docs, metrics) or an unknown one
			next.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &teeWriter{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			return
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
			Status: rec.status(), Header: rec.Header(), Body: io.NopCloser(bytes.NewReader(rec.buf.Bytes())),
			Options: &openapi3filter.Options{IncludeResponseStatus: true},
		}
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			errorf("%s %s → %d does not match the spec: %v\nbody: %s", r.Method, r.URL.Path, rec.status(), err, rec.buf.String())
		}
	})
}

// teeWriter copies a response aside; it flushes through so streams work.
type teeWriter struct {
	http.ResponseWriter
	code int
	buf  bytes.Buffer
}

func (w *teeWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *teeWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream") {
		w.buf.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

func (w *teeWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *teeWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// TestSpecGuardCatchesDrift proves the guard fails on a response the spec
// does not allow, so its silence elsewhere means something.
func TestSpecGuardCatchesDrift(t *testing.T) {
	t.Parallel()
	var complaints []string
	bad := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"state":"fine"}`)) // Health requires "status"
	})
	h := specGuardTo(t, func(f string, a ...any) { complaints = append(complaints, f) }, bad)
	req, _ := http.NewRequest(http.MethodGet, "http://gw/healthz", http.NoBody)
	h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
	if len(complaints) != 1 {
		t.Fatalf("the guard let a response without the required field through")
	}
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
