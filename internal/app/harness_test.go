package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/mockupstream"
	"github.com/perpetuo/perpetuo/internal/pgtest"
	"github.com/perpetuo/perpetuo/internal/records"
	"github.com/perpetuo/perpetuo/internal/routing"
	"github.com/perpetuo/perpetuo/internal/secrets"
	perpetuo "github.com/perpetuo/perpetuo/sdk/go"
)

// testCatalog has a demo model on one endpoint and a model with two
// endpoints ("flaky" is cheaper, so strategy cheapest tries it first; balanced, the default, does too almost always) for fallback tests.
const testCatalog = `{
 "providers": [
  {"slug":"mock","name":"Mock","api":"openai","demo":true,"data_policy":{"zdr":true,"trains_on_data":false}},
  {"slug":"flaky","name":"Flaky","api":"openai","data_policy":{"zdr":false,"trains_on_data":true}},
  {"slug":"steady","name":"Steady","api":"openai","data_policy":{"zdr":true,"trains_on_data":false}},
  {"slug":"nocred","name":"No credential","api":"openai","data_policy":{"zdr":true,"trains_on_data":false}},
  {"slug":"tri-a","name":"Trio A","api":"openai","data_policy":{"zdr":true,"trains_on_data":false}},
  {"slug":"tri-b","name":"Trio B","api":"openai","data_policy":{"zdr":true,"trains_on_data":false}},
  {"slug":"tri-c","name":"Trio C","api":"openai","data_policy":{"zdr":true,"trains_on_data":false}},
  {"slug":"claude","name":"Claude","api":"anthropic","data_policy":{"zdr":true,"trains_on_data":false}},
  {"slug":"gemini","name":"Gemini","api":"gemini","data_policy":{"zdr":true,"trains_on_data":false}},
  {"slug":"azure","name":"Azure OpenAI","api":"azure","data_policy":{"zdr":false,"trains_on_data":false}},
  {"slug":"mistral","name":"Mistral","api":"openai","compat":{"stream_usage":"always"},"data_policy":{"zdr":false,"trains_on_data":false}}
 ],
 "models": [
  {"id":"mock/echo","name":"Echo","context_length":8192,"endpoints":[
    {"provider":"mock","upstream_model":"echo","pricing":{"prompt":"0.000001","completion":"0.000002"},"context_length":8192}]},
  {"id":"test/duo","name":"Duo","context_length":8192,"endpoints":[
    {"provider":"flaky","upstream_model":"duo-flaky","pricing":{"prompt":"0.0000001","completion":"0.0000002"},"context_length":8192},
    {"provider":"steady","upstream_model":"duo-steady","pricing":{"prompt":"0.000003","completion":"0.000004"},"context_length":8192}]},
  {"id":"test/leaky","name":"Leaky","context_length":8192,"endpoints":[
    {"provider":"flaky","upstream_model":"leaky","pricing":{"prompt":"0.0000001","completion":"0.0000002"},"context_length":8192}]},
  {"id":"test/trio","name":"Trio","context_length":8192,"endpoints":[
    {"provider":"tri-a","upstream_model":"a","pricing":{"prompt":"0.000001","completion":"0.000001"},"context_length":8192,"latency_ms":10,"throughput":500},
    {"provider":"tri-b","upstream_model":"b","pricing":{"prompt":"0.000002","completion":"0.000002"},"context_length":8192,"latency_ms":900,"throughput":500},
    {"provider":"tri-c","upstream_model":"c","pricing":{"prompt":"0.000004","completion":"0.000004"},"context_length":8192,"latency_ms":500,"throughput":500}]},
  {"id":"test/claude","name":"Claude","context_length":8192,"endpoints":[
    {"provider":"claude","upstream_model":"claude-mock","pricing":{"prompt":"0.000003","completion":"0.000015","input_cache_read":"0.0000003","input_cache_write":"0.00000375"},"context_length":8192,"max_completion_tokens":4096},
    {"provider":"steady","upstream_model":"claude-steady","pricing":{"prompt":"0.000004","completion":"0.00002"},"context_length":8192}]},
  {"id":"test/gemini","name":"Gemini","context_length":8192,"endpoints":[
    {"provider":"gemini","upstream_model":"gemini-mock","pricing":{"prompt":"0.0000003","completion":"0.0000025","input_cache_read":"0.000000075"},"context_length":8192,"max_completion_tokens":4096}]},
  {"id":"test/azure","name":"Azure","context_length":8192,"endpoints":[
    {"provider":"azure","upstream_model":"gpt-4o-mock","pricing":{"prompt":"0.0000025","completion":"0.00001","input_cache_read":"0.00000125"},"context_length":8192}]},
  {"id":"test/mistral","name":"Mistral","context_length":8192,"endpoints":[
    {"provider":"mistral","upstream_model":"mistral-mock","pricing":{"prompt":"0.0000004","completion":"0.000002"},"context_length":8192,
     "supported_parameters":["max_tokens","temperature","top_p","stop","response_format"]}]},
  {"id":"test/unreachable","name":"Unreachable","context_length":8192,"endpoints":[
    {"provider":"nocred","upstream_model":"x","pricing":{"prompt":"0","completion":"0"},"context_length":8192}]}
 ]
}`

// env is one gateway on its own database, with fake upstreams.
type env struct {
	t        testing.TB
	app      *App
	srv      *httptest.Server
	key      string
	ws       string
	ring     *secrets.Keyring
	master   secrets.Key
	pool     *pgxpool.Pool
	openai   openai.Client
	sdk      *perpetuo.ClientWithResponses
	upstream map[string]*httptest.Server
	replicas []*App // started by replica()
}

// setup builds a gateway whose providers are the given fake upstreams
// (provider slug → handler); providers not given get a default mock.
func setup(t testing.TB, upstreams map[string]http.Handler) *env {
	t.Helper()
	return setupWith(t, upstreams, func(*Options) {})
}

// setupWith is setup with options adjusted by tune.
func setupWith(t testing.TB, upstreams map[string]http.Handler, tune func(*Options)) *env {
	t.Helper()
	pool := pgtest.New(t)
	cat, err := catalog.Parse([]byte(testCatalog))
	require.NoError(t, err)
	creds := routing.Set{}
	e := &env{t: t, upstream: map[string]*httptest.Server{}}
	for _, slug := range []string{"mock", "flaky", "steady", "tri-a", "tri-b", "tri-c", "claude", "gemini", "mistral"} {
		h := upstreams[slug]
		switch {
		case h != nil:
		case slug == "mistral":
			h = mistralFake()
		case slug == "claude":
			h = mockupstream.NewAnthropic(mockupstream.Config{})
		case slug == "gemini":
			h = mockupstream.NewGemini(mockupstream.Config{})
		default:
			h = mockupstream.New(mockupstream.Config{})
		}
		s := httptest.NewServer(h)
		t.Cleanup(s.Close)
		e.upstream[slug] = s
		path := "/v1"
		if slug == "gemini" {
			path = "/v1beta"
		}
		creds[slug] = routing.Credential{Provider: slug, BaseURL: s.URL + path}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mk, err := secrets.GenerateKey()
	require.NoError(t, err)
	e.master, e.ring = mk, secrets.NewKeyring(mk)
	opts := Options{Pool: pool, Catalog: cat, Operator: creds, Keyring: e.ring, Log: log, Egress: loopbackEgress}
	tune(&opts)
	a, err := New(opts)
	require.NoError(t, err)
	e.app = a
	e.key = keys.Generate()
	b, created, err := a.Store.Bootstrap(context.Background(), e.key, time.Now())
	require.NoError(t, err)
	require.True(t, created)
	e.ws, e.pool = b.WorkspaceID, pool
	e.srv = httptest.NewServer(specGuard(t, a.Handler))
	t.Cleanup(func() {
		e.srv.Close()
		require.NoError(t, a.Close(context.Background()))
	})
	e.openai = openai.NewClient(option.WithBaseURL(e.srv.URL+"/v1"), option.WithAPIKey(e.key), option.WithMaxRetries(0))
	e.sdk, err = perpetuo.NewClientWithResponses(e.srv.URL, perpetuo.WithRequestEditorFn(
		func(_ context.Context, r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+e.key)
			return nil
		}))
	require.NoError(t, err)
	return e
}

// post sends a raw request and returns the status and decoded JSON body.
func (e *env) post(path, key, body string) (int, http.Header, map[string]any) {
	e.t.Helper()
	status, hdr, raw := send(e.t, e.srv.URL, http.MethodPost, path, key, body)
	var doc map[string]any
	require.NoError(e.t, json.Unmarshal(raw, &doc), "body: %s", raw)
	return status, hdr, doc
}

// generation reads a generation through the generated Go SDK.
func (e *env) generation(id string) perpetuo.Generation {
	e.t.Helper()
	resp, err := e.sdk.GetGenerationWithResponse(context.Background(), &perpetuo.GetGenerationParams{Id: id})
	require.NoError(e.t, err)
	require.Equal(e.t, http.StatusOK, resp.StatusCode(), "body: %s", resp.Body)
	return resp.JSON200.Data
}

// waitGeneration polls until the generation's record exists (a cancelled
// stream is recorded just after the client has gone).
func (e *env) waitGeneration(id string) records.Generation {
	e.t.Helper()
	var g records.Generation
	require.Eventually(e.t, func() bool {
		var err error
		g, err = e.app.Recorder.Get(context.Background(), e.ws, id)
		if err != nil {
			return false
		}
		return true
	}, 5*time.Second, 10*time.Millisecond)
	return g
}

// storedRow returns the generation's database row as JSON text.
func (e *env) storedRow(id string) string {
	e.t.Helper()
	require.NoError(e.t, e.app.Recorder.Flush(context.Background()))
	var row string
	err := e.pool.QueryRow(context.Background(),
		`SELECT row_to_json(g)::text FROM generations g WHERE id = $1`, id).Scan(&row)
	require.NoError(e.t, err)
	return row
}

func userMessage(text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    "mock/echo",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)},
	}
}

// postRaw sends a request with the env's key and returns status, headers and body.
func (e *env) postRaw(path, body string) (int, http.Header, []byte) {
	e.t.Helper()
	return send(e.t, e.srv.URL, http.MethodPost, path, e.key, body)
}

// send is how every test request is made: JSON body, bearer key.
func send(t testing.TB, srv, method, path, key, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, raw
}

// newServer serves h for the test's duration and returns its URL.
func newServer(t *testing.T, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
