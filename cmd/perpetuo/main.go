// Command perpetuo is the Perpetuo gateway: serve, migrate and mock-upstream.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/perpetuo/perpetuo/internal/app"
	"github.com/perpetuo/perpetuo/internal/config"
	"github.com/perpetuo/perpetuo/internal/logging"
	"github.com/perpetuo/perpetuo/internal/mockupstream"
	"github.com/perpetuo/perpetuo/internal/store"
)

const usage = `usage: perpetuo <command>

commands:
  serve                 run the gateway (configured by environment, see README)
  migrate up|down       apply or roll back the database migrations
  mock-upstream [flags] run an OpenAI-compatible fake provider (-h for flags)
  keys create ...       create an API key (and its member or workspace); prints it once
  secrets generate-key  print a new master key for PERPETUO_MASTER_KEY
  secrets rotate        re-encrypt BYOK credentials under PERPETUO_MASTER_KEY
  catalog sync ...      import OpenRouter's model documents into a catalog file (-h for flags)
`

func main() {
	// Logs are formatted on the caller's goroutine but written in the
	// background, so a slow terminal or pipe never stalls a request.
	out := logging.NewWriter(os.Stderr, 100*time.Millisecond)
	log, err := newLogger(out, os.Getenv("PERPETUO_LOG_LEVEL"), os.Getenv("PERPETUO_ACCESS_LOG"))
	if err != nil {
		_ = out.Close()
		fmt.Fprintln(os.Stderr, "perpetuo:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, os.Args[1:], log, out)
	stop()
	_ = out.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "perpetuo:", err)
		os.Exit(1)
	}
}

// newLogger builds the process logger from PERPETUO_LOG_LEVEL and
// PERPETUO_ACCESS_LOG. The access log is switched off by filtering its
// records (log=access) at the handler, so whoever builds the access logger
// needs no flag of its own.
func newLogger(out io.Writer, level, access string) (*slog.Logger, error) {
	lvl, err := logging.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("PERPETUO_LOG_LEVEL: %w", err)
	}
	on, err := logging.ParseSwitch(access)
	if err != nil {
		return nil, fmt.Errorf("PERPETUO_ACCESS_LOG: %w", err)
	}
	var h slog.Handler = slog.NewTextHandler(out, &slog.HandlerOptions{Level: lvl})
	if !on {
		h = logging.WithoutAccess(h)
	}
	return slog.New(h), nil
}

func run(ctx context.Context, args []string, log *slog.Logger, console io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "serve":
		cfg, err := config.FromEnv(os.Environ())
		if err != nil {
			return err
		}
		return app.Run(ctx, cfg, log, console)
	case "migrate":
		return migrate(ctx, args[1:], log)
	case "mock-upstream":
		return mockUpstream(ctx, args[1:], log)
	case "keys":
		return keysCommand(ctx, args[1:], log)
	case "secrets":
		return secretsCommand(ctx, args[1:], log)
	case "catalog":
		return catalogCommand(ctx, args[1:], os.Stdout, os.Stderr)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func migrate(ctx context.Context, args []string, log *slog.Logger) error {
	if len(args) != 1 || (args[0] != "up" && args[0] != "down") {
		return errors.New("usage: perpetuo migrate up|down")
	}
	return withStore(ctx, log, args[0], func(config.Config, *store.Store) error {
		log.Info("migrations applied", "direction", args[0])
		return nil
	})
}

func mockUpstream(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("mock-upstream", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9090", "address to listen on")
	var cfg mockupstream.Config
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	srv := &http.Server{Addr: *listen, Handler: mockupstream.New(cfg), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("mock upstream serving", "base_url", "http://"+*listen+"/v1")
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("mock upstream: %w", err)
	}
	return nil
}
