package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/routing"
)

// routingResult is the cost of one routing decision.
type routingResult struct {
	endpoints int
	strategy  string
	res       testing.BenchmarkResult
}

// staticCreds is the same credential set for every workspace.
type staticCreds routing.Set

func (s staticCreds) For(context.Context, string) (routing.Set, error) { return routing.Set(s), nil }

// measureRouting times Planner.Plan (candidates, filters, ordering and the
// decision record, with live health) for a model served by n endpoints.
func measureRouting() ([]routingResult, error) {
	var out []routingResult
	for _, n := range []int{3, 50} {
		var provs, eps []string
		creds := staticCreds{}
		for i := range n {
			slug := fmt.Sprintf("p%02d", i)
			provs = append(provs, fmt.Sprintf(`{"slug":%q,"name":%q,"api":"openai","data_policy":{"zdr":%t}}`, slug, slug, i%3 == 0))
			eps = append(eps, fmt.Sprintf(`{"provider":%q,"upstream_model":"m","pricing":{"prompt":"0.00000%d","completion":"0.00000%d"},"context_length":128000,"quantization":"fp8","latency_ms":%d,"throughput":%d,"supported_parameters":["max_tokens","temperature","tools"]}`,
				slug, 1+i%9, 2+i%7, 100+i*7, 50+i*3))
			creds[slug] = routing.Credential{Provider: slug}
		}
		doc := `{"providers":[` + strings.Join(provs, ",") + `],"models":[{"id":"a/m","name":"M","context_length":128000,"endpoints":[` + strings.Join(eps, ",") + `]}]}`
		cat, err := catalog.Parse([]byte(doc))
		if err != nil {
			return nil, err
		}
		health := routing.NewTracker()
		for i := range n {
			health.Observe(fmt.Sprintf("p%02d", i), "a/m", routing.Outcome{OK: i%5 != 0, TTFT: 1e8, Total: 1e9, OutputTokens: 100})
		}
		p := &routing.Planner{Catalog: cat, Credentials: creds, Families: func(string) bool { return true },
			Health: health, Sessions: routing.NewSessions(1000)}
		for _, strategy := range []string{routing.Balanced, routing.Cheapest, routing.Fastest} {
			f := routing.Facts{Strategy: strategy, PromptTokens: 500, MaxOutput: 256, Params: []string{"max_tokens"},
				Prefs: routing.Prefs{Ignore: []string{"p01"}, RequireParameters: true}}
			var failed error
			res := testing.Benchmark(func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := p.Plan(context.Background(), "ws", []string{"a/m"}, f); err != nil {
						failed = err
					}
				}
			})
			if failed != nil {
				return nil, failed
			}
			out = append(out, routingResult{endpoints: n, strategy: strategy, res: res})
		}
	}
	return out, nil
}

func printRouting(w io.Writer, rs []routingResult) {
	title := "Routing decision: Planner.Plan per request (filters, order, decision record, live health)"
	fmt.Fprintf(w, "\n%s\n%s\n", title, strings.Repeat("=", len(title)))
	const row = "%-10s %-10s %12s %12s %10s\n"
	fmt.Fprintf(w, row, "endpoints", "strategy", "ns/op", "B/op", "allocs/op")
	fmt.Fprintln(w, strings.Repeat("-", 58))
	for _, r := range rs {
		fmt.Fprintf(w, row, fmt.Sprint(r.endpoints), r.strategy, fmt.Sprint(r.res.NsPerOp()),
			fmt.Sprint(r.res.AllocedBytesPerOp()), fmt.Sprint(r.res.AllocsPerOp()))
	}
}
