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
	incomplete  bool // the -max-time deadline cut the run short
	shutdown    shutdown
}

// failures is the number of failed requests, warm-up included.
func (r report) failures() int {
	n := 0
	for _, c := range r.comparisons {
		n += c.direct.errs.total() + c.gateway.errs.total()
	}
	return n
}

// gatewayCalls is the number of requests sent to the gateway.
func (r report) gatewayCalls() int {
	n := 0
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
	return r.failures() > 0 || r.incomplete || !r.recordsMatch()
}

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
	p("           \"data:\" line; added = gateway percentile - direct percentile; gw/direct = gateway / direct")
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
	p("goroutines: %d before setup, %d after shutdown", sd.goroutinesAt[0], sd.goroutinesAt[1])
	if !r.failed() {
		p("result: every request succeeded and was checked")
		return
	}
	banner := strings.Repeat("!", 95)
	p("\n%s", banner)
	if r.incomplete {
		p("!! INCOMPLETE RUN: -max-time %s ran out; later measurements are partial or missing", r.opts.maxTime)
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

// ratio formats a/b, or "-" when b is zero.
func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}
