package catalog

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
)

func TestDefaultCatalogLoads(t *testing.T) {
	t.Parallel()
	c, err := Default()
	require.NoError(t, err)
	m, ok := c.Model("mock/echo")
	require.True(t, ok)
	p, ok := c.Provider(m.Endpoints[0].Provider)
	require.True(t, ok)
	require.True(t, p.Demo, "the mock provider must be labelled as a demo")
	_, ok = c.Model("openai/gpt-4o-mini")
	require.True(t, ok)
}

func TestPricingCostIsExact(t *testing.T) {
	t.Parallel()
	p := Pricing{
		Prompt:     decimal.RequireFromString("0.00000015"),
		Completion: decimal.RequireFromString("0.0000006"),
		Request:    decimal.RequireFromString("0.0001"),
	}
	// 3*0.00000015 + 195*0.0000006 + 0.0001, with no float rounding.
	require.Equal(t, "0.00021745", p.Cost(3, 195).String())
	require.True(t, p.Cost(0, 0).Equal(p.Request))
}

func TestParseRejectsBadCatalogs(t *testing.T) {
	t.Parallel()
	prov := `{"slug":"p","name":"P","api":"openai","base_url":"http://x"}`
	ep := `{"provider":"p","upstream_model":"m","pricing":{"prompt":"0.1","completion":"0.2"},"context_length":10}`
	cases := []struct{ name, doc, want string }{
		{"unknown field", `{"providers":[` + prov + `],"models":[],"pricez":1}`, "unknown field"},
		{"bad api family", `{"providers":[{"slug":"p","name":"P","api":"soap"}],"models":[]}`, "api \"soap\""},
		{"bad base url", `{"providers":[{"slug":"p","name":"P","api":"openai","base_url":"ftp://x"}],"models":[]}`, "base_url"},
		{"model id without author", `{"providers":[` + prov + `],"models":[{"id":"m","name":"M","endpoints":[` + ep + `]}]}`, "author/slug"},
		{"endpoint of unknown provider", `{"providers":[` + prov + `],"models":[{"id":"a/m","name":"M","endpoints":[{"provider":"q","upstream_model":"m","context_length":1}]}]}`, "not in providers"},
		{"negative price", `{"providers":[` + prov + `],"models":[{"id":"a/m","name":"M","endpoints":[{"provider":"p","upstream_model":"m","pricing":{"prompt":"-1"},"context_length":1}]}]}`, "negative"},
		{"duplicate model", `{"providers":[` + prov + `],"models":[{"id":"a/m","name":"M","endpoints":[` + ep + `]},{"id":"a/m","name":"M","endpoints":[` + ep + `]}]}`, "twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.doc))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestLoadReplacesDefault(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "catalog.json")
	doc := `{"providers":[{"slug":"local","name":"Local vLLM","api":"openai","base_url":"http://127.0.0.1:8000/v1"}],
	"models":[{"id":"local/qwen","name":"Qwen","context_length":32768,"endpoints":[{"provider":"local","upstream_model":"Qwen/Qwen2.5-7B","pricing":{"prompt":"0","completion":"0"},"context_length":32768}]}]}`
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
	c, err := Load(path)
	require.NoError(t, err)
	require.Len(t, c.Models(), 1)
	_, ok := c.Model("openai/gpt-4o")
	require.False(t, ok, "a catalog file replaces the default, it does not merge")
}
