// Command bench is Perpetuo's performance referee: it measures what the
// gateway costs against calling the upstream directly and against the
// floor, a bare net/http reverse proxy, and prints one report. It is a
// measurement, not a test: nothing passes or fails on timings.
//
// In this process run the load generator and the mock upstream
// (internal/mockupstream, answering at once); the bare proxy
// (httputil.ReverseProxy, this program re-executed with -serve-proxy) and
// the gateway (the real binary, `perpetuo serve`, with a fresh database
// "perpetuo_bench") each run as their own process, so that their CPU time
// and memory, read from /proc, are theirs alone. The gateway is called with
// a key without limits and with a key whose limit, guardrail and member
// guardrail make three budgets per request; authentication, routing,
// validation, generation records and access logs are on as in production.
//
// The report's table has, per section (JSON at 16, 64 and 1 in flight,
// streams at 1 and 16, 100 KB and 1 MB bodies) and target, latency
// percentiles, TTFT, throughput relative to direct, the serving process's
// CPU per request (and per relayed chunk) and PostgreSQL's CPU per request
// (every local postgres process). Then: the gateway's idle and peak
// resident memory, 10,000 slow streams held at once, a CPU and an
// allocation profile of the gateway (saved under .data/bench/profiles,
// with their top entries), request validation timed alone at 2 KB, 100 KB
// and 1 MB, and the routing decision for 3 and 50 endpoints.
//
// Every reply is checked (the echo, "data: [DONE]"), and once the gateway
// has stopped (SIGTERM: it drains and flushes) every request sent to it
// must have left one generation record. Failures are reported loudly and
// the command then exits with status 2.
//
// Run it with:
//
//	make bench                            # builds bin/perpetuo, then go run ./bench
//	go run ./bench -gateway /tmp/old-perpetuo   # measure another build (a "before")
//	go run ./bench -n 0.2 -streams 1000   # a quick look
//	go run ./bench -micro                 # validation and routing only, no database
//
// -outage 5m (with -outage-rate 200) measures instead what a database
// outage does to generation records: memory while they wait, and how fast
// the backlog is written once the database answers again.
//
// PostgreSQL is the managed local cluster under .data/bench/postgres
// (started and stopped by the command), or the server DATABASE_URL points
// to; either way the database perpetuo_bench is dropped and recreated on
// every run, so `make run` data is untouched. The load generator, the
// mock, the proxy, the gateway and PostgreSQL share the machine's cores:
// compare targets within one run, and runs on the same machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// gatewayCalls counts every request sent to the gateway, warm-up
// included: each must leave one generation record.
var gatewayCalls atomic.Int64

func main() {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	if opts.serveProxy != "" {
		if err := serveProxy(opts.serveProxy, opts.listen); err != nil {
			fmt.Fprintf(os.Stderr, "bench proxy: %v\n", err)
			os.Exit(1)
		}
		return
	}
	code, err := run(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// options are the command-line settings.
type options struct {
	gateway         string        // the binary under measurement
	scale           float64       // multiplies every request count
	rounds          int           // interleaved rounds per section
	streams         int           // slow streams held at once (0: skip)
	heldUpstream    string        // "h2": the held streams' upstream is served over TLS with HTTP/2; "h1": the plain mock
	outage          time.Duration // measure a database outage this long instead
	outageRate      int           // records per second during it
	maxTime         time.Duration // bound on the whole measurement
	reqTimeout      time.Duration // bound on one request
	micro           bool          // measure only validation and routing in-process (no database)
	only            string        // run only the sections whose name contains this (no profile, no held streams)
	analytics       int           // write this many records and time the analytics reports, instead of the load
	analyticsSpread bool          // with analytics: the worst case, every record's dimensions at random
	serveProxy      string        // internal: serve the bare proxy in front of this upstream
	listen          string        // internal: the bare proxy's address
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	o := options{}
	fs.StringVar(&o.gateway, "gateway", "bin/perpetuo", "the gateway binary to measure")
	fs.Float64Var(&o.scale, "n", 1, "scale factor for request counts (0.2 = quick run)")
	fs.IntVar(&o.rounds, "rounds", 5, "interleaved rounds per section")
	fs.IntVar(&o.streams, "streams", 10000, "slow streams to hold at once through the gateway (0 skips)")
	fs.StringVar(&o.heldUpstream, "held-upstream", "h2", "the held streams' upstream: h2 (TLS and HTTP/2, as providers serve; the gateway is restarted for it) or h1 (the sections' plain HTTP/1.1 mock)")
	fs.DurationVar(&o.maxTime, "max-time", 10*time.Minute, "stop sending requests after this long (the report says so)")
	fs.DurationVar(&o.reqTimeout, "request-timeout", 30*time.Second, "timeout of one request")
	fs.DurationVar(&o.outage, "outage", 0, "instead of the load, measure records during a database outage this long (e.g. 5m)")
	fs.IntVar(&o.outageRate, "outage-rate", 200, "records per second during -outage")
	fs.IntVar(&o.analytics, "analytics", 0, "instead of the load, write this many generation records (e.g. 1000000) and time the analytics reports")
	fs.BoolVar(&o.analyticsSpread, "analytics-spread", false, "with -analytics: draw every record's app, model and provider at random (the worst case for the aggregates)")
	fs.BoolVar(&o.micro, "micro", false, "measure only request validation (2 KB, 100 KB, 1 MB) and the routing decision (3, 50 endpoints); no database needed")
	fs.StringVar(&o.only, "only", "", "run only the parts whose name contains this: a section (\"json c=16\", \"stream\"), \"profile\" or \"held streams\"")
	fs.StringVar(&o.serveProxy, "serve-proxy", "", "internal: serve the bare reverse proxy in front of this upstream URL")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "internal: the bare proxy's address")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.scale <= 0 {
		return options{}, errors.New("-n must be positive")
	}
	if o.heldUpstream != "h2" && o.heldUpstream != "h1" {
		return options{}, errors.New("-held-upstream must be h2 or h1")
	}
	if o.rounds < 1 {
		return options{}, errors.New("-rounds must be at least 1")
	}
	return o, nil
}

// signalNotify delivers SIGINT and SIGTERM on c.
func signalNotify(c chan os.Signal) { signal.Notify(c, os.Interrupt, syscall.SIGTERM) }

// run sets everything up, measures, tears down and prints the report. The
// exit code is 2 when the report says something went wrong: a request
// failed, the run was cut short, or the shutdown found a problem.
func run(o options) (int, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if o.micro {
		return 0, micro()
	}
	if o.outage > 0 {
		return 0, measureOutage(ctx, o.outage, o.outageRate, os.Stdout)
	}
	if o.analytics > 0 {
		return 0, measureAnalytics(ctx, o.analytics, o.analyticsSpread, os.Stdout)
	}
	raiseFileLimit(4*o.streams + 4096)
	env, err := setup(ctx, o.gateway)
	if err != nil {
		return 0, err
	}
	rep := &report{binary: o.gateway, database: env.db.where, pgLocal: env.db.local, rounds: o.rounds, idleRSS: env.idleRSS}
	measureCtx, cancel := context.WithTimeout(ctx, o.maxTime)
	defer cancel()
	for _, s := range sections(env) {
		if measureCtx.Err() != nil {
			break
		}
		if !strings.Contains(s.name, o.only) {
			continue
		}
		s.measure(measureCtx, o.scale, o.rounds, o.reqTimeout)
		rep.sections = append(rep.sections, s)
	}
	_, rep.peakRSS = env.gatewayProc.memory()
	var perr error
	if measureCtx.Err() == nil && strings.Contains("profile", o.only) {
		pr, err := takeProfiles(measureCtx, env, env.guarded, filepath.Join(env.dataDir, "profiles"), 10*time.Second)
		rep.profiles, perr = &pr, err
	}
	if o.streams > 0 && measureCtx.Err() == nil && strings.Contains("held streams", o.only) {
		h := holdStreams(measureCtx, env, env.guarded, o.streams, filepath.Join(env.dataDir, "profiles"), o.heldUpstream == "h2")
		rep.streams = &h
	}
	refusal, rerr := measureUnknownModelRefusal(measureCtx, env.gateway)
	rep.cut = measureCtx.Err() != nil
	rep.calls = gatewayCalls.Load()
	rep.shutdown = env.close(context.Background())
	rep.print(os.Stdout)
	if perr != nil {
		return 0, fmt.Errorf("profiles: %w", perr)
	}
	if rerr != nil {
		return 0, fmt.Errorf("unknown-model refusal: %w", rerr)
	}
	refusal.print(os.Stdout)
	if err := micro(); err != nil {
		return 0, err
	}
	if rep.failed() {
		return 2, nil
	}
	return 0, nil
}

// raiseFileLimit lifts this process's open-file limit (inherited by the
// gateway) to at least n where the system allows: each held stream is a
// client and an upstream connection.
func raiseFileLimit(n int) {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil || l.Cur >= uint64(n) {
		return
	}
	want := syscall.Rlimit{Cur: max(uint64(n), l.Cur), Max: max(uint64(n), l.Max)}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// micro measures, in-process, request validation and the routing decision.
func micro() error {
	rs, err := measureValidation()
	if err != nil {
		return err
	}
	printValidation(os.Stdout, rs)
	rr, err := measureRouting()
	if err != nil {
		return err
	}
	printRouting(os.Stdout, rr)
	return nil
}
