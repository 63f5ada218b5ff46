// Package app is the composition root: it builds Perpetuo's parts in
// dependency order from a pool, a catalog and credentials (New), and runs
// them as a server with a database, a listener and graceful shutdown (Run).
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/gateway"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/providers"
	"github.com/perpetuo/perpetuo/internal/records"
	"github.com/perpetuo/perpetuo/internal/routing"
	"github.com/perpetuo/perpetuo/internal/server"
	"github.com/perpetuo/perpetuo/internal/store"
)

// Options are what New builds the gateway from.
type Options struct {
	Pool        *pgxpool.Pool
	Catalog     *catalog.Catalog
	Credentials routing.Credentials
	Log         *slog.Logger
	AccessLog   *slog.Logger // nil: no access log
	HTTPClient  *http.Client // nil: providers.NewHTTPClient()
	Records     records.Options
	Now         func() time.Time
}

// App is a built gateway: its HTTP handler and the background work to stop.
type App struct {
	Handler  http.Handler
	Store    *store.Store
	Recorder *records.Recorder

	draining atomic.Bool
	cancel   context.CancelFunc
	done     chan struct{}
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	adapters := providers.NewRegistry(opts.HTTPClient)
	planner := &routing.Planner{
		Catalog: opts.Catalog, Credentials: opts.Credentials,
		Families: func(api string) bool { _, ok := adapters[api]; return ok },
	}
	gw := gateway.New(planner, adapters, rec, opts.Log, gateway.NewMetrics(reg), opts.Now)
	a := &App{Store: st, Recorder: rec, done: make(chan struct{})}
	h, err := server.New(server.Config{
		Log: opts.Log, AccessLog: opts.AccessLog, Auth: keys.NewAuthenticator(st, opts.Now), Gateway: gw,
		Generations: rec, Usage: st, Models: planner, Ready: a.ready, Registry: reg, Now: opts.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("build server: %w", err)
	}
	a.Handler = h
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() {
		defer close(a.done)
		rec.Run(ctx)
	}()
	return a, nil
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
