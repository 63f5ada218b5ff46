package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/perpetuo/perpetuo/internal/apierr"
)

type ctxKey int

const (
	ctxRequestID ctxKey = iota
	ctxCaller
	ctxBody
	ctxHeaders
)

// chain applies middlewares so that the first listed runs first.
func chain(h http.Handler, mws ...func(http.Handler) http.Handler) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// recoverer turns a panic into a 500 envelope (or, mid-response, a cut
// connection) instead of killing the process. http.ErrAbortHandler passes.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "request_id", requestID(r.Context()), "panic", v)
				if rw, ok := w.(*statusWriter); ok && rw.wrote {
					panic(http.ErrAbortHandler)
				}
				s.writeError(w, r, errors.New("panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// openRouterPrefix serves /api/v1/... as /v1/..., so OpenRouter clients work
// by changing only the host.
func openRouterPrefix(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1"); ok && (rest == "" || rest[0] == '/') {
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/v1" + rest
			r2.URL.RawPath = ""
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}

// requestIDs takes X-Request-Id from the client when sane, or makes one, and
// echoes it on the response.
func requestIDs(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 128 {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = "req_" + hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(context.WithValue(r.Context(), ctxRequestID, &reqState{id: id}), ctxHeaders, r.Header)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// reqState is filled in by later middleware for the access log and metrics,
// which run outside them.
type reqState struct {
	id    string
	route string // the spec path template, "" when no route matched
}

func stateOf(ctx context.Context) *reqState {
	st, _ := ctx.Value(ctxRequestID).(*reqState)
	if st == nil {
		return &reqState{}
	}
	return st
}

func requestID(ctx context.Context) string { return stateOf(ctx).id }

// accessLog logs one line per request: no bodies, no headers, no secrets.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		s.metrics.observe(stateOf(r.Context()).route, sw.status(), time.Since(start))
		s.access.Info("request", "request_id", requestID(r.Context()), "method", r.Method,
			"path", r.URL.Path, "status", sw.status(), "duration_ms", time.Since(start).Milliseconds(), "bytes", sw.bytes)
	})
}

// readBody enforces the body size limit and keeps the raw body in the
// context: the chat route relays it upstream (unknown fields pass through)
// and the validator reads it again from a fresh reader.
func (s *Server) readBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.writeError(w, r, apierr.New(http.StatusRequestEntityTooLarge, apierr.PayloadTooLarge,
				"Request body exceeds %d bytes; shorten the prompt or split the request.", s.maxBody))
			return
		}
		if err != nil {
			s.writeError(w, r, apierr.New(http.StatusBadRequest, apierr.InvalidRequest, "Could not read the request body; resend it."))
			return
		}
		if r.Header.Get("Content-Type") == "" && len(b) > 0 {
			r.Header.Set("Content-Type", "application/json") // JSON is the only body this API takes
		}
		r.Body = readerOf(b)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxBody, b)))
	})
}

func readerOf(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

func rawBody(ctx context.Context) []byte {
	b, _ := ctx.Value(ctxBody).([]byte)
	return b
}

// statusWriter records the status and size of a response. It implements
// Flush and Unwrap so streaming keeps flushing through it.
type statusWriter struct {
	http.ResponseWriter
	code  int
	bytes int64
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.code, w.wrote = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}
