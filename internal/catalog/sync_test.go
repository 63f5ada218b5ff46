package catalog

import (
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const fixtures = "testdata/openrouter"

var syncDay = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

// copyFixtures copies the OpenRouter fixture documents into a temp directory
// that a test may alter.
func copyFixtures(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir(fixtures, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(fixtures, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), b, 0o600)
	})
	require.NoError(t, err)
	return dir
}

// fixtureServer serves a directory of fixtures as OpenRouter's API under
// /api/v1, and records the paths requested.
type fixtureServer struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
	auth  []string
}

func newFixtureServer(t *testing.T, dir string) *fixtureServer {
	t.Helper()
	s := &fixtureServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.paths = append(s.paths, r.URL.Path)
		s.auth = append(s.auth, r.Header.Get("Authorization"))
		s.mu.Unlock()
		p, ok := strings.CutPrefix(r.URL.Path, "/api/v1/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		var file string
		switch {
		case p == "models":
			file = "models.json"
		case p == "endpoints/zdr":
			file = "zdr.json"
		case strings.HasPrefix(p, "models/") && strings.HasSuffix(p, "/endpoints"):
			file = "endpoints/" + strings.TrimSuffix(strings.TrimPrefix(p, "models/"), "/endpoints") + ".json"
		default:
			http.NotFound(w, r)
			return
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(file)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *fixtureServer) requested() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

func skipsOf(r *SyncResult) (endpoints, models []string) {
	for _, s := range r.SkippedEndpoints {
		endpoints = append(endpoints, s.String())
	}
	for _, s := range r.SkippedModels {
		models = append(models, s.String())
	}
	return endpoints, models
}

// checkFullSync checks the catalog imported from the whole fixture set, in
// either mode; source is where the llama endpoints document came from.
func checkFullSync(t *testing.T, res *SyncResult, llamaSource string) {
	t.Helper()
	// What is written is what loads.
	c, err := Parse(res.JSON)
	require.NoError(t, err)
	require.Equal(t, 4, res.Models)
	require.Equal(t, 9, res.Endpoints)
	require.Equal(t, 7, res.Providers)

	var slugs []string
	for _, p := range c.Providers() {
		slugs = append(slugs, p.Slug)
	}
	require.Equal(t, []string{"anthropic", "deepinfra", "google-ai-studio", "google-vertex", "groq", "nebius", "together"}, slugs)

	var ids []string
	for _, m := range c.Models() {
		ids = append(ids, m.ID)
	}
	require.Equal(t, []string{"anthropic/claude-sonnet-4", "google/gemini-2.5-flash", "meta-llama/llama-3.3-70b-instruct", "qwen/qwen-2.5-72b-instruct"}, ids)

	// Providers: API family, base URL (built in, or none) and ZDR from the
	// zdr document.
	for _, tc := range []struct {
		slug, name, api, baseURL string
		zdr                      bool
	}{
		{"groq", "Groq", "openai", "https://api.groq.com/openai/v1", true},
		{"together", "Together", "openai", "https://api.together.xyz/v1", true},
		// ZDR for its llama endpoint only, not its qwen one.
		{"deepinfra", "DeepInfra", "openai", "https://api.deepinfra.com/v1/openai", false},
		{"nebius", "Nebius AI Studio", "openai", "", false},
		{"anthropic", "Anthropic", "anthropic", "https://api.anthropic.com/v1", true},
		{"google-ai-studio", "Google AI Studio", "gemini", "https://generativelanguage.googleapis.com/v1beta", false},
		{"google-vertex", "Google Vertex", "gemini", "", false},
	} {
		p, ok := c.Provider(tc.slug)
		require.True(t, ok, tc.slug)
		require.Equal(t, tc.name, p.Name, tc.slug)
		require.Equal(t, tc.api, p.API, tc.slug)
		require.Equal(t, tc.baseURL, p.BaseURL, tc.slug)
		require.Equal(t, tc.zdr, p.DataPolicy.ZDR, tc.slug)
	}
	require.Contains(t, res.Notes, `provider "deepinfra": zdr only on the 1 of its 2 imported endpoints that are in the ZDR list`)
	// The endpoint that is ZDR says so; the provider's other one does not.
	endpointPolicy := func(model string) DataPolicy {
		m, ok := c.Model(model)
		require.True(t, ok, model)
		for i := range m.Endpoints {
			if m.Endpoints[i].Provider == "deepinfra" {
				p, _ := c.Provider("deepinfra")
				return Policy(p, &m.Endpoints[i])
			}
		}
		t.Fatalf("%s has no deepinfra endpoint", model)
		return DataPolicy{}
	}
	require.True(t, endpointPolicy("meta-llama/llama-3.3-70b-instruct").ZDR)
	require.False(t, endpointPolicy("qwen/qwen-2.5-72b-instruct").ZDR)
	// A provider Perpetuo knows nothing about fails closed.
	nebius, _ := c.Provider("nebius")
	require.Equal(t, Unknown, nebius.DataPolicy)

	m, ok := c.Model("meta-llama/llama-3.3-70b-instruct")
	require.True(t, ok)
	require.Equal(t, "Meta: Llama 3.3 70B Instruct", m.Name)
	require.Equal(t, int64(1733506137), m.Created)
	require.Equal(t, 131072, m.ContextLength)
	require.Equal(t, []string{"text"}, m.InputModalities)
	require.Equal(t, "Llama3", m.Tokenizer)
	require.Len(t, m.Endpoints, 4)
	type want struct {
		provider, upstream, prompt, completion, request, quant string
		ctx, maxOut, latency, throughput                       int
	}
	for i, w := range []want{
		{"groq", "llama-3.3-70b-versatile", "0.00000059", "0.00000079", "0", "", 131072, 32768, 180, 276},
		{"together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "0.00000088", "0.00000088", "0", "fp8", 131072, 0, 450, 110},
		{"deepinfra", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "0.00000023", "0.0000004", "0", "fp8", 131072, 16384, 551, 40},
		// Not in the embedded catalog: the OpenRouter id; no endpoint
		// context_length: the model's; null latency: unknown.
		{"nebius", "meta-llama/llama-3.3-70b-instruct", "0.00000013", "0.0000004", "0", "fp8", 131072, 0, 0, 0},
	} {
		e := m.Endpoints[i]
		require.Equal(t, w.provider, e.Provider)
		require.Equal(t, w.upstream, e.UpstreamModel, w.provider)
		require.Equal(t, w.prompt, e.Pricing.Prompt.String(), w.provider)
		require.Equal(t, w.completion, e.Pricing.Completion.String(), w.provider)
		require.Equal(t, w.request, e.Pricing.Request.String(), w.provider)
		require.Equal(t, w.quant, e.Quantization, w.provider)
		require.Equal(t, w.ctx, e.ContextLength, w.provider)
		require.Equal(t, w.maxOut, e.MaxCompletionTokens, w.provider)
		require.Equal(t, w.latency, e.LatencyMs, w.provider)
		require.Equal(t, w.throughput, e.Throughput, w.provider)
		require.Equal(t, llamaSource, e.Source, w.provider)
		require.Equal(t, "2026-03-14", e.UpdatedAt, w.provider)
	}
	require.Equal(t, []string{"max_tokens", "temperature", "top_p", "stop", "tools"}, m.Endpoints[0].SupportedParameters)
	// Prices are written as the exact decimal strings.
	require.Contains(t, string(res.JSON), `"prompt": "0.00000023"`)

	q, _ := c.Model("qwen/qwen-2.5-72b-instruct")
	require.Equal(t, "0.0001", q.Endpoints[1].Pricing.Request.String())
	require.Equal(t, []string{"max_tokens", "temperature", "top_p"}, q.Endpoints[1].SupportedParameters, "null endpoint parameters: the model's")
	a, _ := c.Model("anthropic/claude-sonnet-4")
	require.Equal(t, "claude-sonnet-4-20250514", a.Endpoints[0].UpstreamModel)
	require.Equal(t, "unknown", a.Endpoints[0].Quantization)

	eps, models := skipsOf(res)
	require.Len(t, eps, 4)
	require.Contains(t, eps[0], `provider "deepinfra": second endpoint of provider "deepinfra" (tag "deepinfra/turbo"`)
	require.Equal(t, `model "meta-llama/llama-3.3-70b-instruct", provider "lambda": pricing.prompt "free": not a decimal number`, eps[1])
	require.Equal(t, `model "meta-llama/llama-3.3-70b-instruct", provider "hyperbolic": pricing.completion is missing`, eps[2])
	require.Equal(t, `model "openrouter/auto", provider "openrouter": pricing.prompt "-1" is negative (a variable price)`, eps[3])
	require.Len(t, models, 2)
	require.Contains(t, models[0], `model "mistralai/mistral-nemo": no endpoints document`)
	require.Equal(t, `model "openrouter/auto": no endpoint could be imported`, models[1])
}

func TestSyncFromURL(t *testing.T) {
	t.Parallel()
	srv := newFixtureServer(t, copyFixtures(t))
	base := srv.URL + "/api/v1/"
	res, err := Sync(context.Background(), SyncOptions{From: base, Today: syncDay, APIKey: "sk-or-test"})
	require.NoError(t, err)
	checkFullSync(t, res, srv.URL+"/api/v1/models/meta-llama/llama-3.3-70b-instruct/endpoints")
	require.Contains(t, srv.requested(), "/api/v1/endpoints/zdr")
	for _, a := range srv.auth {
		require.Equal(t, "Bearer sk-or-test", a)
	}
}

func TestSyncFromDirectory(t *testing.T) {
	t.Parallel()
	dir := copyFixtures(t)
	res, err := Sync(context.Background(), SyncOptions{From: dir, Today: syncDay})
	require.NoError(t, err)
	checkFullSync(t, res, filepath.Join(dir, "endpoints", "meta-llama", "llama-3.3-70b-instruct.json"))

	// The written document loads as PERPETUO_CATALOG would.
	out := filepath.Join(t.TempDir(), "catalog.json")
	require.NoError(t, os.WriteFile(out, res.JSON, 0o600))
	c, err := Load(out)
	require.NoError(t, err)
	_, ok := c.Model("openai/gpt-4o")
	require.False(t, ok)
}

func TestSyncModelsFilter(t *testing.T) {
	t.Parallel()
	srv := newFixtureServer(t, copyFixtures(t))
	res, err := Sync(context.Background(), SyncOptions{
		From:   srv.URL + "/api/v1",
		Models: []string{"qwen/qwen-2.5-72b-instruct"},
		Today:  syncDay,
	})
	require.NoError(t, err)
	require.Equal(t, 1, res.Models)
	require.Empty(t, res.SkippedEndpoints)
	require.Empty(t, res.SkippedModels)
	m, ok := res.Catalog.Model("qwen/qwen-2.5-72b-instruct")
	require.True(t, ok)
	require.Len(t, m.Endpoints, 2)
	require.Len(t, res.Catalog.Providers(), 2)
	together, _ := res.Catalog.Provider("together")
	require.True(t, together.DataPolicy.ZDR)
	deepinfra, _ := res.Catalog.Provider("deepinfra")
	require.False(t, deepinfra.DataPolicy.ZDR, "its qwen endpoint is not in the ZDR list")

	// Only that model's endpoints were fetched.
	require.ElementsMatch(t, []string{"/api/v1/models", "/api/v1/models/qwen/qwen-2.5-72b-instruct/endpoints", "/api/v1/endpoints/zdr"}, srv.requested())

	_, err = Sync(context.Background(), SyncOptions{From: srv.URL + "/api/v1", Models: []string{"qwen/qwen-2.5-72b-instruct", "nope/missing"}})
	require.ErrorContains(t, err, "models not in the models document: nope/missing")
}

func TestSyncBaseURLs(t *testing.T) {
	t.Parallel()
	dir := copyFixtures(t)
	res, err := Sync(context.Background(), SyncOptions{
		From:     dir,
		Models:   []string{"meta-llama/llama-3.3-70b-instruct"},
		BaseURLs: map[string]string{"nebius": "https://nebius.example/v1", "groq": "http://127.0.0.1:9999/v1", "other": "https://x.example/v1"},
		Today:    syncDay,
	})
	require.NoError(t, err)
	p, _ := res.Catalog.Provider("nebius")
	require.Equal(t, "https://nebius.example/v1", p.BaseURL)
	p, _ = res.Catalog.Provider("groq")
	require.Equal(t, "http://127.0.0.1:9999/v1", p.BaseURL, "the given base URL wins over the built-in one")
	require.Contains(t, res.Notes, `base URL for provider "other" unused: no imported endpoint has that provider`)

	_, err = Sync(context.Background(), SyncOptions{From: dir, BaseURLs: map[string]string{"nebius": "ftp://nebius"}})
	require.ErrorContains(t, err, `imported catalog does not validate: provider "nebius": base_url`)
}

func TestSyncBadDocuments(t *testing.T) {
	t.Parallel()
	write := func(t *testing.T, dir, rel, content string) {
		t.Helper()
		require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.FromSlash(rel)), []byte(content), 0o600))
	}
	t.Run("malformed models document", func(t *testing.T) {
		t.Parallel()
		dir := copyFixtures(t)
		write(t, dir, "models.json", `{"data": [ {"id": "a/b",`)
		_, err := Sync(context.Background(), SyncOptions{From: dir})
		require.ErrorContains(t, err, "models document "+filepath.Join(dir, "models.json"))
	})
	t.Run("models document without data", func(t *testing.T) {
		t.Parallel()
		dir := copyFixtures(t)
		write(t, dir, "models.json", `{"error": {"message": "rate limited"}}`)
		_, err := Sync(context.Background(), SyncOptions{From: dir})
		require.ErrorContains(t, err, `no "data" array`)
	})
	t.Run("malformed endpoints document", func(t *testing.T) {
		t.Parallel()
		dir := copyFixtures(t)
		write(t, dir, "endpoints/qwen/qwen-2.5-72b-instruct.json", `{"data": {"endpoints": [}`)
		_, err := Sync(context.Background(), SyncOptions{From: dir})
		require.ErrorContains(t, err, `model "qwen/qwen-2.5-72b-instruct": endpoints document`)
	})
	t.Run("endpoint field of the wrong type", func(t *testing.T) {
		t.Parallel()
		dir := copyFixtures(t)
		write(t, dir, "endpoints/qwen/qwen-2.5-72b-instruct.json", `{"data": {"endpoints": [{"tag": "together", "context_length": "lots"}]}}`)
		_, err := Sync(context.Background(), SyncOptions{From: dir})
		require.ErrorContains(t, err, `model "qwen/qwen-2.5-72b-instruct": endpoints document`)
	})
	t.Run("malformed zdr document", func(t *testing.T) {
		t.Parallel()
		dir := copyFixtures(t)
		write(t, dir, "zdr.json", `[]`)
		_, err := Sync(context.Background(), SyncOptions{From: dir})
		require.ErrorContains(t, err, "zdr document")
	})
	t.Run("missing zdr document", func(t *testing.T) {
		t.Parallel()
		dir := copyFixtures(t)
		require.NoError(t, os.Remove(filepath.Join(dir, "zdr.json")))
		_, err := Sync(context.Background(), SyncOptions{From: dir})
		require.ErrorContains(t, err, "zdr document")
	})
	t.Run("price that is not a number is a reported skip", func(t *testing.T) {
		t.Parallel()
		dir := copyFixtures(t)
		write(t, dir, "endpoints/qwen/qwen-2.5-72b-instruct.json", `{"data": {"endpoints": [
			{"tag": "together", "provider_name": "Together", "context_length": 32768, "pricing": {"prompt": "0.0000012", "completion": "1,2"}},
			{"tag": "deepinfra/bf16", "provider_name": "DeepInfra", "context_length": 32768, "pricing": {"prompt": "0.00000012", "completion": "0.00000039", "request": {"usd": 1}}},
			{"tag": "novita", "provider_name": "NovitaAI", "context_length": 32768, "pricing": {"prompt": 1.5e-7, "completion": "0.0000004"}}
		]}}`)
		res, err := Sync(context.Background(), SyncOptions{From: dir, Models: []string{"qwen/qwen-2.5-72b-instruct"}})
		require.NoError(t, err)
		eps, _ := skipsOf(res)
		require.Equal(t, []string{
			`model "qwen/qwen-2.5-72b-instruct", provider "together": pricing.completion "1,2": not a decimal number`,
			`model "qwen/qwen-2.5-72b-instruct", provider "deepinfra": pricing.request {"usd": 1}: not a decimal number`,
		}, eps)
		m, _ := res.Catalog.Model("qwen/qwen-2.5-72b-instruct")
		require.Len(t, m.Endpoints, 1)
		require.Equal(t, "0.00000015", m.Endpoints[0].Pricing.Prompt.String(), "a JSON number is read exactly too")
		p, _ := res.Catalog.Provider("novita")
		require.Equal(t, "https://api.novita.ai/v3/openai", p.BaseURL)
	})
	t.Run("no model left", func(t *testing.T) {
		t.Parallel()
		dir := copyFixtures(t)
		_, err := Sync(context.Background(), SyncOptions{From: dir, Models: []string{"openrouter/auto"}})
		require.ErrorContains(t, err, "no model could be imported")
	})
	t.Run("server error", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "upstream down", http.StatusBadGateway)
		}))
		t.Cleanup(srv.Close)
		_, err := Sync(context.Background(), SyncOptions{From: srv.URL})
		require.ErrorContains(t, err, "status 502: upstream down")
	})
	t.Run("document too large", func(t *testing.T) {
		t.Parallel()
		srv := newFixtureServer(t, copyFixtures(t))
		_, err := Sync(context.Background(), SyncOptions{From: srv.URL + "/api/v1", MaxDocumentBytes: 1024})
		require.ErrorContains(t, err, "is larger than 1024 bytes")
	})
	t.Run("not a directory", func(t *testing.T) {
		t.Parallel()
		_, err := Sync(context.Background(), SyncOptions{From: filepath.Join(fixtures, "models.json")})
		require.ErrorContains(t, err, "is not a directory")
	})
}

func TestProviderSlug(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ tag, name, want string }{
		{"together/fp8", "Together", "together"},
		{"", "Together", "together"},
		{"", "Google AI Studio", "google-ai-studio"},
		{"Fireworks", "", "fireworks"},
		{"amazon-bedrock/us-east-1", "Amazon Bedrock", "amazon-bedrock"},
		{"", "Nebius AI Studio (Fast)", "nebius-ai-studio-fast"},
		{"//", "--", ""},
	} {
		got := providerSlug(tc.tag, tc.name)
		require.Equal(t, tc.want, got, "%q %q", tc.tag, tc.name)
		if got != "" {
			require.Regexp(t, slugPattern, got)
		}
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw  string
		want int
	}{
		{``, 0}, {`null`, 0}, {`{"p50": 25.5, "p75": 35.2}`, 26}, {`{"p50": null}`, 0}, {`120`, 120}, {`0.2`, 1}, {`-3`, 0},
	} {
		got, err := median([]byte(tc.raw))
		require.NoError(t, err, tc.raw)
		require.Equal(t, tc.want, got, tc.raw)
	}
	_, err := median([]byte(`"fast"`))
	require.Error(t, err)
}
