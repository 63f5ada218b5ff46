// Package app is the composition root: it builds Perpetuo's parts in
// dependency order from a pool, a catalog and credentials (New), and runs
// them as a server with a database, a listener and graceful shutdown (Run).
package app

import (
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

	"github.com/perpetuo/perpetuo/internal/budget"
	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/credentials"
	"github.com/perpetuo/perpetuo/internal/gateway"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/notify"
	"github.com/perpetuo/perpetuo/internal/providers"
	"github.com/perpetuo/perpetuo/internal/records"
	"github.com/perpetuo/perpetuo/internal/routing"
	"github.com/perpetuo/perpetuo/internal/secrets"
	"github.com/perpetuo/perpetuo/internal/server"
	"github.com/perpetuo/perpetuo/internal/store"
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
	// StreamIdle and AttemptTimeout are the upstream deadlines (0: defaults).
	StreamIdle, AttemptTimeout time.Duration
}

// App is a built gateway: its HTTP handler and the background work to stop.
type App struct {
	Handler  http.Handler
	Store    *store.Store
	Recorder *records.Recorder
	Listener *notify.Listener

	draining atomic.Bool
	cancel   context.CancelFunc
	done     chan struct{}

	// kept so tests can start another replica with the same settings
	catalog  *catalog.Catalog
	operator routing.Set
	log      *slog.Logger
}

// New builds every part and starts the record writer. Close stops it.
func New(opts Options) (*App, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = providers.NewHTTPClient()
	}
	st := store.New(opts.Pool)
	rec := records.NewRecorder(st, opts.Log, opts.Records)
	auth := keys.NewAuthenticator(st, opts.Now)
	creds := credentials.NewCache(st, opts.Keyring, opts.Operator, opts.Log)
	listener := notify.NewListener(opts.Pool, opts.Log, invalidator(auth, creds))
	st.SetNotifier(listener)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	adapters := providers.NewRegistry(opts.HTTPClient)
	planner := &routing.Planner{
		Catalog: opts.Catalog, Credentials: creds,
		Families: func(api string) bool { _, ok := adapters[api]; return ok },
	}
	gw := gateway.New(gateway.Deps{
		Planner: planner, Adapters: adapters, Recorder: rec, Budgets: budget.New(st, opts.Now),
		Log: opts.Log, Metrics: gateway.NewMetrics(reg), Now: opts.Now,
		StreamIdle: opts.StreamIdle, AttemptTimeout: opts.AttemptTimeout,
	})
	a := &App{Store: st, Recorder: rec, Listener: listener, done: make(chan struct{}),
		catalog: opts.Catalog, operator: opts.Operator, log: opts.Log}
	h, err := server.New(server.Config{
		Log: opts.Log, AccessLog: opts.AccessLog, Auth: auth, Gateway: gw, Generations: rec, Store: st,
		Catalog: opts.Catalog, Keyring: opts.Keyring, Models: planner, Ready: a.ready, Registry: reg, Now: opts.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("build server: %w", err)
	}
	a.Handler = h
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); rec.Run(ctx) }()
	go func() { defer wg.Done(); listener.Run(ctx) }()
	go func() { defer wg.Done(); sweepHolds(ctx, st, opts.Log, time.Minute) }()
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

// sweepHolds charges and releases, every interval, budget holds whose
// request never settled (a replica died mid-request). Every replica sweeps;
// a hold is swept once (its row is deleted as it is charged).
func sweepHolds(ctx context.Context, st *store.Store, log *slog.Logger, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		swept, err := st.SweepHolds(ctx, time.Now())
		if err != nil && ctx.Err() == nil {
			log.Error("sweep expired budget holds", "err", err)
		}
		for _, s := range swept {
			log.Warn("charged an expired budget hold in full: its request never settled (a replica stopped mid-request?)",
				"scope", s.Kind, "id", s.ScopeID, "amount", s.Amount.String())
		}
	}
}

// invalidator applies invalidations to the key and credential caches.
func invalidator(auth *keys.Authenticator, creds *credentials.Cache) notify.Handler {
	return func(ev notify.Event) {
		switch ev.Kind {
		case notify.Key:
			auth.Invalidate(func(k keys.Key) bool { return k.ID == ev.ID })
		case notify.Member:
			auth.Invalidate(func(k keys.Key) bool { return k.MemberID == ev.ID })
		case notify.Workspace:
			auth.Invalidate(func(k keys.Key) bool { return k.WorkspaceID == ev.ID })
			creds.Invalidate(ev.ID)
		case notify.Credential:
			creds.Invalidate(ev.ID)
		case notify.All:
			auth.InvalidateAll()
			creds.Invalidate("")
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

// Close stops the record writer and flushes every pending record.
func (a *App) Close(ctx context.Context) error {
	a.cancel()
	<-a.done
	if err := a.Recorder.Close(ctx); err != nil {
		return fmt.Errorf("flush generation records: %w", err)
	}
	return nil
}
