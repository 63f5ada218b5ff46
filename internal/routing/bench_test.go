package routing

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/perpetuo/perpetuo/internal/catalog"
)

// BenchmarkPlan is one routing decision for a model served by 3 and 50
// endpoints (bench/ reports the same: go run ./bench -micro).
func BenchmarkPlan(b *testing.B) {
	for _, n := range []int{3, 50} {
		var provs, eps []string
		creds := static{}
		for i := range n {
			slug := fmt.Sprintf("p%02d", i)
			provs = append(provs, fmt.Sprintf(`{"slug":%q,"name":%q,"api":"openai","data_policy":{"zdr":%t}}`, slug, slug, i%3 == 0))
			eps = append(eps, fmt.Sprintf(`{"provider":%q,"upstream_model":"m","pricing":{"prompt":"0.00000%d","completion":"0.00000%d"},"context_length":128000,"quantization":"fp8","latency_ms":%d,"throughput":%d,"supported_parameters":["max_tokens","temperature","tools"]}`,
				slug, 1+i%9, 2+i%7, 100+i*7, 50+i*3))
			creds[slug] = Credential{Provider: slug}
		}
		cat, err := catalog.Parse([]byte(`{"providers":[` + strings.Join(provs, ",") + `],"models":[{"id":"a/m","name":"M","context_length":128000,"endpoints":[` + strings.Join(eps, ",") + `]}]}`))
		if err != nil {
			b.Fatal(err)
		}
		h := NewTracker()
		for i := range n {
			h.Observe(fmt.Sprintf("p%02d", i), "a/m", Outcome{OK: i%5 != 0, TTFT: 1e8, Total: 1e9, OutputTokens: 100})
		}
		p := &Planner{Catalog: cat, Credentials: creds, Families: func(string) bool { return true }, Health: h}
		f := Facts{PromptTokens: 500, MaxOutput: 256, Params: []string{"max_tokens"}, Prefs: Prefs{Ignore: []string{"p01"}, RequireParameters: true}}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Plan(context.Background(), "ws", []string{"a/m"}, f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
