package app

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/mockupstream"
	"github.com/perpetuo/perpetuo/internal/pgtest"
	"github.com/perpetuo/perpetuo/internal/sse"
)

// markerCatalog has a provider per way an upstream can answer.
const markerCatalog = `{
 "providers": [
  {"slug":"good","name":"Good","api":"openai","data_policy":{"zdr":true,"trains_on_data":false,"retention_days":0}},
  {"slug":"reject","name":"Reject","api":"openai","data_policy":{"zdr":true,"trains_on_data":false,"retention_days":0}},
  {"slug":"broken","name":"Broken","api":"openai","data_policy":{"zdr":true,"trains_on_data":false,"retention_days":0}},
  {"slug":"midway","name":"Midway","api":"openai","data_policy":{"zdr":true,"trains_on_data":false,"retention_days":0}},
  {"slug":"slow","name":"Slow","api":"openai","data_policy":{"zdr":true,"trains_on_data":false,"retention_days":0}}
 ],
 "models": [
  {"id":"m/ok","name":"OK","context_length":100000,"endpoints":[{"provider":"good","upstream_model":"echo","pricing":{"prompt":"0.000001","completion":"0.000001"},"context_length":100000}]},
  {"id":"m/reject","name":"Reject","context_length":100000,"endpoints":[{"provider":"reject","upstream_model":"x","pricing":{"prompt":"0.000001","completion":"0.000001"},"context_length":100000}]},
  {"id":"m/broken","name":"Broken","context_length":100000,"endpoints":[{"provider":"broken","upstream_model":"x","pricing":{"prompt":"0.000001","completion":"0.000001"},"context_length":100000}]},
  {"id":"m/fallback","name":"Fallback","context_length":100000,"endpoints":[
    {"provider":"broken","upstream_model":"x","pricing":{"prompt":"0.0000001","completion":"0.0000001"},"context_length":100000},
    {"provider":"good","upstream_model":"echo","pricing":{"prompt":"0.000001","completion":"0.000001"},"context_length":100000}]},
  {"id":"m/midway","name":"Midway","context_length":100000,"endpoints":[{"provider":"midway","upstream_model":"x","pricing":{"prompt":"0.000001","completion":"0.000001"},"context_length":100000}]},
  {"id":"m/slow","name":"Slow","context_length":100000,"endpoints":[{"provider":"slow","upstream_model":"echo","pricing":{"prompt":"0.000001","completion":"0.000001"},"context_length":100000}]}
 ]
}`

// TestPerpetuoRetainsNothing is the marker test: a unique marker in the
// prompt, in a tool call's arguments, in a tool result and in upstream
// error bodies goes through every path (success, JSON and stream; upstream
// 4xx and 5xx; a mid-stream error; a client hang-up; a fallback; a budget
// refusal) of the real binary at its most verbose log level. Then every
// table of the database, the process's whole output, /metrics and every
// file it wrote are searched: the marker appears nowhere.
func TestPerpetuoRetainsNothing(t *testing.T) {
	t.Parallel()
	marker := "MRK" + strings.ToUpper(strings.ReplaceAll(keys.Generate()[3:23], "_", "X")) + "Z"
	upstreamError := func(status int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":{"message":"cannot do %s with %s","type":"invalid_request_error","param":"%s","code":"%s"}}`,
				marker, marker, marker, "bad_"+strings.ToLower(marker[:6]))
		})
	}
	midway := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, textEvent(marker+" partial "))
		fmt.Fprintf(w, "data: {\"error\":{\"message\":\"failed on %s\",\"code\":502,\"metadata\":{\"raw\":\"%s\"}}}\n\n", marker, marker)
	})
	upstreams := map[string]http.Handler{
		"good": mockupstream.New(mockupstream.Config{}), "reject": upstreamError(400), "broken": upstreamError(500),
		"midway": midway, "slow": mockupstream.New(mockupstream.Config{TokensPerSecond: 20}),
	}
	dir := t.TempDir()
	catPath := filepath.Join(dir, "catalog.json")
	require.NoError(t, os.WriteFile(catPath, []byte(markerCatalog), 0o600))
	pool := pgtest.New(t)
	owner := keys.Generate()
	env := serveEnv(pool, filepath.Join(dir, "data"), owner)
	env["PERPETUO_DEMO"] = "0"
	env["PERPETUO_CATALOG"] = catPath
	env["PERPETUO_LOG_LEVEL"] = "debug"
	env["PERPETUO_ACCESS_LOG"] = "on"
	for slug, h := range upstreams {
		v := "PERPETUO_PROVIDER_" + strings.ToUpper(slug)
		env[v+"_BASE_URL"], env[v+"_API_KEY"] = newServer(t, h)+"/v1", "sk-"+slug
	}
	// Traces and metrics exported over OTLP are searched too.
	otlp := &collector{bodies: map[string][]byte{}}
	env["OTEL_EXPORTER_OTLP_ENDPOINT"] = newServer(t, otlp)
	p := startServe(t, buildPerpetuo(t), env)
	_, key := p.newKey(owner, `{"name":"k"}`)
	_, broke := p.newKey(owner, `{"name":"broke","limit":0.0000001}`)

	// The marker in the user's text, an earlier tool call's arguments and
	// that tool's result.
	body := func(model string, stream bool) string {
		return fmt.Sprintf(`{"model":%q,"stream":%t,"user":"u1","messages":[
			{"role":"user","content":"remember %s please"},
			{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"%s\"}"}}]},
			{"role":"tool","tool_call_id":"call_1","content":"found %s"},
			{"role":"user","content":"%s again"}],
			"tools":[{"type":"function","function":{"name":"lookup","description":"find %s","parameters":{"type":"object"}}}]}`,
			model, stream, marker, marker, marker, marker, marker)
	}
	run := func(k, model string, stream bool) (int, string) {
		resp := p.do("POST", "/v1/chat/completions", k, body(model, stream))
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(raw)
	}
	for _, tc := range []struct {
		name   string
		key    string
		model  string
		stream bool
		status int
	}{
		{"success", key, "m/ok", false, 200},
		{"success, streamed", key, "m/ok", true, 200},
		{"upstream 4xx", key, "m/reject", false, 400},
		{"upstream 4xx, streamed", key, "m/reject", true, 400},
		{"upstream 5xx", key, "m/broken", false, 502},
		{"upstream 5xx, streamed", key, "m/broken", true, 502},
		{"fallback", key, "m/fallback", false, 200},
		{"fallback, streamed", key, "m/fallback", true, 200},
		{"mid-stream error", key, "m/midway", true, 200},
		{"budget refusal", broke, "m/ok", false, 402},
		{"budget refusal, streamed", broke, "m/ok", true, 402},
	} {
		status, raw := run(tc.key, tc.model, tc.stream)
		require.Equal(t, tc.status, status, "%s: %s", tc.name, raw)
		if tc.model == "m/ok" && status == 200 {
			require.Contains(t, raw, marker, "%s: the echo carries the marker back: the test sends it for real", tc.name)
		}
	}
	// A client hanging up mid-stream.
	req, err := http.NewRequest("POST", p.url+"/v1/chat/completions", strings.NewReader(body("m/slow", true)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := p.client.Do(req)
	require.NoError(t, err)
	r := sse.NewReader(resp.Body)
	for range 3 {
		_, err := r.Next()
		require.NoError(t, err)
	}
	require.NoError(t, resp.Body.Close())

	status, _, metrics := p.get("/metrics", "")
	require.Equal(t, 200, status)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM)) // drains, flushes every record
	p.requireExit()

	require.NotContains(t, metrics, marker, "/metrics")
	traces, otlpMetrics := otlp.get("/v1/traces"), otlp.get("/v1/metrics")
	require.Contains(t, string(traces), "chat m/ok", "the spans were exported at shutdown")
	require.Contains(t, string(traces), "POST /v1/chat/completions")
	require.Contains(t, string(otlpMetrics), "gen_ai.client.token.usage", "and the metrics")
	require.NotContains(t, string(traces), marker, "exported spans")
	require.NotContains(t, string(otlpMetrics), marker, "exported metrics")
	out := p.out.String()
	require.Contains(t, out, "level=DEBUG", "the process logged at debug level")
	require.Contains(t, out, "log=access", "and its access log")
	require.NotContains(t, out, marker, "the process output")

	ctx := context.Background()
	tables, err := pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)
	require.NoError(t, err)
	var names []string
	for tables.Next() {
		var n string
		require.NoError(t, tables.Scan(&n))
		names = append(names, n)
	}
	require.NoError(t, tables.Err())
	require.Contains(t, names, "generations")
	rows := 0
	for _, n := range names {
		var dump string
		require.NoError(t, pool.QueryRow(ctx, fmt.Sprintf(`SELECT coalesce(string_agg(row_to_json(t)::text, E'\n'), '') FROM %q t`, n)).Scan(&dump))
		require.NotContains(t, dump, marker, "table %s", n)
		rows += strings.Count(dump, "\n") + 1
	}
	require.GreaterOrEqual(t, count(t, pool, `SELECT count(*) FROM generations`), 12, "every request left its record")
	t.Logf("searched %d tables (%d rows), %d bytes of output, %d bytes of /metrics, %d bytes of OTLP spans and %d of OTLP metrics",
		len(names), rows, len(out), len(metrics), len(traces), len(otlpMetrics))

	require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || path == catPath {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		require.NotContains(t, string(b), marker, "file %s", path)
		return nil
	}))
}

// get fetches path, with key when set.
func (p *proc) get(path, key string) (int, http.Header, string) {
	p.t.Helper()
	req, err := http.NewRequest("GET", p.url+path, nil)
	require.NoError(p.t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := p.client.Do(req)
	require.NoError(p.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(p.t, err)
	return resp.StatusCode, resp.Header, string(raw)
}

// collector is an OTLP/HTTP receiver that keeps what it is sent, by path
// (protobuf keeps strings as they are, so a search of the bytes finds any
// text an export carried).
type collector struct {
	mu     sync.Mutex
	bodies map[string][]byte
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.bodies[r.URL.Path] = append(c.bodies[r.URL.Path], b...)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
}

func (c *collector) get(path string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bodies[path]
}
