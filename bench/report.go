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
	binary   string
	database string
	pgLocal  bool
	rounds   int
	sections []*section
	idleRSS  int64
	peakRSS  int64 // the gateway's VmHWM before the held streams
	profiles *profiles
	streams  *heldStreams
	shutdown shutdown
	calls    int64 // requests sent to the gateway, warm-up included
	cut      bool  // -max-time or an interrupt stopped the run early
}

// failures is the number of failed requests, warm-up included.
func (r *report) failures() int {
	n := 0
	for _, s := range r.sections {
		for _, b := range s.results {
			n += b.errs.total()
		}
	}
	if r.profiles != nil {
		n += r.profiles.errs.total()
	}
	if r.streams != nil {
		n += r.streams.errs.total()
	}
	return n
}

// incomplete reports whether some planned request was not sent.
func (r *report) incomplete() bool {
	if r.cut {
		return true
	}
	for _, s := range r.sections {
		if !s.complete() {
			return true
		}
	}
	return false
}

// recordsMatch reports whether the gateway left one record per request.
func (r *report) recordsMatch() bool {
	return r.shutdown.recordsErr == nil && int64(r.shutdown.records) == r.calls
}

func (r *report) failed() bool {
	return r.failures() > 0 || r.incomplete() || !r.recordsMatch() || r.shutdown.err != nil
}

const (
	mib = 1 << 20
	row = "%-15s %-17s %6s %8s %8s %8s %8s %8s %8s %7s %9s %9s %9s %5s\n"
)

// print writes the report: the setup, one table, the targets and the checks.
func (r *report) print(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	title := "Perpetuo performance: the mock upstream direct, through a bare reverse proxy, and through Perpetuo"
	p("\n%s\n%s", title, strings.Repeat("=", len(title)))
	p("%s %s/%s, NumCPU=%d; gateway binary %s", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), r.binary)
	p("database: %s, database %s (recreated for this run)", r.database, benchDatabase)
	p("targets:  direct = the mock upstream (in the bench process); bare proxy = httputil.ReverseProxy, its own")
	p("          process; perpetuo = the gateway binary with a key without limits; perpetuo, limits = a key with")
	p("          a limit whose key and member each have a guardrail with a budget (three budgets per request).")
	p("          Auth, policy, routing, validation, generation records and access logs are on in both.")
	p("method:   closed loop; per section a warm-up per target, then %d interleaved rounds (the order rotates);", r.rounds)
	p("          every reply is checked (the echo, [DONE]); latency = until the body ends; TTFT = until the first")
	p("          data line; CPU/req = user+system CPU of the serving process (/proc) per request; PG/req = every")
	p("          local postgres process's; CPU/chunk = CPU/req ÷ data lines per stream. All processes share the")
	p("          same %d cores, so throughput is bounded by everyone's CPU; compare targets within a run.", runtime.NumCPU())
	p("")
	fmt.Fprintf(w, row, "section", "target", "n", "p50", "p90", "p99", "TTFT p50", "TTFT p99", "req/s", "×direct", "CPU/req", "CPU/chunk", "PG/req", "err")
	fmt.Fprintln(w, strings.Repeat("-", 139))
	for i, s := range r.sections {
		if i > 0 {
			fmt.Fprintln(w)
		}
		direct := throughput(s.results[0])
		for j, t := range s.targets {
			b := s.results[j]
			d := latencies(b, false)
			ttft50, ttft99, chunk := "", "", ""
			if s.stream {
				tt := latencies(b, true)
				ttft50, ttft99 = ms(tt.percentile(50)), ms(tt.percentile(99))
			}
			cpu, pg := "-", "-"
			if t.serving != nil {
				cpu = us(cpuPerRequest(b))
				if s.stream {
					chunk = fmt.Sprintf("%.1fµs", float64(cpuPerRequest(b))/float64(time.Microsecond)/meanChunks(b))
				}
			}
			if t.gateway && r.pgLocal {
				pg = us(perRequest(b.pgCPU, b))
			}
			name := ""
			if j == 0 {
				name = s.name
			}
			fmt.Fprintf(w, row, name, t.name, fmt.Sprint(len(b.samples)), ms(d.percentile(50)), ms(d.percentile(90)), ms(d.percentile(99)),
				ttft50, ttft99, fmt.Sprintf("%.0f", throughput(b)), ratio(throughput(b), direct), cpu, chunk, pg, fmt.Sprint(b.errs.total()))
		}
	}
	p("")
	r.printTargets(w)
	if pr := r.profiles; pr != nil {
		p("\nprofiles of the gateway (perpetuo, limits; json c=16; %d requests):", pr.requests)
		p("  CPU  %s (go tool pprof -top %s)", pr.cpuFile, pr.cpuFile)
		for _, l := range pr.cpuTop {
			p("    %s", l)
		}
		p("  allocations  %s (go tool pprof -sample_index=alloc_space -top %s)", pr.allocFile, pr.allocFile)
		for _, l := range pr.allocTop {
			p("    %s", l)
		}
	}
	p("")
	r.printChecks(w)
}

// printTargets judges the gateway (with limits) against the targets.
func (r *report) printTargets(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT MET"
	}
	p("targets (perpetuo, limits against the bare proxy of the same run):")
	for _, s := range r.sections {
		px, ok1 := s.result("bare proxy")
		gw, ok2 := s.result("perpetuo, limits")
		d, ok3 := s.result("direct")
		if !ok1 || !ok2 || !ok3 || len(gw.samples) == 0 {
			continue
		}
		switch {
		case !s.stream && s.pad == 0 && s.conc > 1:
			g, x := cpuPerRequest(gw), cpuPerRequest(px)
			p("  %-15s gateway CPU/req %s ≤ proxy's %s (%.2f×): %s", s.name, us(g), us(x), g.Seconds()/x.Seconds(), verdict(g <= x))
			if r.pgLocal {
				pg := perRequest(gw.pgCPU, gw)
				p("  %-15s PostgreSQL CPU/req %s < 20µs: %s", s.name, us(pg), verdict(pg < 20*time.Microsecond))
			}
		case !s.stream && s.conc == 1:
			for _, q := range []float64{50, 99} {
				ga := latencies(gw, false).percentile(q) - latencies(d, false).percentile(q)
				pa := latencies(px, false).percentile(q) - latencies(d, false).percentile(q)
				p("  %-15s added latency p%g %s ≤ 1.2 × proxy's %s: %s", s.name, q, signedMS(ga), signedMS(pa), verdict(float64(ga) <= 1.2*float64(pa)))
			}
		case s.stream && s.conc == 1:
			ga := latencies(gw, true).percentile(50) - latencies(d, true).percentile(50)
			pa := latencies(px, true).percentile(50) - latencies(d, true).percentile(50)
			p("  %-15s added TTFT p50 %s ≤ 1.2 × proxy's %s: %s", s.name, signedMS(ga), signedMS(pa), verdict(float64(ga) <= 1.2*float64(pa)))
		}
	}
	p("  %-15s idle RSS %.1f MiB ≤ 35 MB (33.4 MiB): %s; peak over the load above %.1f MiB", "memory",
		float64(r.idleRSS)/mib, verdict(r.idleRSS <= 35_000_000), float64(r.peakRSS)/mib)
	if h := r.streams; h != nil {
		perStream := float64(h.peakRSS-h.baseRSS) / float64(max(h.maxHeld, 1))
		p("  %-15s %d slow streams (%d at once at most) in %.1f MiB (from %.1f idle; %.1f KiB per stream), %d errors",
			"held streams", h.n, h.maxHeld, float64(h.peakRSS)/mib, float64(h.baseRSS)/mib, perStream/1024, h.errs.total())
		p("  %-15s gateway CPU %.1f s over the %.0f s hold (%.0f µs per stream)", "", h.cpu.Seconds(), h.wall.Seconds(),
			float64(h.cpu.Microseconds())/float64(max(h.n, 1)))
		if h.upRequests > 0 {
			p("  %-15s upstream %s: %d connections for %d requests (%d over HTTP/2)", "", h.upstream, h.upConns, h.upRequests, h.upH2)
		} else {
			p("  %-15s upstream %s (the sections' mock)", "", h.upstream)
		}
		if h.fdLimit > 0 {
			p("  %-15s capped from %d: the open-file limit here is %d", "", h.requested, h.fdLimit)
		}
		at := float64(h.baseRSS) + perStream*float64(h.requested)
		p("  %-15s %d streams in ≤ 500 MiB (%.0f MiB at %.1f KiB each): %s", "", h.requested, at/mib, perStream/1024,
			verdict(at <= 500*mib && h.errs.total() == 0 && h.ok == h.n))
		if h.heapFile != "" {
			p("  %-15s heap profile with them open: %s", "", h.heapFile)
		}
	}
}

// printChecks reports failures and the generation records.
func (r *report) printChecks(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	sd := r.shutdown
	switch {
	case sd.recordsErr != nil:
		p("generation records: NOT CHECKED: %v", sd.recordsErr)
	case r.recordsMatch():
		p("generation records: %d written for %d gateway requests (warm-up included), %d of them successful: ok",
			sd.records, r.calls, sd.okRecords)
	default:
		p("generation records: MISMATCH: %d written for %d gateway requests (warm-up included), %d successful",
			sd.records, r.calls, sd.okRecords)
	}
	if !r.failed() {
		p("result: every request succeeded and was checked; the gateway stopped cleanly")
		return
	}
	banner := strings.Repeat("!", 100)
	p("\n%s", banner)
	if r.incomplete() {
		p("!! INCOMPLETE RUN: interrupted or -max-time ran out; some measurements are partial")
	}
	if n := r.failures(); n > 0 {
		p("!! %d REQUESTS FAILED; their latencies are excluded from the table:", n)
		for _, s := range r.sections {
			for i, t := range s.targets {
				printTally(p, s.name+" "+t.name, s.results[i].errs)
			}
		}
		if r.profiles != nil {
			printTally(p, "profiling", r.profiles.errs)
		}
		if r.streams != nil {
			printTally(p, "held streams", r.streams.errs)
		}
	}
	if !r.recordsMatch() {
		p("!! THE GATEWAY DID NOT LEAVE EXACTLY ONE GENERATION RECORD PER REQUEST (see above)")
	}
	if sd.err != nil {
		p("!! SHUTDOWN FAILED: %v", sd.err)
	}
	p("%s", banner)
}

func printTally(p func(string, ...any), where string, t tally) {
	kinds := make([]string, 0, len(t.counts))
	for k := range t.counts {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		p("!!   %s: %d × %s (e.g. %q)", where, t.counts[k], k, clip([]byte(t.example[k])))
	}
}

// meanChunks is the mean number of data lines per successful stream.
func meanChunks(b batch) float64 {
	if len(b.samples) == 0 {
		return 1
	}
	n := 0
	for _, s := range b.samples {
		n += s.chunks
	}
	return max(float64(n)/float64(len(b.samples)), 1)
}

// perRequest is d per successful request of b.
func perRequest(d time.Duration, b batch) time.Duration {
	if len(b.samples) == 0 {
		return 0
	}
	return d / time.Duration(len(b.samples))
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

// ratio formats a/b, or "-" when b is zero.
func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}
