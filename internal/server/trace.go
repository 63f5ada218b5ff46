package server

import (
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traced gives each request a server span, the child of the client's W3C
// traceparent when it sent one. The span is named for the route template
// (never the raw path, which holds ids), known only once the route matched,
// so it is named when the request ends; for a stream that is when the
// stream ends. Attributes are the method, route and status: no header
// values, no body.
func traced(tp trace.TracerProvider) func(http.Handler) http.Handler {
	tracer := tp.Tracer("github.com/perpetuo/perpetuo/internal/server")
	prop := propagation.TraceContext{}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			ctx, span := tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(attribute.String("http.request.method", r.Method)))
			sw := &statusWriter{ResponseWriter: w}
			returned := false
			defer func() {
				status := sw.status()
				if !returned && !sw.wrote {
					status = http.StatusInternalServerError // a panic on its way to recoverer
				}
				st, method := stateOf(ctx), r.Method
				if st.after != nil { // a stream relayed off the handler: it ends later
					st.after.then(func(int64) { endSpan(span, method, st, status) })
					return
				}
				endSpan(span, method, st, status)
			}()
			next.ServeHTTP(sw, r.WithContext(ctx))
			returned = true
		})
	}
}

// endSpan names and ends a request's span.
func endSpan(span trace.Span, method string, st *reqState, status int) {
	if st.route != "" {
		span.SetName(method + " " + st.route)
		span.SetAttributes(attribute.String("http.route", st.route))
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status),
		attribute.String("perpetuo.request.id", st.id))
	if status >= 500 {
		span.SetStatus(codes.Error, "")
		span.SetAttributes(attribute.String("error.type", http.StatusText(status)))
	}
	span.End()
}
