// Command bench measures what the Perpetuo gateway adds to a chat completion
// compared with calling the upstream directly, and prints a report. It is a
// measurement, not a test: nothing passes or fails on timings.
//
// In one process it starts the mock upstream (internal/mockupstream) and the
// full gateway (internal/app: authentication, routing, the OpenAI adapter,
// generation records written to PostgreSQL) behind real http.Servers on
// 127.0.0.1, bootstraps a fresh database "perpetuo_bench" with one API key,
// then, for every scenario and mode, sends the same chat completion requests
// at a fixed concurrency straight to the mock and through the gateway
// (model mock/echo, routed to the mock), and compares the two.
//
// Scenarios:
//   - fast: the mock answers at once and streams as fast as it can, so
//     the difference is the gateway's own cost;
//   - realistic: the mock waits 20ms before answering (non-streaming) or
//     before the first chunk, then streams 200 tokens/s, to show that cost
//     against a realistic upstream call.
//
// Modes: json (non-streaming; latency is until the body is read) and stream
// (SSE; latency is until the body ends, which must be with "data: [DONE]",
// and TTFT is until the first "data:" line). Each target gets warm-up
// requests, then its measured requests in two halves ordered direct,
// gateway, gateway, direct. The report gives, per scenario and mode,
// latency percentiles, TTFT, throughput and the process CPU time per
// request, direct and through the gateway, with the difference and ratio.
//
// Every reply is checked to be the expected echo, and after shutdown every
// gateway request must have left one generation record and no database
// connection may be left acquired. Failures are reported loudly and the
// command then exits with status 2.
//
// Run it with:
//
//	go run ./bench          # or: make bench (under a minute)
//	go run ./bench -n 0.2   # a fifth of the requests, for a quick look
//	go run ./bench -scenario fast -c 1   # unloaded latency, fast upstream only
//
// Flags: -n scales the request counts, -c sets the requests in flight per
// target (default 16), -scenario picks fast, realistic or all, -max-time
// bounds the whole measurement and -request-timeout each request.
// After the load report come the cost of refusing an 8 MB body for an
// unknown model, request validation timed alone at 2 KB, 100 KB and 1 MB,
// and the routing decision for 3 and 50 endpoints (-micro prints only
// these last two, without a database).
// -outage 5m (with -outage-rate 200) measures instead what a database
// outage does to generation records: memory while they wait, and how fast
// the backlog is written once the database answers again.
//
// PostgreSQL is the managed local cluster under .data/bench/postgres
// (started and stopped by the command), or the server DATABASE_URL points
// to; either way the database perpetuo_bench is dropped and recreated on
// every run, so `make run` data is untouched. The client, the gateway, the
// mock and PostgreSQL share the machine's cores, so absolute numbers are
// lower bounds on what the gateway can do alone; compare direct with
// gateway, and runs with each other on the same machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"time"
)

func main() {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
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
	scale       float64       // multiplies every request count
	concurrency int           // requests in flight per target
	outage      time.Duration // measure a database outage this long instead
	outageRate  int           // records per second during it
	scenarios   []scenario    // what to run, in order
	maxTime     time.Duration // bound on the whole measurement
	reqTimeout  time.Duration // bound on one request
	cpuProfile  string        // write a CPU profile of the measurement here
	micro       bool          // measure only validation and routing in-process (no database)
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	o := options{}
	var which string
	fs.Float64Var(&o.scale, "n", 1, "scale factor for request counts (0.2 = quick run)")
	fs.IntVar(&o.concurrency, "c", 16, "concurrent requests per target")
	fs.StringVar(&which, "scenario", "all", "scenario to run: fast, realistic or all")
	fs.DurationVar(&o.maxTime, "max-time", 5*time.Minute, "stop sending requests after this long (the report says so)")
	fs.DurationVar(&o.reqTimeout, "request-timeout", 30*time.Second, "timeout of one request")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measurement to this file (go tool pprof)")
	fs.DurationVar(&o.outage, "outage", 0, "instead of the load scenarios, measure records during a database outage this long (e.g. 5m)")
	fs.IntVar(&o.outageRate, "outage-rate", 200, "records per second during -outage")
	fs.BoolVar(&o.micro, "micro", false, "measure only request validation (2 KB, 100 KB, 1 MB) and the routing decision (3, 50 endpoints); no database needed")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.scale <= 0 {
		return options{}, errors.New("-n must be positive")
	}
	if o.concurrency < 1 {
		return options{}, errors.New("-c must be at least 1")
	}
	sc, err := selectScenarios(which)
	if err != nil {
		return options{}, err
	}
	o.scenarios = sc
	return o, nil
}

// run sets everything up, measures, tears down and prints the report. The
// exit code is 2 when the report says something went wrong: a request
// failed, the run was cut short, or the shutdown found a problem.
func run(o options) (int, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if o.micro {
		return 0, micro()
	}
	env, err := setup(ctx)
	if err != nil {
		return 0, err
	}
	if o.outage > 0 {
		err := measureOutage(ctx, env, o.outage, o.outageRate, os.Stdout)
		env.close(context.Background())
		return 0, err
	}
	rep := report{opts: o, database: env.db.where}
	measureCtx, cancel := context.WithTimeout(ctx, o.maxTime)
	defer cancel()
	l := newLoader(o.concurrency, o.reqTimeout)
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return 0, fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return 0, fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	for _, sc := range o.scenarios {
		env.upstream.set(sc.handler())
		for _, stream := range []bool{false, true} {
			c := measure(measureCtx, l, env, sc, stream, o)
			rep.comparisons = append(rep.comparisons, c)
		}
	}
	var budgetRuns []budgetRun
	var berr error
	if fast, ok := findScenario(o.scenarios, "fast"); ok && measureCtx.Err() == nil {
		env.upstream.set(fast.handler())
		budgetRuns, berr = measureBudgets(measureCtx, l, env, fast.requests(false, o.scale))
		for _, r := range budgetRuns {
			rep.extraCalls += r.b.sent + warmupCount(fast.requests(false, o.scale), o.concurrency)
			rep.extraFailures += r.b.errs.total()
		}
	}
	l.close()
	refusal, rerr := measureUnknownModelRefusal(measureCtx, env.gateway)
	rep.shutdown = env.close(context.Background())
	rep.print(os.Stdout)
	if berr != nil {
		return 0, fmt.Errorf("budgets: %w", berr)
	}
	if budgetRuns != nil {
		printBudgets(os.Stdout, budgetRuns, o.concurrency)
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
