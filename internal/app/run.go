package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/config"
	"github.com/perpetuo/perpetuo/internal/dbpool"
	"github.com/perpetuo/perpetuo/internal/gctune"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/logging"
	"github.com/perpetuo/perpetuo/internal/mockupstream"
	"github.com/perpetuo/perpetuo/internal/pgdev"
	"github.com/perpetuo/perpetuo/internal/records"
	"github.com/perpetuo/perpetuo/internal/routing"
	"github.com/perpetuo/perpetuo/internal/secrets"
	"github.com/perpetuo/perpetuo/internal/store"
)

// shutdownGrace is how long in-flight requests get to finish on shutdown.
const shutdownGrace = 30 * time.Second

// Run serves until ctx ends, then shuts down in reverse order: readiness
// false → drain requests → cancel stragglers → flush records → close the
// pool → stop the managed database.
//
// console receives the messages meant for the person who started it (the
// bootstrap key, how to call the gateway), in order with the logs.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, console io.Writer) error {
	pool, closeDB, err := OpenDatabase(ctx, cfg, log, "up")
	if err != nil {
		return err
	}
	defer closeDB()
	st := store.New(pool)
	key, err := bootstrap(ctx, st, cfg, log, console)
	if err != nil {
		return err
	}
	cat, err := catalog.Load(cfg.CatalogPath)
	if err != nil {
		return err
	}
	ring, err := Keyring(cfg, log)
	if err != nil {
		return err
	}
	operator := maps.Clone(cfg.Credentials)
	demo := cfg.DemoEnabled()
	if demo {
		stopDemo, err := startDemo(cat, operator, log)
		if err != nil {
			return err
		}
		defer stopDemo()
	}
	providers := slices.Sorted(maps.Keys(operator))
	log.Debug("settings", "catalog_providers", len(cat.Providers()), "catalog_models", len(cat.Models()),
		"operator_providers", strings.Join(providers, ","), "connect_timeout", cfg.ConnectTimeout,
		"first_byte_timeout", cfg.FirstByteTimeout, "stream_idle", cfg.StreamIdle, "attempt_timeout", cfg.AttemptTimeout,
		"stream_keepalive", cfg.KeepAlive, "records_retention", cfg.Retention, "demo", demo,
		"otlp_traces", cfg.Telemetry.OTLPTraces, "otlp_metrics", cfg.Telemetry.OTLPMetrics)
	lw, _ := console.(*logging.Writer)
	a, err := New(Options{Pool: pool, Catalog: cat, Operator: operator, Keyring: ring, Log: log, AccessLog: log.With("log", "access"),
		Records: records.Options{SpillDir: filepath.Join(cfg.DataDir, "spill")}, StaleWindow: cfg.StaleWindow, LogWriter: lw, Egress: cfg.Egress,
		MetricsToken: cfg.MetricsToken, ConnectTimeout: cfg.ConnectTimeout, FirstByteTimeout: cfg.FirstByteTimeout,
		StreamIdle: cfg.StreamIdle, AttemptTimeout: cfg.AttemptTimeout, KeepAlive: cfg.KeepAlive, Telemetry: cfg.Telemetry,
		Retention: max(cfg.Retention, 0)})
	if err != nil {
		return err
	}
	if cfg.DebugListen != "" {
		_, stopDebug, err := serveDebug(cfg.DebugListen, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	model := "openai/gpt-4o-mini"
	if demo {
		model = "mock/echo"
	}
	return serve(ctx, a, cfg.Listen, max(cfg.DrainDelay, 0), hint{key: key, model: model, keyFile: filepath.Join(cfg.DataDir, KeyFileName), out: console}, log)
}

// hint is what the startup message suggests trying.
type hint struct {
	key, model, keyFile string
	out                 io.Writer
}

func serve(ctx context.Context, a *App, listen string, drainDelay time.Duration, h hint, log *slog.Logger) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	srv := &http.Server{Handler: a.Handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	defer gctune.Start()() // GC headroom between gctune.Floor and gctune.Ceiling, unless GOGC is set
	debug.FreeOSMemory()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("perpetuo is serving", "addr", ln.Addr().String(), "docs", "http://"+hostPort(ln.Addr())+"/docs")
	printHowToCall(hostPort(ln.Addr()), h)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Readiness goes first, and has time to reach the load balancers
	// before the listener closes; then requests get the grace period; then
	// the stragglers are cut (their records say so) and awaited briefly.
	log.Info("shutting down: readiness off, draining requests", "drain_delay", drainDelay.String())
	a.Drain()
	time.Sleep(drainDelay)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still running after the grace period; closing them", "err", err)
		_ = srv.Close()
	}
	if err := a.ShutdownStreams(sctx); err != nil {
		log.Warn("streams still running after the grace period; closed them", "err", err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), stragglerWait)
	defer wcancel()
	if err := a.Close(wctx); err != nil {
		return err
	}
	log.Info("stopped cleanly")
	return nil
}

// serveDebug serves Go's profiler on addr (config checks it is loopback)
// until stop is called, and returns the address it listens on.
func serveDebug(addr string, log *slog.Logger) (listening string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("PERPETUO_DEBUG_LISTEN: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("profiler serving", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// stragglerWait bounds the wait for requests cut at the end of the grace
// period to finish their records and settlements.
const stragglerWait = 10 * time.Second

// OpenDatabase connects to DATABASE_URL, or starts the managed local
// PostgreSQL under the data directory, and migrates it in direction ("up",
// "down", or "" to leave the schema alone). closeDB closes the pool and stops
// what it started.
func OpenDatabase(ctx context.Context, cfg config.Config, log *slog.Logger, direction string) (pool *pgxpool.Pool, closeDB func(), err error) {
	url, stop := cfg.DatabaseURL, func() {}
	if url == "" {
		cl, err := pgdev.Start(ctx, filepath.Join(cfg.DataDir, "postgres"), log)
		if err != nil {
			return nil, nil, fmt.Errorf("managed PostgreSQL (set DATABASE_URL to use your own): %w", err)
		}
		if err := cl.EnsureDatabase(ctx, "perpetuo"); err != nil {
			_ = cl.Stop(context.Background())
			return nil, nil, err
		}
		url = cl.URL("perpetuo")
		stop = func() {
			if err := cl.Stop(context.Background()); err != nil {
				log.Warn("stop managed PostgreSQL", "err", err)
			}
		}
		log.Info("using managed local PostgreSQL", "dir", filepath.Join(cfg.DataDir, "postgres"))
	}
	pcfg, err := dbpool.Config(url)
	if err == nil {
		pool, err = pgxpool.NewWithConfig(ctx, pcfg)
	}
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("connect to database: %w", err)
	}
	closeDB = func() { pool.Close(); stop() }
	if direction != "" {
		if err := store.Migrate(pool, direction); err != nil {
			closeDB()
			return nil, nil, err
		}
	}
	return pool, closeDB, nil
}

// KeyFileName is where a run that generated the bootstrap key saves it,
// in the data directory, so the first request can be pasted as written.
const KeyFileName = "api-key"

// bootstrap creates the first workspace, owner and key on an empty database.
// It returns the key's plaintext only when this run created it: a key that
// already existed is never printed again. A generated key is shown once and
// saved to the data directory (mode 0600); a PERPETUO_BOOTSTRAP_KEY that the
// database does not know (it was set after the first run) is refused with a
// warning saying what to do.
func bootstrap(ctx context.Context, st *store.Store, cfg config.Config, log *slog.Logger, console io.Writer) (string, error) {
	plaintext, generated := cfg.BootstrapKey, false
	if plaintext == "" {
		plaintext, generated = keys.Generate(), true
	} else if !keys.WellFormed(plaintext) {
		return "", errors.New("PERPETUO_BOOTSTRAP_KEY must look like pk_ followed by at least 16 letters, digits, '_' or '-'")
	}
	b, created, err := st.Bootstrap(ctx, plaintext, time.Now())
	if err != nil {
		return "", err
	}
	if !created {
		if !generated {
			if _, err := st.KeyByHash(ctx, keys.Hash(plaintext)); errors.Is(err, keys.ErrNotFound) {
				log.Warn("PERPETUO_BOOTSTRAP_KEY is ignored: it only names the first key of an empty database, and this database has keys already; " +
					"use a key you have, or create one with: ./bin/perpetuo keys create --workspace-name demo")
			}
		}
		return "", nil
	}
	log.Info("bootstrapped an empty database", "workspace", b.WorkspaceID, "owner", b.MemberID, "key", b.KeyID)
	if generated {
		path := filepath.Join(cfg.DataDir, KeyFileName)
		if err := os.MkdirAll(cfg.DataDir, 0o700); err == nil {
			err = os.WriteFile(path, []byte(plaintext+"\n"), 0o600)
		}
		if err != nil {
			log.Warn("could not save the new API key to the data directory", "err", err)
			path = ""
		}
		fmt.Fprintf(console, "\n  Your API key (shown once, store it now): %s\n", plaintext)
		if path != "" {
			fmt.Fprintf(console, "  Also saved to %s (readable only by you); delete it once stored elsewhere.\n", path)
		}
	}
	return plaintext, nil
}

// printHowToCall shows a newcomer the request that works right now.
func printHowToCall(addr string, h hint) {
	key := h.key
	if key == "" {
		key = "$PERPETUO_KEY"
		fmt.Fprintf(h.out, "\n  Set PERPETUO_KEY to your API key (the first run saved it: export PERPETUO_KEY=$(cat %s)),\n  or create one: ./bin/perpetuo keys create --workspace-name demo\n", h.keyFile)
	}
	fmt.Fprintf(h.out, `
  Try it:
    curl -s http://%[1]s/v1/chat/completions \
      -H "Authorization: Bearer %[2]s" -H "Content-Type: application/json" \
      -d '{"model": "%[3]s", "messages": [{"role": "user", "content": "Hello, Perpetuo"}]}'
  OpenAI clients: base URL http://%[1]s/v1 · API docs: http://%[1]s/docs

`, addr, key, h.model)
}

// startDemo serves the mock upstream in-process and routes provider "mock" to it.
func startDemo(cat *catalog.Catalog, creds routing.Set, log *slog.Logger) (func(), error) {
	var demo *catalog.Provider
	for _, p := range cat.Providers() {
		if p.Demo {
			demo = p
			break
		}
	}
	if demo == nil {
		log.Warn("demo requested but the catalog has no provider marked demo; not starting it")
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo upstream: %w", err)
	}
	srv := &http.Server{Handler: mockupstream.New(mockupstream.Config{TokensPerSecond: 30}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	creds[demo.Slug] = routing.Credential{Provider: demo.Slug, BaseURL: "http://" + ln.Addr().String() + "/v1"}
	log.Warn("DEMO provider '" + demo.Slug + "' is enabled: its models (e.g. mock/echo) echo your last message; they are not real models. Set OPENAI_API_KEY or PERPETUO_PROVIDER_<SLUG>_API_KEY to route for real.")
	return func() { _ = srv.Close() }, nil
}

func hostPort(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && (ta.IP.IsUnspecified() || ta.IP == nil) {
		return fmt.Sprintf("localhost:%d", ta.Port)
	}
	return a.String()
}

// Keyring builds the master keyring: PERPETUO_MASTER_KEY (or a dev key
// generated into the data directory, with a warning), plus
// PERPETUO_MASTER_KEY_OLD while a rotation is under way.
func Keyring(cfg config.Config, log *slog.Logger) (*secrets.Keyring, error) {
	cur, fromFile, err := secrets.LoadOrCreate(cfg.MasterKey, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if fromFile {
		log.Warn("PERPETUO_MASTER_KEY is not set: BYOK credentials are encrypted under a development key kept in the data directory; set PERPETUO_MASTER_KEY in production",
			"file", filepath.Join(cfg.DataDir, secrets.KeyFileName))
	}
	var old []secrets.Key
	if cfg.MasterKeyOld != "" {
		k, err := secrets.ParseKey(cfg.MasterKeyOld)
		if err != nil {
			return nil, fmt.Errorf("PERPETUO_MASTER_KEY_OLD: %w", err)
		}
		old = append(old, k)
	}
	return secrets.NewKeyring(cur, old...), nil
}
