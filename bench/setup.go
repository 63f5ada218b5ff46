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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/perpetuo/perpetuo/internal/config"
	"github.com/perpetuo/perpetuo/internal/keys"
)

// environment is everything under measurement: the mock upstream (in this
// process), the bare proxy and the gateway (each its own process, so their
// CPU and memory are theirs alone) and the gateway's database.
type environment struct {
	direct, proxy, gateway, guarded target

	upstream    *switchable
	upstreamSrv *http.Server
	proxyProc   *child
	gatewayProc *child
	debugAddr   string // the gateway's profiler
	binary      string // the gateway binary
	key         string // its bootstrap key
	dataDir     string
	db          database
	idleRSS     int64 // the gateway's, once ready and before any load
}

// setup starts the mock upstream, a fresh database, the proxy and the
// gateway binary, and makes the gateway's keys.
func setup(ctx context.Context, binary string) (_ *environment, err error) {
	env := &environment{upstream: &switchable{}}
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
	env.dataDir = cfg.DataDir
	if err := lockRun(cfg.DataDir); err != nil {
		return nil, err
	}
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("gateway binary %s: %w (run make bench, or go build -o bin/perpetuo ./cmd/perpetuo)", binary, err)
	}

	env.upstream.set(fastUpstream())
	srv, upAddr, err := serve(env.upstream)
	if err != nil {
		return nil, fmt.Errorf("start mock upstream: %w", err)
	}
	env.upstreamSrv = srv
	env.direct = target{name: "direct", url: "http://" + upAddr + "/v1/chat/completions", model: directModel}

	fmt.Fprintln(os.Stderr, "bench: preparing database", benchDatabase)
	if env.db, err = openDatabase(ctx, cfg, log); err != nil {
		return nil, err
	}
	if err := clearSpill(cfg.DataDir); err != nil {
		return nil, err
	}
	if env.proxyProc, err = startProxy(ctx, cfg.DataDir, upAddr); err != nil {
		return nil, err
	}
	env.proxy = target{name: "bare proxy", url: "http://" + env.proxyProc.addr + "/v1/chat/completions",
		model: directModel, serving: env.proxyProc}

	fmt.Fprintln(os.Stderr, "bench: starting the gateway", binary)
	key := keys.Generate()
	env.binary, env.key = binary, key
	if env.gatewayProc, env.debugAddr, err = startGateway(ctx, "gateway", binary, cfg.DataDir, env.db.url, "http://"+upAddr, key); err != nil {
		return nil, err
	}
	time.Sleep(time.Second) // let start-up garbage be collected
	env.idleRSS, _ = env.gatewayProc.memory()
	env.gateway = target{name: "perpetuo", url: "http://" + env.gatewayProc.addr + "/v1/chat/completions",
		model: gatewayModel, token: key, serving: env.gatewayProc, gateway: true}
	if env.guarded, err = guardedTarget(ctx, env.gateway); err != nil {
		return nil, fmt.Errorf("make the limited key: %w", err)
	}
	return env, nil
}

// shutdown is what close found while stopping.
type shutdown struct {
	records    int // generation rows after the gateway stopped
	okRecords  int // of which status 200 and not cancelled
	recordsErr error
	err        error // what failed while stopping
}

// close stops the gateway (SIGTERM: it drains, flushes its records and
// exits), counts the records, then stops the proxy, the upstream and the
// database. It tolerates a partially set up environment.
func (e *environment) close(ctx context.Context) shutdown {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var errs []error
	sd := shutdown{recordsErr: errors.New("not counted")}
	if e.gatewayProc != nil {
		if err := e.gatewayProc.stop(60 * time.Second); err != nil {
			errs = append(errs, err)
		}
		if e.db.pool != nil {
			sd.records, sd.okRecords, sd.recordsErr = countRecords(ctx, e.db.pool)
		}
	}
	if err := e.proxyProc.stop(10 * time.Second); err != nil {
		errs = append(errs, err)
	}
	if e.upstreamSrv != nil {
		_ = e.upstreamSrv.Close()
	}
	if e.db.pool != nil {
		e.db.pool.Close()
	}
	if e.db.stop != nil {
		e.db.stop()
	}
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

// lockRun takes, for the life of this process, an exclusive lock in the
// bench's data directory: two runs at once would share the two cores (so
// neither measures anything) and drop each other's database mid-run.
func lockRun(dataDir string) error {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("bench data directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dataDir, "bench.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("bench lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return fmt.Errorf("another bench is running on %s (its lock: %w); wait for it, since two runs share the cores and each other's database", dataDir, err)
	}
	runLock = f // held until the process exits
	return nil
}

var runLock *os.File

// clearSpill removes the generation records a previous run's gateway
// spilled. Their database was just dropped and recreated, so the gateway
// would otherwise adopt them and write them during this run's sections,
// on this run's CPU, into a database they do not belong to.
func clearSpill(dataDir string) error {
	dir := filepath.Join(dataDir, "gateway", "spill")
	files, err := filepath.Glob(filepath.Join(dir, "*.spill"))
	if err != nil {
		return fmt.Errorf("find spilled records: %w", err)
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			return fmt.Errorf("remove a previous run's spilled records: %w", err)
		}
	}
	if len(files) > 0 {
		fmt.Fprintf(os.Stderr, "bench: removed %d spill file(s) a previous run's gateway left for a database since recreated\n", len(files))
	}
	return nil
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
// the pooled connections to it) serves every section.
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
