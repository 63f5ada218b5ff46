package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report is everything the run found, printed as plain text.
type report struct {
	opts        options
	database    string
	comparisons []comparison
	shutdown    shutdown
	// extraCalls and extraFailures are the budget section's requests
	// (warm-up included) and failures: they leave records too.
	extraCalls, extraFailures int
}

// incomplete reports whether the run was cut short (-max-time or an
// interrupt) before every planned request was sent.
func (r report) incomplete() bool {
	if len(r.comparisons) < 2*len(r.opts.scenarios) {
		return true
	}
	for _, c := range r.comparisons {
		if !c.complete() {
			return true
		}
	}
	return false
}

// failures is the number of failed requests, warm-up included.
func (r report) failures() int {
	n := r.extraFailures
	for _, c := range r.comparisons {
		n += c.direct.errs.total() + c.gateway.errs.total()
	}
	return n
}

// gatewayCalls is the number of requests sent to the gateway.
func (r report) gatewayCalls() int {
	n := r.extraCalls
	for _, c := range r.comparisons {
		n += c.gatewayCalls
	}
	return n
}

// recordsMatch reports whether the gateway left one record per request.
func (r report) recordsMatch() bool {
	return r.shutdown.recordsErr == nil && r.shutdown.records == r.gatewayCalls()
}

// failed reports whether the run must be reported as failed.
func (r report) failed() bool {
	return r.failures() > 0 || r.incomplete() || !r.recordsMatch() || r.shutdown.leakedConns > 0 ||
		r.shutdown.err != nil
}

// print writes the report: the setup, the table and the checks.
func (r report) print(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	title := "Perpetuo gateway overhead: the mock upstream called directly vs through the gateway"
	p("\n%s\n%s", title, strings.Repeat("=", len(title)))
	p("%s %s/%s, GOMAXPROCS=%d, NumCPU=%d", runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.GOMAXPROCS(0), runtime.NumCPU())
	p("NOTE: the load generator, the gateway and the mock upstream (all in this process) and PostgreSQL")
	p("      share the same %d cores: the gateway's overhead includes competing with its own load.", runtime.NumCPU())
	p("database:  %s, database %s (recreated for this run)", r.database, benchDatabase)
	p("request:   system + user message (%d words), max_tokens %d; the mock echoes the %d words;",
		len(strings.Fields(prompt)), maxTokens, len(strings.Fields(expectedReply)))
	p("           streams ask for stream_options.include_usage; every reply is checked")
	p("method:    warm-up per target, then the requests in two halves ordered direct, gateway, gateway,")
	p("           direct, %d in flight; latency = until the body is read to the end; TTFT = until the first",
		r.opts.concurrency)
	p("           \"data:\" line; added = gateway percentile - direct percentile; gw/direct = gateway / direct;")
	p("           CPU/request = user+system CPU of this process (client, mock and gateway; not PostgreSQL)")
	p("           per successful request, so its added column is the gateway's own CPU cost")
	p("caveats:   with more requests in flight than cores, the fast scenario saturates the CPUs and its")
	p("           added latency is mostly queueing behind the gateway's CPU cost (-c 1 shows unloaded")
	p("           latency); CPU/request also counts background work over the wall time (timers, GC, the")
	p("           record writer), which dominates it in the slow realistic scenario; the realistic mock")
	p("           paces with timers that fire up to ~1ms late when the process is idle, so differences of")
	p("           a few ms there, even negative ones, are within that noise")
	p("scenarios:")
	for _, sc := range r.opts.scenarios {
		p("  %-10s %s", sc.name, sc.about)
	}
	p("")
	r.printTable(w)
	p("")
	r.printChecks(w)
}

// row formats one line of the table.
const row = "%-10s %-7s %9s %5s  %-12s %11s %11s %11s %10s\n"

func (r report) printTable(w io.Writer) {
	fmt.Fprintf(w, row, "scenario", "mode", "requests", "conc", "metric", "direct", "gateway", "added", "gw/direct")
	fmt.Fprintln(w, strings.Repeat("-", 95))
	for i, c := range r.comparisons {
		if i > 0 {
			fmt.Fprintln(w)
		}
		lines := [][5]string{}
		dl, gl := latencies(c.direct, false), latencies(c.gateway, false)
		for _, q := range []float64{50, 90, 99} {
			lines = append(lines, durationLine(fmt.Sprintf("latency p%g", q), dl.percentile(q), gl.percentile(q)))
		}
		if c.stream {
			dt, gt := latencies(c.direct, true), latencies(c.gateway, true)
			for _, q := range []float64{50, 99} {
				lines = append(lines, durationLine(fmt.Sprintf("TTFT p%g", q), dt.percentile(q), gt.percentile(q)))
			}
		}
		dr, gr := throughput(c.direct), throughput(c.gateway)
		lines = append(lines, [5]string{"throughput", fmt.Sprintf("%.0f/s", dr), fmt.Sprintf("%.0f/s", gr),
			fmt.Sprintf("%+.0f/s", gr-dr), ratio(gr, dr)})
		dc, gc := cpuPerRequest(c.direct), cpuPerRequest(c.gateway)
		lines = append(lines, [5]string{"CPU/request", us(dc), us(gc), signedUS(gc - dc), ratio(gc.Seconds(), dc.Seconds())})
		lines = append(lines, [5]string{"errors", fmt.Sprint(c.direct.errs.total()), fmt.Sprint(c.gateway.errs.total()), "", ""})
		for j, l := range lines {
			sc, mode, n, conc := "", "", "", ""
			if j == 0 {
				sc, mode, n, conc = c.scenario, c.mode(), fmt.Sprint(c.planned), fmt.Sprint(r.opts.concurrency)
			}
			fmt.Fprintf(w, row, sc, mode, n, conc, l[0], l[1], l[2], l[3], l[4])
		}
	}
}

// printChecks reports failures, the generation records and the goroutines
// left after shutdown.
func (r report) printChecks(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	sd := r.shutdown
	switch {
	case sd.recordsErr != nil:
		p("generation records: NOT CHECKED: %v", sd.recordsErr)
	case r.recordsMatch():
		p("generation records: %d written for %d gateway requests (warm-up included), %d of them successful: ok",
			sd.records, r.gatewayCalls(), sd.okRecords)
	default:
		p("generation records: MISMATCH: %d written for %d gateway requests (warm-up included), %d successful",
			sd.records, r.gatewayCalls(), sd.okRecords)
	}
	if sd.leakedConns > 0 {
		p("database pool: LEAK: %d connection(s) still acquired after the gateway closed; pool not closed", sd.leakedConns)
	} else {
		p("database pool: no connection left acquired after the gateway closed: ok")
	}
	if sd.migrationLeak > 0 {
		p("WARNING: store.Migrate left %d connection(s) acquired on its pool (never released, so pgxpool.Pool.Close",
			sd.migrationLeak)
		p("         would block forever); the benchmark migrates through a separate pool and abandons it,")
		p("         so its background goroutine outlives the shutdown")
	}
	p("goroutines: %d before setup, %d after shutdown", sd.goroutinesAt[0], sd.goroutinesAt[1])
	if !r.failed() {
		p("result: every request succeeded and was checked")
		return
	}
	banner := strings.Repeat("!", 95)
	p("\n%s", banner)
	if r.incomplete() {
		p("!! INCOMPLETE RUN: interrupted or -max-time %s ran out; some measurements are partial", r.opts.maxTime)
	}
	if n := r.failures(); n > 0 {
		p("!! %d REQUESTS FAILED; their latencies are excluded from the table:", n)
		for _, c := range r.comparisons {
			for _, t := range []struct {
				name string
				b    batch
			}{{directTarget, c.direct}, {gatewayTarget, c.gateway}} {
				kinds := make([]string, 0, len(t.b.errs.counts))
				for k := range t.b.errs.counts {
					kinds = append(kinds, k)
				}
				slices.Sort(kinds)
				for _, k := range kinds {
					p("!!   %s/%s %s: %d × %s (e.g. %q)", c.scenario, c.mode(), t.name, t.b.errs.counts[k], k,
						clip([]byte(t.b.errs.example[k])))
				}
			}
		}
	}
	if !r.recordsMatch() {
		p("!! THE GATEWAY DID NOT LEAVE EXACTLY ONE GENERATION RECORD PER REQUEST (see above)")
	}
	if r.shutdown.err != nil {
		p("!! SHUTDOWN FAILED: %v", r.shutdown.err)
	}
	if r.shutdown.leakedConns > 0 {
		p("!! THE GATEWAY LEAKED %d DATABASE CONNECTION(S) (see above)", r.shutdown.leakedConns)
	}
	p("%s", banner)
}

// durationLine is a table line comparing two durations.
func durationLine(metric string, direct, gateway time.Duration) [5]string {
	return [5]string{metric, ms(direct), ms(gateway), signedMS(gateway - direct), ratio(gateway.Seconds(), direct.Seconds())}
}

// ms formats d in milliseconds.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// signedMS formats d in milliseconds with its sign.
func signedMS(d time.Duration) string {
	return fmt.Sprintf("%+.2fms", float64(d)/float64(time.Millisecond))
}

// us formats d in microseconds.
func us(d time.Duration) string {
	return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
}

// signedUS formats d in microseconds with its sign.
func signedUS(d time.Duration) string {
	return fmt.Sprintf("%+.0fµs", float64(d)/float64(time.Microsecond))
}

// ratio formats a/b, or "-" when b is zero.
func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}
