package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// budgetRun is one budget configuration measured through the gateway.
type budgetRun struct {
	name  string
	t     target
	b     batch
	pgCPU time.Duration // PostgreSQL's CPU time while it ran (-1: not measurable)
}

// budgetTargets makes, through the management API, a key with a limit and
// a key with a limit whose key and member each have a guardrail with a
// budget; all limits are far above what the run spends.
func budgetTargets(ctx context.Context, env *environment) ([]budgetRun, error) {
	base := strings.TrimSuffix(env.gateway.url, "/v1/chat/completions")
	owner := env.gateway.token
	api := func(method, path, body string) (map[string]any, error) {
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+owner)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			return nil, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, clip(raw))
		}
		var doc struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		var obj map[string]any
		_ = json.Unmarshal(doc.Data, &obj) // a list leaves it nil
		return obj, nil
	}
	me, err := api("GET", "/v1/key", "")
	if err != nil {
		return nil, err
	}
	ws := "/v1/workspaces/" + me["workspace_id"].(string)
	limited, err := api("POST", ws+"/keys", `{"name":"bench limited","limit":1000000}`)
	if err != nil {
		return nil, err
	}
	with := func(token string) target { t := env.gateway; t.token = token; return t }
	runs := []budgetRun{
		{name: "budgets off", t: env.gateway},
		{name: "key limit", t: with(limited["key"].(string))},
	}
	if _, err := api("GET", ws+"/guardrails", ""); err != nil {
		return runs, nil // a gateway without guardrails (to measure an older version)
	}
	member, err := api("POST", ws+"/members", `{"name":"bench member","role":"member"}`)
	if err != nil {
		return nil, err
	}
	guarded, err := api("POST", ws+"/keys", `{"name":"bench guarded","limit":1000000,"member_id":"`+member["id"].(string)+`"}`)
	if err != nil {
		return nil, err
	}
	for i, assign := range []string{"/keys/" + guarded["id"].(string), "/members/" + member["id"].(string)} {
		g, err := api("POST", ws+"/guardrails", fmt.Sprintf(`{"name":"bench %d","limit_usd":1000000,"reset_interval":"monthly"}`, i))
		if err != nil {
			return nil, err
		}
		if _, err := api("POST", ws+assign+"/guardrail", `{"guardrail_id":"`+g["id"].(string)+`"}`); err != nil {
			return nil, err
		}
	}
	return append(runs, budgetRun{name: "key limit + 2 guardrails", t: with(guarded["key"].(string))}), nil
}

// measureBudgets runs the same JSON load through the gateway with each
// budget configuration, interleaved (each in two halves, off → limit →
// guardrails → guardrails → limit → off), measuring throughput, latency,
// the process's CPU and PostgreSQL's.
func measureBudgets(ctx context.Context, l *loader, env *environment, n int) ([]budgetRun, error) {
	runs, err := budgetTargets(ctx, env)
	if err != nil {
		return nil, err
	}
	for i := range runs { // warm caches and leases
		_ = l.run(ctx, runs[i].t, false, warmupCount(n, l.concurrency))
	}
	order := []int{0, 1, 2, 2, 1, 0}
	if len(runs) == 2 {
		order = []int{0, 1, 1, 0}
	}
	for k, i := range order {
		count := n / 2
		if k >= len(order)/2 {
			count = n - n/2
		}
		pg0 := postgresCPU()
		b := l.run(ctx, runs[i].t, false, count)
		pg1 := postgresCPU()
		runs[i].b.add(b)
		if pg0 < 0 || pg1 < 0 || runs[i].pgCPU < 0 {
			runs[i].pgCPU = -1
		} else {
			runs[i].pgCPU += pg1 - pg0
		}
		fmt.Fprintf(os.Stderr, "bench: budgets/%s: %d requests in %s\n", runs[i].name, count, b.wall.Round(time.Millisecond))
	}
	return runs, nil
}

func printBudgets(w io.Writer, runs []budgetRun, concurrency int) {
	fmt.Fprintf(w, "\nbudgets (fast upstream, json, %d in flight, the same load through the gateway with each; target: ≥90%% of budgets off):\n", concurrency)
	row := "  %-26s %9s %9s %9s %9s %12s %12s %7s\n"
	fmt.Fprintf(w, row, "configuration", "req/s", "vs off", "p50", "p99", "gw CPU/req", "PG CPU/req", "errors")
	off := throughput(runs[0].b)
	for _, r := range runs {
		d := latencies(r.b, false)
		pg := "n/a"
		if r.pgCPU >= 0 && len(r.b.samples) > 0 {
			pg = us(r.pgCPU / time.Duration(len(r.b.samples)))
		}
		fmt.Fprintf(w, row, r.name, fmt.Sprintf("%.0f", throughput(r.b)), ratio(throughput(r.b), off),
			ms(d.percentile(50)), ms(d.percentile(99)), us(cpuPerRequest(r.b)), pg, strconv.Itoa(r.b.errs.total()))
	}
	fmt.Fprintln(w, "  gw CPU is this whole process (load generator, mock upstream, gateway); PG CPU is every local")
	fmt.Fprintln(w, "  postgres process (n/a when DATABASE_URL points elsewhere or /proc is unreadable).")
}

// postgresCPU is the user + system CPU time of every process named
// postgres on this machine (the managed cluster's), or -1 when /proc
// cannot tell.
func postgresCPU() time.Duration {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		return -1
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	var total time.Duration
	for _, p := range stats {
		raw, err := os.ReadFile(p)
		if err != nil {
			continue // exited meanwhile
		}
		open, end := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
		if open < 0 || end < open || string(raw[open+1:end]) != "postgres" {
			continue
		}
		f := strings.Fields(string(raw[end+1:]))
		if len(f) < 13 {
			continue
		}
		// After the name: state is field 3 of stat, utime 14 and stime 15.
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(ut+st) * tick
	}
	return total
}
