package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/jsonedit"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/routing"
	"github.com/perpetuo/perpetuo/internal/validation"
)

// specRouter finds the spec operation of a request, for auth and validation.
type specRouter struct {
	router routers.Router
	opts   *openapi3filter.Options
	// params validates parameters only: JSON bodies are checked by the
	// operation's compiled validator in bodies.
	params *openapi3filter.Options
	bodies map[*openapi3.Operation]jsonBody
	// static holds, per path without parameters and method, the route
	// router.FindRoute answers for it (asked once, at start-up): most
	// requests are found here without the router's per-request matching.
	static map[string]map[string]*routers.Route
}

// jsonBody is an operation's application/json request body.
type jsonBody struct {
	v        *validation.Validator
	required bool
}

func newSpecRouter(spec *openapi3.T) (*specRouter, error) {
	// Match paths whatever host the gateway is reached on.
	spec.Servers = nil
	r, err := gorillamux.NewRouter(spec)
	if err != nil {
		return nil, fmt.Errorf("spec router: %w", err)
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, // auth is the auth middleware's job
		SchemaValidationOptions: []openapi3.SchemaValidationOption{
			openapi3.DisableSchemaErrorDetails(), // never echo request values (prompts) in errors
		},
	}
	params := *opts
	params.ExcludeRequestBody = true
	sr := &specRouter{router: r, opts: opts, params: &params, bodies: map[*openapi3.Operation]jsonBody{},
		static: map[string]map[string]*routers.Route{}}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			if !strings.Contains(path, "{") {
				req, err := http.NewRequest(method, path, nil)
				if err != nil {
					return nil, fmt.Errorf("spec: %s %s: %w", method, path, err)
				}
				if route, _, err := r.FindRoute(req); err == nil {
					if sr.static[path] == nil {
						sr.static[path] = map[string]*routers.Route{}
					}
					sr.static[path][method] = route
				}
			}
			if op.RequestBody == nil || op.RequestBody.Value == nil {
				continue
			}
			mt := op.RequestBody.Value.Content.Get("application/json")
			if mt == nil || mt.Schema == nil {
				continue
			}
			v, err := validation.Compile(mt.Schema.Value)
			if err != nil {
				return nil, fmt.Errorf("spec: %s %s request body: %w", method, path, err)
			}
			sr.bodies[op] = jsonBody{v: v, required: op.RequestBody.Value.Required}
		}
	}
	return sr, nil
}

// find is router.FindRoute, answered from static when the path has no
// parameters.
func (sr *specRouter) find(r *http.Request) (*routers.Route, map[string]string, error) {
	if route := sr.static[r.URL.Path][r.Method]; route != nil {
		return route, nil, nil
	}
	return sr.router.FindRoute(r)
}

type routeInfo struct {
	route  *routers.Route
	params map[string]string
}

// findRoute resolves the request's operation; unknown paths get 404 and
// known paths with the wrong method 405, both in the envelope.
func (s *Server) findRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route, params, err := s.spec.find(r)
		switch {
		case errors.Is(err, routers.ErrMethodNotAllowed):
			s.writeError(w, r, methodNotAllowed(r))
			return
		case err != nil:
			s.writeError(w, r, notFound(r))
			return
		}
		st := stateOf(r.Context())
		st.route, st.ri = route.Path, &routeInfo{route: route, params: params}
		next.ServeHTTP(w, r)
	})
}

func routeOf(ctx context.Context) (routeInfo, bool) {
	ri := stateOf(ctx).ri
	if ri == nil {
		return routeInfo{}, false
	}
	return *ri, true
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
		token := bearer(r.Header.Get("Authorization"))
		if token == "" {
			token = apiKeyHeader(r, ri)
		}
		k, err := s.auth.Authenticate(r.Context(), token)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		stateOf(r.Context()).caller = &k
		next.ServeHTTP(w, r)
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
	if k := stateOf(ctx).caller; k != nil {
		return *k
	}
	return keys.Key{}
}

// validate checks parameters and body against the spec. A JSON body is
// checked in one pass by its operation's compiled validator; kin-openapi
// checks the parameters (and any body of another media type).
func (s *Server) validate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri, ok := routeOf(r.Context())
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		bodyChecked := false
		if jb, ok := s.spec.bodies[ri.route.Operation]; ok && isJSON(r.Header.Get("Content-Type")) {
			if err := s.checkBody(r, ri, jb); err != nil {
				s.writeError(w, r, err)
				return
			}
			bodyChecked = true
		}
		// With the body checked, kin-openapi has only parameters left to
		// check (security is the auth middleware's); an operation without
		// any, such as the chat route, skips it.
		hasParams := len(ri.route.Operation.Parameters) > 0 || len(ri.route.PathItem.Parameters) > 0
		if !bodyChecked || hasParams {
			opts := s.spec.opts
			if bodyChecked {
				opts = s.spec.params
				r.Body = http.NoBody // nothing reads it: no copy of the body for the security check
			}
			in := &openapi3filter.RequestValidationInput{Request: r, PathParams: ri.params, Route: ri.route, Options: opts}
			if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
				s.writeError(w, r, requestError(err))
				return
			}
		}
		if b := rawBody(r.Context()); b != nil { // the validator may have consumed the body
			r.Body = readerOf(typedBody(ri, b))
		}
		next.ServeHTTP(w, r)
	})
}

// typedBody is what the generated handler decodes into its typed request.
// The chat route relays the raw body it validated (rawBody) and reads only
// its routing fields from the typed one, so its messages, the bulk of any
// body, are left out of that decode: encoding/json would spend 1 ms on the
// messages of a 100 KB request, and allocate as much again.
func typedBody(ri routeInfo, b []byte) []byte {
	if ri.route.Method != http.MethodPost || ri.route.Path != chatPath {
		return b
	}
	out, err := jsonedit.Object(b, jsonedit.Delete("messages"))
	if err != nil {
		return b // not an object: the decode reports it as it would have
	}
	return out
}

// checkBody runs the cheap checks first (the chat route's models must be
// in the catalog, which costs no I/O), then validates the whole body.
func (s *Server) checkBody(r *http.Request, ri routeInfo, jb jsonBody) *apierr.Error {
	body := rawBody(r.Context())
	if len(bytes.TrimSpace(body)) == 0 {
		if !jb.required {
			return nil
		}
		return apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
			"The request body is empty. Send a JSON object as described at /docs.")
	}
	if ri.route.Method == http.MethodPost && ri.route.Path == chatPath && s.catalog != nil {
		if err := routing.CheckModels(s.catalog, declaredModels(body)); err != nil {
			return requestError(err)
		}
	}
	if err := jb.v.Validate(body); err != nil {
		return bodyError(err)
	}
	return nil
}

const chatPath = "/v1/chat/completions"

// declaredModels is what a chat body names in model and models[], read in
// one pass over its top-level keys that skips over the messages.
func declaredModels(body []byte) []string {
	var out []string
	_ = jsonedit.Members(body, func(k, raw []byte) bool { // a syntax error is validation's to report
		switch string(k) {
		case "model":
			if v := gjson.ParseBytes(raw); v.Type == gjson.String && v.Str != "" {
				out = append(out, v.Str)
			}
		case "models":
			v := gjson.ParseBytes(raw)
			if !v.IsArray() {
				break
			}
			v.ForEach(func(_, m gjson.Result) bool {
				if m.Type == gjson.String && m.Str != "" {
					out = append(out, m.Str)
				}
				return len(out) <= 17 // model and the spec's maxItems of models bound the rest
			})
		}
		return true
	})
	return out
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}
