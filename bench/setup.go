package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/perpetuo/perpetuo/internal/app"
	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/config"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/providers"
	"github.com/perpetuo/perpetuo/internal/routing"
	"github.com/perpetuo/perpetuo/internal/secrets"
)

// environment is everything under measurement: the mock upstream, the
// gateway and its database, each started by setup and stopped by close.
type environment struct {
	direct  target
	gateway target

	upstream       *switchable
	upstreamSrv    *http.Server
	gatewaySrv     *http.Server
	upstreamClient *http.Client // the gateway's client to the upstream
	app            *app.App
	db             database
	goroutines     int // before setup
}

// setup starts the mock upstream, a fresh database and the gateway, and
// bootstraps an API key for the gateway target.
func setup(ctx context.Context) (_ *environment, err error) {
	env := &environment{upstream: &switchable{}, goroutines: runtime.NumGoroutine()}
	defer func() {
		if err != nil {
			_ = env.close(context.Background())
		}
	}()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg, err := benchConfig()
	if err != nil {
		return nil, err
	}

	env.upstream.set(http.NotFoundHandler())
	srv, upAddr, err := serve(env.upstream)
	if err != nil {
		return nil, fmt.Errorf("start mock upstream: %w", err)
	}
	env.upstreamSrv = srv
	env.direct = target{name: directTarget, url: "http://" + upAddr + "/v1/chat/completions", model: directModel}

	fmt.Fprintln(os.Stderr, "bench: preparing database", benchDatabase)
	if env.db, err = openDatabase(ctx, cfg, log); err != nil {
		return nil, err
	}

	cat, err := catalog.Default()
	if err != nil {
		return nil, fmt.Errorf("load catalog: %w", err)
	}
	// BYOK is not exercised: the key only has to exist for this run.
	master, err := secrets.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generate master key: %w", err)
	}
	env.upstreamClient = providers.NewHTTPClient()
	env.app, err = app.New(app.Options{
		Pool:       env.db.pool,
		Catalog:    cat,
		Operator:   routing.Set{"mock": {Provider: "mock", BaseURL: "http://" + upAddr + "/v1"}},
		Keyring:    secrets.NewKeyring(master),
		Log:        log,
		HTTPClient: env.upstreamClient,
	})
	if err != nil {
		return nil, fmt.Errorf("build gateway: %w", err)
	}
	key := keys.Generate()
	if _, created, err := env.app.Store.Bootstrap(ctx, key, time.Now()); err != nil {
		return nil, fmt.Errorf("bootstrap API key: %w", err)
	} else if !created {
		return nil, fmt.Errorf("bootstrap API key: database %s was not empty", benchDatabase)
	}
	srv, gwAddr, err := serve(env.app.Handler)
	if err != nil {
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	env.gatewaySrv = srv
	env.gateway = target{name: gatewayTarget, url: "http://" + gwAddr + "/v1/chat/completions", model: gatewayModel, token: key}
	return env, nil
}

// shutdown is what close found while stopping.
type shutdown struct {
	records    int // generation rows after the final flush
	okRecords  int // of which status 200 and not cancelled
	recordsErr error
	// leakedConns are pool connections still acquired once the gateway
	// was closed (the pool is then not closed: Close would wait forever).
	leakedConns   int
	migrationLeak int    // see database.migrationLeak
	goroutinesAt  [2]int // before setup, after close
	err           error  // what failed while stopping
}

// close stops the gateway (flushing its generation records), counts the
// records, then stops the upstream and the database. It tolerates a
// partially set up environment; failures end up in shutdown.err.
func (e *environment) close(ctx context.Context) shutdown {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var errs []error
	sd := shutdown{recordsErr: errors.New("not counted"), migrationLeak: e.db.migrationLeak}
	if e.gatewaySrv != nil {
		if err := e.gatewaySrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop gateway server: %w", err))
		}
	}
	if e.app != nil {
		// Flush first so a flush failure is reported on its own line;
		// Close flushes what is left too.
		if err := e.app.Recorder.Flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flush generation records: %w", err))
		}
		if err := e.app.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close gateway: %w", err))
		}
		sd.records, sd.okRecords, sd.recordsErr = countRecords(ctx, e.db.pool)
	}
	if e.upstreamClient != nil {
		e.upstreamClient.CloseIdleConnections()
	}
	if e.upstreamSrv != nil {
		if err := e.upstreamSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop mock upstream: %w", err))
		}
	}
	if e.db.pool != nil {
		if sd.leakedConns = int(e.db.pool.Stat().AcquiredConns()); sd.leakedConns == 0 {
			e.db.pool.Close()
		}
	}
	if e.db.stop != nil {
		e.db.stop()
	}
	sd.goroutinesAt = [2]int{e.goroutines, settledGoroutines(e.goroutines, 2*time.Second)}
	sd.err = errors.Join(errs...)
	return sd
}

// countRecords counts the generation records, and the successful ones.
func countRecords(ctx context.Context, pool *pgxpool.Pool) (total, ok int, err error) {
	err = pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 200 AND NOT cancelled) FROM generations`).
		Scan(&total, &ok)
	if err != nil {
		return 0, 0, fmt.Errorf("count generation records: %w", err)
	}
	return total, ok, nil
}

// settledGoroutines waits up to limit for the goroutine count to fall back
// to baseline, and returns the last count.
func settledGoroutines(baseline int, limit time.Duration) int {
	deadline := time.Now().Add(limit)
	for {
		n := runtime.NumGoroutine()
		if n <= baseline || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serve serves h on a fresh 127.0.0.1 port with the gateway's server
// settings, and returns the server and its address.
func serve(h http.Handler) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr().String(), nil
}

// switchable serves with the handler set last, so one upstream server (and
// the gateway's pooled connections to it) serves every scenario.
type switchable struct{ h atomic.Pointer[http.Handler] }

func (s *switchable) set(h http.Handler) { s.h.Store(&h) }

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*s.h.Load()).ServeHTTP(w, r) }

// benchConfig is the environment's configuration with the data directory
// moved to .data/bench under the module root (or under PERPETUO_DATA_DIR
// when set), apart from `make run`'s.
func benchConfig() (config.Config, error) {
	cfg, err := config.FromEnv(config.Environ())
	if err != nil {
		return config.Config{}, fmt.Errorf("read configuration: %w", err)
	}
	if os.Getenv("PERPETUO_DATA_DIR") != "" {
		cfg.DataDir = filepath.Join(cfg.DataDir, "bench")
		return cfg, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return config.Config{}, err
	}
	cfg.DataDir = filepath.Join(root, ".data", "bench")
	return cfg, nil
}

// moduleRoot is the nearest directory at or above the working directory
// holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find module root: no go.mod above the working directory; run from the repository")
		}
		dir = parent
	}
}
