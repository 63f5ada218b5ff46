package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/httpx"
	"github.com/perpetuo/perpetuo/internal/keys"
)

type ctxKey int

const (
	ctxRequestID ctxKey = iota
)

// chain applies middlewares so that the first listed runs first.
func chain(h http.Handler, mws ...func(http.Handler) http.Handler) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// recoverer turns a panic into a 500 envelope instead of killing the
// process. Once the header has gone out it cuts the connection instead:
// writing an envelope then would append JSON to a body under way, which the
// client would read as a successful response. http.ErrAbortHandler passes.
//
// It tracks the header with its own statusWriter because it runs outside
// accessLog's (and outside requestIDs, which is why the id comes from the
// response header).
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			id := w.Header().Get("X-Request-Id")
			s.metrics.panicked()
			s.log.Error("panic serving request", "request_id", id, "panic", v, "stack", string(debug.Stack()))
			if sw.wrote {
				panic(http.ErrAbortHandler) // net/http closes the connection without writing more
			}
			h := w.Header()
			for k := range h { // set for the response that never went out, e.g. Content-Length
				if k != "X-Request-Id" {
					delete(h, k)
				}
			}
			r = r.WithContext(context.WithValue(r.Context(), ctxRequestID, &reqState{id: id}))
			s.writeError(w, r, errors.New("panic"))
		}()
		next.ServeHTTP(sw, r)
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
		// One value for the whole request: the middleware below fill it in
		// rather than each copying the request with a context of its own.
		st := &reqState{id: id, headers: r.Header, http11: r.ProtoMajor == 1 && r.ProtoMinor >= 1, keepAlive: !r.Close}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxRequestID, st)))
	})
}

// reqState is what the middleware learn about a request, filled in as they
// run: the access log and metrics (which run outside them) read the route,
// the handlers read the rest.
type reqState struct {
	id      string
	route   string // the spec path template, "" when no route matched
	headers http.Header
	ri      *routeInfo // the matched operation
	caller  *keys.Key  // the authenticated key
	body    []byte     // the raw request body, once read

	http11    bool       // HTTP/1.1: a stream may detach from its handler
	keepAlive bool       // the client keeps the connection for another request
	after     *afterward // set when the stream detached: it ends later
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
// It logs and counts in a defer so a request whose handler panics is not
// missing from either; the panic unwinds on to recoverer, which answers 500
// when nothing was sent.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		returned := false
		defer func() {
			status := sw.status()
			if !returned && !sw.wrote {
				status = http.StatusInternalServerError
			}
			st := stateOf(r.Context())
			// Only values: a detached stream's closure must not hold the
			// request or the response (and through them the connection).
			method, path, sent := r.Method, r.URL.Path, sw.bytes
			done := func(detached int64) {
				d := time.Since(start)
				s.metrics.observe(st.route, status, d)
				s.logAccess(st.id, method, path, status, d, sent+detached)
			}
			if st.after != nil { // a stream relayed off the handler: logged when it ends
				st.after.then(done)
				return
			}
			done(0)
		}()
		next.ServeHTTP(sw, r)
		returned = true
	})
}

// logAccess writes one access line. It hands the record to the handler
// itself: Logger.Info would box every value and capture the caller's
// program counter (runtime.Callers), which no access line shows, about 1%
// of the gateway's CPU per request.
func (s *Server) logAccess(id, method, path string, status int, d time.Duration, sent int64) {
	h := s.access.Handler()
	if !h.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
	r.AddAttrs(slog.String("request_id", id), slog.String("method", method), slog.String("path", path),
		slog.Int("status", status), slog.Int64("duration_ms", d.Milliseconds()), slog.Int64("bytes", sent))
	_ = h.Handle(context.Background(), r)
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
		if r.ContentLength > s.maxBody { // refused unread, before any memory is spent
			s.writeError(w, r, tooLarge(s.maxBody))
			return
		}
		// The body is held until the request ends: count it against the
		// process-wide bound first (what it declares, or the most it may be).
		hold := s.maxBody
		if r.ContentLength >= 0 && r.ContentLength < hold {
			hold = r.ContentLength
		}
		if !s.buffered.TryAcquire(hold) {
			w.Header().Set("Connection", "close")
			s.writeError(w, r, apierr.New(http.StatusServiceUnavailable, apierr.Unavailable,
				"The gateway is holding as many request bodies as it may; retry shortly.").WithRetryAfter(1))
			return
		}
		defer s.buffered.Release(hold)
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(s.bodyTimeout)) // unsupported writers (tests) skip it
		b, err := httpx.ReadAll(http.MaxBytesReader(w, r.Body, hold), r.ContentLength)
		_ = rc.SetReadDeadline(time.Time{})
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.writeError(w, r, tooLarge(s.maxBody))
			return
		}
		if err != nil {
			w.Header().Set("Connection", "close")
			s.writeError(w, r, apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
				"Could not read the whole request body (it must arrive within %s); resend it.", s.bodyTimeout))
			return
		}
		if r.Header.Get("Content-Type") == "" && len(b) > 0 {
			r.Header.Set("Content-Type", "application/json") // JSON is the only body this API takes
		}
		r.Body = readerOf(b)
		stateOf(r.Context()).body = b
		next.ServeHTTP(w, r)
	})
}

func tooLarge(max int64) *apierr.Error {
	return apierr.New(http.StatusRequestEntityTooLarge, apierr.PayloadTooLarge,
		"Request body exceeds %d bytes; shorten the prompt or split the request.", max)
}

func readerOf(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

func rawBody(ctx context.Context) []byte { return stateOf(ctx).body }

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

// Flush implements http.Flusher. Flushing sends the header (200 unless
// one was set), so it counts as writing it.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if !w.wrote {
			w.code, w.wrote = http.StatusOK, true
		}
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
