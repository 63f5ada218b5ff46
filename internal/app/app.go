// Package app is the composition root: it builds Perpetuo's parts in
// dependency order from a pool, a catalog and credentials (New), and runs
// them as a server with a database, a listener and graceful shutdown (Run).
package app

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"

	"github.com/perpetuo/perpetuo/internal/analytics"
	"github.com/perpetuo/perpetuo/internal/budget"
	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/credentials"
	"github.com/perpetuo/perpetuo/internal/egress"
	"github.com/perpetuo/perpetuo/internal/gateway"
	"github.com/perpetuo/perpetuo/internal/guardrails"
	"github.com/perpetuo/perpetuo/internal/ids"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/logging"
	"github.com/perpetuo/perpetuo/internal/notify"
	"github.com/perpetuo/perpetuo/internal/policy"
	"github.com/perpetuo/perpetuo/internal/providers"
	"github.com/perpetuo/perpetuo/internal/records"
	"github.com/perpetuo/perpetuo/internal/routing"
	"github.com/perpetuo/perpetuo/internal/secrets"
	"github.com/perpetuo/perpetuo/internal/server"
	"github.com/perpetuo/perpetuo/internal/spend"
	"github.com/perpetuo/perpetuo/internal/store"
	"github.com/perpetuo/perpetuo/internal/telemetry"
	"github.com/perpetuo/perpetuo/internal/workspaces"
)

// Options are what New builds the gateway from.
type Options struct {
	Pool    *pgxpool.Pool
	Catalog *catalog.Catalog
	// Operator holds the server-wide provider credentials (from the
	// environment), used by workspaces that have not opted out.
	Operator routing.Set
	// Keyring seals and opens BYOK credentials.
	Keyring    *secrets.Keyring
	Log        *slog.Logger
	AccessLog  *slog.Logger // nil: no access log
	HTTPClient *http.Client // nil: providers.NewHTTPClient()
	Records    records.Options
	Now        func() time.Time
	// StreamIdle, AttemptTimeout and FirstByteTimeout are the upstream
	// deadlines, ConnectTimeout bounds connecting (0: defaults).
	StreamIdle, AttemptTimeout, FirstByteTimeout, ConnectTimeout time.Duration
	// KeepAlive is the silence towards a streaming client after which it
	// gets a keep-alive comment (0: 15 s; negative: never).
	KeepAlive time.Duration
	// Retention is how long raw generation records are kept (0: forever);
	// RetentionEvery how often older ones are deleted (0: every 10
	// minutes), RetentionBatch how many per statement (0: 5000).
	Retention, RetentionEvery time.Duration
	RetentionBatch            int
	// MaxBufferedBytes and BodyReadTimeout bound request bodies (0:
	// server defaults, 256 MiB held at once and 30 s to read one).
	MaxBufferedBytes int64
	BodyReadTimeout  time.Duration
	// StreamsOnHandlers is how many streams stay on their handlers before
	// the next ones are relayed off them (0: the server's default, 256;
	// negative: none stay). See server.Config.
	StreamsOnHandlers int
	// MetricsToken, when set, protects /metrics (PERPETUO_METRICS_TOKEN).
	MetricsToken string
	// StaleWindow is how long cached keys and credentials keep serving
	// while the database is unreachable (0: DefaultStaleWindow; negative:
	// not at all).
	StaleWindow time.Duration
	// Health tracks endpoint health for routing (nil: routing.NewTracker()).
	Health *routing.Tracker
	// LogWriter, when set, has its dropped-lines counter exported.
	LogWriter *logging.Writer
	// HeartbeatEvery, DeadAfter and SweepEvery tune replica liveness (0:
	// the defaults below); DeadAfter must exceed every replica's
	// HeartbeatEvery.
	HeartbeatEvery, DeadAfter, SweepEvery time.Duration
	// Egress is where workspace credentials' base URLs may lead beyond
	// public addresses (PERPETUO_EGRESS_ALLOW); operator credentials are
	// not checked.
	Egress egress.Policy
	// EgressResolver resolves workspace credentials' hosts (nil: the
	// system resolver); tests inject one so nothing leaves loopback.
	EgressResolver egress.Resolver
	// Telemetry says where traces and metrics go beyond /metrics (zero:
	// nowhere).
	Telemetry telemetry.Config
}

// DefaultStaleWindow is how long cached keys and credentials serve during
// a database outage unless configured otherwise.
const DefaultStaleWindow = 5 * time.Minute

// Replica liveness: every replica heartbeats every heartbeatEvery; one
// silent for deadAfter is taken for dead, and the others charge its leases
// and open streams at their next sweep (every sweepEvery), so a crashed
// replica's work is resolved within about deadAfter + sweepEvery.
const (
	DefaultHeartbeatEvery = 5 * time.Second
	DefaultDeadAfter      = 30 * time.Second
	DefaultSweepEvery     = 15 * time.Second
)

// App is a built gateway: its HTTP handler and the background work to stop.
type App struct {
	Handler  http.Handler
	Store    *store.Store
	Recorder *records.Recorder
	Listener *notify.Listener
	Gateway  *gateway.Gateway
	Budgets  *budget.Budgets
	// Replica names this process in the database (heartbeats, leases).
	Replica string

	telemetry *telemetry.Telemetry
	draining  atomic.Bool
	inflight  sync.WaitGroup // requests being served
	server    *server.Server
	cancel    context.CancelFunc
	done      chan struct{}

	// kept so tests can start another replica with the same settings
	catalog  *catalog.Catalog
	operator routing.Set
	log      *slog.Logger
}

// maxSessions bounds the session_id → endpoint memory of one replica
// (about 100 bytes each).
const maxSessions = 100_000

// New builds every part and starts the record writer. Close stops it.
func New(opts Options) (*App, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.ConnectTimeout = cmp.Or(opts.ConnectTimeout, providers.DefaultConnectTimeout)
	if opts.HTTPClient == nil {
		opts.HTTPClient = providers.NewHTTPClientWith(opts.ConnectTimeout)
	}
	if opts.StaleWindow == 0 {
		opts.StaleWindow = DefaultStaleWindow
	}
	opts.HeartbeatEvery = cmp.Or(opts.HeartbeatEvery, DefaultHeartbeatEvery)
	opts.DeadAfter = cmp.Or(opts.DeadAfter, DefaultDeadAfter)
	opts.SweepEvery = cmp.Or(opts.SweepEvery, DefaultSweepEvery)
	st := store.New(opts.Pool)
	replica := ids.New(ids.Replica, opts.Now())
	// Registered before serving: a lease naming a replica without a
	// heartbeat row would be swept as a dead replica's.
	if err := st.Heartbeat(context.Background(), replica); err != nil {
		return nil, fmt.Errorf("register replica: %w", err)
	}
	recOpts := opts.Records
	recOpts.Replica = replica
	rec, err := records.NewRecorder(st, opts.Log, recOpts)
	if err != nil {
		return nil, fmt.Errorf("generation records: %w", err)
	}
	stale := notify.NewStaleness(max(opts.StaleWindow, 0), opts.Now)
	auth := keys.NewAuthenticator(st, opts.Now, stale)
	creds := credentials.NewCache(st, opts.Keyring, opts.Operator, opts.Log, stale)
	policies := policy.NewResolver(st, stale)
	listener := notify.NewListener(opts.Pool, opts.Log, stale, invalidator(auth, creds, policies))
	st.SetNotifier(listener)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(rec.Collectors()...)
	if opts.LogWriter != nil {
		reg.MustRegister(opts.LogWriter.Collector())
	}
	tel, err := telemetry.New(context.Background(), opts.Telemetry, reg)
	if err != nil {
		return nil, err
	}
	gwTel, err := gateway.NewTelemetry(tel.Tracer, tel.Meter, tel.Tracing)
	if err != nil {
		return nil, fmt.Errorf("gateway telemetry: %w", err)
	}
	guard := &egress.Dialer{Policy: opts.Egress, Resolver: opts.EgressResolver,
		Dial: providers.ConnectDialer(opts.ConnectTimeout).DialContext}
	adapters := providers.NewRegistry(opts.HTTPClient, providers.NewGuardedClient(opts.HTTPClient, guard.DialContext))
	planner := &routing.Planner{
		Catalog: opts.Catalog, Credentials: creds,
		Families: func(api string) bool { _, ok := adapters[api]; return ok },
		Health:   cmp.Or(opts.Health, routing.NewTracker()), Sessions: routing.NewSessions(maxSessions),
	}
	budgets := budget.New(st, replica, opts.Now)
	gw := gateway.New(gateway.Deps{
		Planner: planner, Adapters: adapters, Recorder: rec, Budgets: budgets,
		Log: opts.Log, Telemetry: gwTel, Now: opts.Now,
		StreamIdle: opts.StreamIdle, AttemptTimeout: opts.AttemptTimeout, FirstByteTimeout: opts.FirstByteTimeout,
		KeepAlive: opts.KeepAlive,
	})
	a := &App{Store: st, Recorder: rec, Listener: listener, Gateway: gw, Budgets: budgets, Replica: replica, done: make(chan struct{}),
		telemetry: tel,
		catalog:   opts.Catalog, operator: opts.Operator, log: opts.Log}
	guards := guardrails.NewService(st, opts.Catalog, opts.Now)
	keySvc, wsSvc := keys.NewService(st, opts.Now), workspaces.NewService(st, guards, opts.Now)
	h, err := server.New(server.Config{
		Log: opts.Log, AccessLog: opts.AccessLog, Auth: auth, Gateway: gw, Generations: rec, Store: st,
		Policies: policies, Guardrails: guards, Budgets: budgets, Catalog: opts.Catalog, Models: planner,
		Keys: keySvc, Workspaces: wsSvc, Spend: spend.NewService(st, keySvc, wsSvc, guards),
		Analytics:   analytics.NewService(st, opts.Now),
		Credentials: credentials.NewService(st, opts.Catalog, opts.Keyring, opts.Egress, opts.Now), Ready: a.ready,
		Registry: reg, Now: opts.Now, MaxBufferedBytes: opts.MaxBufferedBytes, BodyReadTimeout: opts.BodyReadTimeout,
		StreamsOnHandlers: opts.StreamsOnHandlers,
		MetricsToken:      opts.MetricsToken, Tracer: tracerIf(tel),
	})
	if err != nil {
		return nil, fmt.Errorf("build server: %w", err)
	}
	a.Handler = a.track(h)
	a.server = h
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	var wg sync.WaitGroup
	wg.Add(6)
	go func() { defer wg.Done(); rec.Run(ctx) }()
	go func() { defer wg.Done(); every(ctx, budget.FlushEvery, func() { _ = budgets.Flush(ctx) }) }()
	go func() { defer wg.Done(); listener.Run(ctx) }()
	go func() { defer wg.Done(); every(ctx, opts.HeartbeatEvery, func() { a.heartbeat(ctx) }) }()
	go func() { defer wg.Done(); every(ctx, opts.SweepEvery, func() { a.sweep(ctx, opts.DeadAfter) }) }()
	go func() {
		defer wg.Done()
		if opts.Retention > 0 {
			every(ctx, cmp.Or(opts.RetentionEvery, 10*time.Minute), func() { a.expire(ctx, opts.Retention, cmp.Or(opts.RetentionBatch, 5000)) })
		}
	}()
	go func() { wg.Wait(); close(a.done) }()
	// Serve only once invalidations arrive: before that, a change made on
	// another replica could go unnoticed here.
	select {
	case <-listener.Ready():
	case <-time.After(10 * time.Second):
		cancel()
		return nil, fmt.Errorf("listen for cache invalidations: not ready after 10s")
	}
	return a, nil
}

// track counts the requests being served, so Close can wait for them.
func (a *App) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.inflight.Add(1)
		defer a.inflight.Done()
		h.ServeHTTP(w, r)
	})
}

// ShutdownStreams waits until ctx is done for the streams relayed off their
// handlers, which http.Server.Shutdown does not know of, then cuts the
// rest.
func (a *App) ShutdownStreams(ctx context.Context) error { return a.server.Shutdown(ctx) }

// every runs f every interval until ctx ends.
func every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// expire deletes the generation records older than retention, batch by
// batch (each one short, so writers never wait long behind it), until none
// is left; the analytics aggregates and spend rollups stay.
func (a *App) expire(ctx context.Context, retention time.Duration, batch int) {
	before := time.Now().Add(-retention)
	var total int64
	for ctx.Err() == nil {
		n, err := a.Store.DeleteGenerationsBefore(ctx, before, batch)
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("deleting expired generation records failed; retried at the next pass", "err", err)
			}
			break
		}
		total += n
		if n < int64(batch) {
			break
		}
	}
	if total > 0 {
		a.log.Info("deleted expired generation records", "count", total, "older_than", before.UTC().Format(time.RFC3339))
	}
}

func (a *App) heartbeat(ctx context.Context) {
	if err := a.Store.Heartbeat(ctx, a.Replica); err != nil && ctx.Err() == nil {
		a.log.Warn("replica heartbeat failed; other replicas take this one for dead if it lasts", "err", err)
	}
}

// sweep resolves what replicas that stopped without closing left behind:
// their budget leases (charged in full: only they knew what their requests
// cost) and their open streams (recorded as interrupted). Every replica
// sweeps; each row is resolved once (it is deleted as it is resolved).
func (a *App) sweep(ctx context.Context, deadAfter time.Duration) {
	now := time.Now()
	n, err := a.Store.InterruptDead(ctx, now.Add(-deadAfter))
	if err != nil && ctx.Err() == nil {
		a.log.Error("resolve streams of dead replicas", "err", err)
	}
	if n > 0 {
		a.log.Warn("recorded streams of a stopped replica as interrupted", "generations", n)
	}
	swept, err := a.Store.SweepLeases(ctx, now, now.Add(-deadAfter))
	if err != nil && ctx.Err() == nil {
		a.log.Error("sweep budget leases", "err", err)
	}
	for _, s := range swept {
		a.log.Warn("charged in full the budget lease of a replica that stopped without handing it back",
			"scope", s.Kind, "id", s.ScopeID, "amount", s.Amount.String())
	}
}

// invalidator applies invalidations to the key, credential and policy caches.
func invalidator(auth *keys.Authenticator, creds *credentials.Cache, policies *policy.Resolver) notify.Handler {
	return func(ev notify.Event) {
		switch ev.Kind {
		case notify.Policy:
			policies.Invalidate(ev.ID)
		case notify.Key:
			auth.Invalidate(func(k keys.Key) bool { return k.ID == ev.ID })
		case notify.Member:
			auth.Invalidate(func(k keys.Key) bool { return k.MemberID == ev.ID })
		case notify.Workspace:
			auth.Invalidate(func(k keys.Key) bool { return k.WorkspaceID == ev.ID })
			creds.Invalidate(ev.ID)
			policies.Invalidate(ev.ID)
		case notify.Credential:
			creds.Invalidate(ev.ID)
		case notify.All:
			auth.InvalidateAll()
			creds.Invalidate("")
			policies.Invalidate("")
		}
	}
}

func (a *App) ready(ctx context.Context) error {
	if a.draining.Load() {
		return server.ErrDraining
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := a.Store.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	return nil
}

// Drain makes /readyz answer 503 so load balancers stop sending traffic.
func (a *App) Drain() { a.draining.Store(true) }

// flushTimeout bounds the final flush of records, which gets its own
// deadline: a grace period spent waiting for streams must not leave it none.
const flushTimeout = 30 * time.Second

// Close waits (within ctx) for the requests still being served, stops the
// background work, hands back the budget leases, flushes every pending record with
// a fresh deadline (spilling them to disk if the database cannot take
// them), and retires the replica.
func (a *App) Close(ctx context.Context) error {
	waited := make(chan struct{})
	go func() {
		a.inflight.Wait()
		_ = a.server.Shutdown(context.Background()) // streams relayed off their handlers
		close(waited)
	}()
	select {
	case <-waited:
	case <-ctx.Done():
		a.log.Warn("requests still running at shutdown; their records are written when they end, if before the process exits")
	}
	a.cancel()
	<-a.done
	fctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	if err := a.Budgets.Close(fctx); err != nil {
		a.log.Warn("hand back budget leases; another replica charges them in full once this one is taken for dead", "err", err)
	}
	if err := a.Recorder.Close(fctx); err != nil {
		return fmt.Errorf("flush generation records: %w", err)
	}
	if err := a.Store.Retire(fctx, a.Replica); err != nil {
		a.log.Warn("retire replica; others will take it for dead", "err", err)
	}
	if err := a.telemetry.Shutdown(fctx); err != nil {
		a.log.Warn("flush telemetry; the last spans and metrics may be lost", "err", err)
	}
	return nil
}

// tracerIf is the tracer provider when spans go somewhere, else nil, so
// the server spends nothing on spans that go nowhere.
func tracerIf(t *telemetry.Telemetry) trace.TracerProvider {
	if !t.Tracing {
		return nil
	}
	return t.Tracer
}
