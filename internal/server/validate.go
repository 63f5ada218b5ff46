package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/perpetuo/perpetuo/internal/keys"
)

// specRouter finds the spec operation of a request, for auth and validation.
type specRouter struct {
	router routers.Router
	opts   *openapi3filter.Options
}

func newSpecRouter(spec *openapi3.T) (*specRouter, error) {
	// Match paths whatever host the gateway is reached on.
	spec.Servers = nil
	r, err := gorillamux.NewRouter(spec)
	if err != nil {
		return nil, fmt.Errorf("spec router: %w", err)
	}
	return &specRouter{router: r, opts: &openapi3filter.Options{
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, // auth is the auth middleware's job
		SchemaValidationOptions: []openapi3.SchemaValidationOption{
			openapi3.DisableSchemaErrorDetails(), // never echo request values (prompts) in errors
		},
	}}, nil
}

type routeInfo struct {
	route  *routers.Route
	params map[string]string
}

const ctxRoute ctxKey = 100

// findRoute resolves the request's operation; unknown paths get 404 and
// known paths with the wrong method 405, both in the envelope.
func (s *Server) findRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, params, err := s.spec.router.FindRoute(r)
		switch {
		case errors.Is(err, routers.ErrMethodNotAllowed):
			s.writeError(w, r, methodNotAllowed(r))
			return
		case err != nil:
			s.writeError(w, r, notFound(r))
			return
		}
		stateOf(r.Context()).route = route.Path
		ctx := context.WithValue(r.Context(), ctxRoute, routeInfo{route: route, params: params})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func routeOf(ctx context.Context) (routeInfo, bool) {
	ri, ok := ctx.Value(ctxRoute).(routeInfo)
	return ri, ok
}

// needsAuth reports whether the operation requires a key: the spec's global
// security applies unless the operation overrides it with an empty list.
func needsAuth(ri routeInfo) bool {
	if sec := ri.route.Operation.Security; sec != nil {
		return len(*sec) > 0
	}
	return len(ri.route.Spec.Security) > 0
}

// authenticate resolves the bearer key of operations that need one.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri, ok := routeOf(r.Context())
		if !ok || !needsAuth(ri) {
			next.ServeHTTP(w, r)
			return
		}
		k, err := s.auth.Authenticate(r.Context(), bearer(r.Header.Get("Authorization")))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxCaller, k)))
	})
}

// bearer returns the token of an Authorization header using the Bearer
// scheme, whose name is case-insensitive (RFC 9110 §11.1); "" otherwise.
func bearer(h string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

func callerKey(ctx context.Context) keys.Key {
	k, _ := ctx.Value(ctxCaller).(keys.Key)
	return k
}

// validate checks parameters and body against the spec.
func (s *Server) validate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri, ok := routeOf(r.Context())
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		in := &openapi3filter.RequestValidationInput{Request: r, PathParams: ri.params, Route: ri.route, Options: s.spec.opts}
		if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
			s.writeError(w, r, requestError(err))
			return
		}
		if b := rawBody(r.Context()); b != nil { // the validator consumed the body
			r.Body = readerOf(b)
		}
		next.ServeHTTP(w, r)
	})
}
