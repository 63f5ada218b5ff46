// Package server is Perpetuo's HTTP layer: the middleware chain, the
// implementation of the generated strict server interface (gen/api), the
// docs and metrics routes, and the single mapping from errors to the error
// envelope. Handlers convert between the generated types and domain calls;
// the work and its rules are in gateway, routing, records, keys,
// workspaces, credentials and guardrails.
package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/semaphore"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/analytics"
	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/budget"
	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/credentials"
	"github.com/perpetuo/perpetuo/internal/gateway"
	"github.com/perpetuo/perpetuo/internal/guardrails"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/policy"
	"github.com/perpetuo/perpetuo/internal/records"
	"github.com/perpetuo/perpetuo/internal/routing"
	"github.com/perpetuo/perpetuo/internal/spend"
	"github.com/perpetuo/perpetuo/internal/store"
	"github.com/perpetuo/perpetuo/internal/workspaces"
)

var _ api.StrictServerInterface = (*Server)(nil)

// Authenticator resolves a bearer token to a key.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (keys.Key, error)
}

// Generations reads generation records, including ones not yet written.
type Generations interface {
	Get(ctx context.Context, workspaceID, id string) (records.Generation, error)
	// PendingSpend is a key's spend not written yet on this replica.
	PendingSpend(keyID string) []records.Spend
}

// Models lists the models a workspace can route to, and a model's
// endpoints with their health.
type Models interface {
	Routable(ctx context.Context, workspaceID string, zdrOnly bool) ([]routing.Offer, error)
	Endpoints(ctx context.Context, workspaceID, model string) (*catalog.Model, []routing.EndpointReport, error)
	ZDREndpoints(ctx context.Context, workspaceID string, allow func(*routing.Candidate) bool) ([]routing.EndpointReport, error)
}

// ErrDraining is what Ready returns while the server shuts down.
var ErrDraining = errors.New("draining")

// Config is what the server is built from.
type Config struct {
	Log         *slog.Logger
	AccessLog   *slog.Logger // nil: no access log
	Auth        Authenticator
	Gateway     *gateway.Gateway
	Generations Generations
	Store       *store.Store
	Policies    *policy.Resolver
	Keys        *keys.Service
	Workspaces  *workspaces.Service
	Credentials *credentials.Service
	Guardrails  *guardrails.Service
	Spend       *spend.Service
	Analytics   *analytics.Service
	Budgets     *budget.Budgets
	Catalog     *catalog.Catalog
	Models      Models
	Ready       func(ctx context.Context) error
	Registry    *prometheus.Registry
	// Tracer, when set, gives each request a server span (nil: no
	// tracing, and no per-request tracing work).
	Tracer       trace.TracerProvider
	MaxBodyBytes int64 // default 8 MiB
	// MaxBufferedBytes bounds the request bodies held at once, process-wide
	// (default 256 MiB); beyond it requests get 503 at once.
	MaxBufferedBytes int64
	// MetricsToken, when set, is the bearer token /metrics requires
	// (PERPETUO_METRICS_TOKEN); unset, /metrics is open.
	MetricsToken string
	// BodyReadTimeout bounds reading one request body (default 30s), so a
	// body trickled at 1 byte/s cannot hold its connection forever.
	BodyReadTimeout time.Duration
	StreamIdle      time.Duration // per-write deadline on streams; default 60s
	// StreamsOnHandlers is how many streams stay on their handlers (over
	// HTTP/1.1) before the next ones are relayed off them, see detach.go:
	// detaching costs a stream some CPU and its first chunk a little
	// latency, and saves a held stream most of its memory, which matters
	// once many are held. 0: 256; negative: every stream detaches.
	StreamsOnHandlers int
	Now               func() time.Time
}

// Server implements the API.
type Server struct {
	log         *slog.Logger
	access      *slog.Logger
	auth        Authenticator
	gateway     *gateway.Gateway
	generations Generations
	store       *store.Store
	policies    *policy.Resolver
	keys        *keys.Service
	workspaces  *workspaces.Service
	credentials *credentials.Service
	guardrails  *guardrails.Service
	spend       *spend.Service
	analytics   *analytics.Service
	budgets     *budget.Budgets
	catalog     *catalog.Catalog
	models      Models
	ready       func(ctx context.Context) error
	metrics     *httpMetrics
	spec        *specRouter
	specJSON    []byte // gzipped: a tenth of the heap the plain JSON held
	maxBody     int64
	buffered    *semaphore.Weighted // bytes of request bodies held
	bodyTimeout time.Duration
	metricsTok  string
	tracer      trace.TracerProvider
	streamIdle  time.Duration
	streams     detacher
	onHandlers  atomic.Int64 // streams running on their handlers
	keepOn      int64        // how many may before the next ones detach
	now         func() time.Time
	h           http.Handler
}

// New builds the handler for every route.
func New(cfg Config) (*Server, error) {
	spec, err := api.GetSwagger()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	// The served JSON names this gateway itself as the server, so Swagger
	// UI's "Try it out" calls whatever host and port it was loaded from.
	servers := spec.Servers
	spec.Servers = openapi3.Servers{{URL: "/", Description: "This gateway"}}
	specJSON, err := gzipJSON(spec)
	spec.Servers = servers
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	router, err := newSpecRouter(spec)
	if err != nil {
		return nil, err
	}
	s := &Server{
		log: cfg.Log, access: cfg.AccessLog, auth: cfg.Auth, gateway: cfg.Gateway,
		generations: cfg.Generations, store: cfg.Store, catalog: cfg.Catalog,
		policies: cfg.Policies, keys: cfg.Keys, workspaces: cfg.Workspaces, credentials: cfg.Credentials,
		guardrails: cfg.Guardrails, spend: cfg.Spend, analytics: cfg.Analytics, budgets: cfg.Budgets, models: cfg.Models, ready: cfg.Ready,
		metrics: newHTTPMetrics(cfg.Registry), spec: router, specJSON: specJSON,
		maxBody: cfg.MaxBodyBytes, streamIdle: cfg.StreamIdle, now: cfg.Now,
	}
	if s.maxBody <= 0 {
		s.maxBody = 8 << 20
	}
	if cfg.MaxBufferedBytes <= 0 {
		cfg.MaxBufferedBytes = 256 << 20
	}
	s.maxBody = min(s.maxBody, cfg.MaxBufferedBytes) // no body larger than all may be
	s.buffered = semaphore.NewWeighted(cfg.MaxBufferedBytes)
	s.bodyTimeout = cfg.BodyReadTimeout
	s.metricsTok = cfg.MetricsToken
	s.tracer = cfg.Tracer
	if s.bodyTimeout <= 0 {
		s.bodyTimeout = 30 * time.Second
	}
	if s.streamIdle <= 0 {
		s.streamIdle = 60 * time.Second
	}
	switch s.keepOn = int64(cfg.StreamsOnHandlers); {
	case s.keepOn == 0:
		s.keepOn = defaultStreamsOnHandlers
	case s.keepOn < 0:
		s.keepOn = 0
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.access == nil {
		s.access = slog.New(slog.DiscardHandler)
	}
	s.h = s.handler(cfg.Registry)
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.ServeHTTP(w, r) }

// handler wires the routes and the middleware chain, in the order it runs.
func (s *Server) handler(reg *prometheus.Registry) http.Handler {
	apiMux := http.NewServeMux()
	strict := api.NewStrictHandlerWithOptions(s, nil, api.StrictHTTPServerOptions{
		RequestErrorHandlerFunc:  func(w http.ResponseWriter, r *http.Request, err error) { s.writeError(w, r, requestError(err)) },
		ResponseErrorHandlerFunc: s.writeError,
	})
	api.HandlerWithOptions(strict, api.StdHTTPServerOptions{
		BaseRouter:       apiMux,
		ErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) { s.writeError(w, r, requestError(err)) },
	})
	// Authentication runs on the headers, before any body byte is read: an
	// unauthenticated client cannot make the gateway hold its body.
	apiChain := chain(apiMux, s.findRoute, s.authenticate, s.readBody, s.validate)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metricsAuth(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	s.docsRoutes(mux)
	mux.Handle("/", apiChain)
	mws := []func(http.Handler) http.Handler{s.recoverer, requestIDs}
	if s.tracer != nil {
		mws = append(mws, traced(s.tracer))
	}
	return chain(mux, append(mws, s.accessLog, openRouterPrefix)...)
}

// metricsAuth requires the metrics token, when one is configured, compared
// in constant time.
func (s *Server) metricsAuth(next http.Handler) http.Handler {
	if s.metricsTok == "" {
		return next
	}
	want := []byte(s.metricsTok)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(bearer(r.Header.Get("Authorization"))), want) != 1 {
			s.writeError(w, r, apierr.New(http.StatusUnauthorized, apierr.Authentication,
				"/metrics needs the metrics token: send 'Authorization: Bearer <PERPETUO_METRICS_TOKEN>'."))
			return
		}
		next.ServeHTTP(w, r)
	})
}
