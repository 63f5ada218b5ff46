package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// call sends method path with key and body to srv and decodes the JSON answer.
func call(t testing.TB, srv string, method, path, key, body string) (int, map[string]any) {
	t.Helper()
	status, _, raw := send(t, srv, method, path, key, body)
	var doc map[string]any
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &doc), "body: %s", raw)
	}
	return status, doc
}

func data(doc map[string]any) map[string]any { return doc["data"].(map[string]any) }

// replica starts a second gateway on the same database: the same code,
// its own caches and its own invalidation listener.
func (e *env) replica() *httptest.Server {
	e.t.Helper()
	a, err := New(Options{Pool: e.pool, Catalog: e.app.catalog, Operator: e.app.operator, Keyring: e.ring, Log: e.app.log,
		Egress: loopbackEgress})
	require.NoError(e.t, err)
	e.replicas = append(e.replicas, a)
	srv := httptest.NewServer(specGuard(e.t, a.Handler))
	e.t.Cleanup(func() {
		srv.Close()
		require.NoError(e.t, a.Close(context.Background()))
	})
	return srv
}

// newKey creates a key through the API with the owner key and returns its
// id and plaintext.
func (e *env) newKey(body string) (string, string) {
	e.t.Helper()
	status, doc := call(e.t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/keys", e.key, body)
	require.Equal(e.t, 201, status, "%v", doc)
	d := data(doc)
	require.True(e.t, strings.HasPrefix(d["key"].(string), "pk_"))
	return d["id"].(string), d["key"].(string)
}

const chatBody = `{"model":"mock/echo","max_tokens":10,"messages":[{"role":"user","content":"hello"}]}`

// TestKeyLifecycleOnTwoReplicas: create → use → disable → 401 → enable →
// revoke → 401, checked on the replica that made the change and on another
// one, on the very next request (no TTL, no waiting).
func TestKeyLifecycleOnTwoReplicas(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	b := e.replica()
	id, key := e.newKey(`{"name":"ci"}`)
	path := "/v1/workspaces/" + e.ws + "/keys/" + id

	useOn := func(srv string, want int) {
		t.Helper()
		status, doc := call(t, srv, "POST", "/v1/chat/completions", key, chatBody)
		require.Equal(t, want, status, "%v", doc)
		if want == 401 {
			requireEnvelope(t, doc, 401, "authentication")
		}
	}
	useOn(e.srv.URL, 200)
	useOn(b.URL, 200) // now cached on both replicas

	for round := range 20 { // races would show as a stale cached key
		status, doc := call(t, e.srv.URL, "PATCH", path, e.key, `{"disabled":true}`)
		require.Equal(t, 200, status, "%v", doc)
		require.Equal(t, true, data(doc)["disabled"])
		useOn(b.URL, 401)
		useOn(e.srv.URL, 401)

		status, _ = call(t, b.URL, "PATCH", path, e.key, `{"disabled":false}`)
		require.Equal(t, 200, status, "round %d", round)
		useOn(e.srv.URL, 200)
		useOn(b.URL, 200)
	}

	status, _ := call(t, e.srv.URL, "DELETE", path, e.key, "")
	require.Equal(t, 204, status)
	useOn(b.URL, 401)
	useOn(e.srv.URL, 401)
	status, doc := call(t, e.srv.URL, "GET", path, e.key, "")
	require.Equal(t, 404, status)
	requireEnvelope(t, doc, 404, "not_found")
}

func TestExpiredKeyIsRefused(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	expires := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	_, key := e.newKey(`{"name":"short","expires_at":"` + expires + `"}`)
	status, _ := call(t, e.srv.URL, "POST", "/v1/chat/completions", key, chatBody)
	require.Equal(t, 200, status)
	time.Sleep(time.Until(time.Now().Add(1600 * time.Millisecond)))
	status, doc := call(t, e.srv.URL, "POST", "/v1/chat/completions", key, chatBody)
	require.Equal(t, 401, status)
	er := requireEnvelope(t, doc, 401, "authentication")
	require.Contains(t, er["message"], "expired")

	status, doc = call(t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/keys", e.key, `{"name":"past","expires_at":"2020-01-01T00:00:00Z"}`)
	require.Equal(t, 400, status)
	requireEnvelope(t, doc, 400, "invalid_request")
}

func TestKeysNeverRevealTheirSecret(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	id, key := e.newKey(`{"name":"secret"}`)
	for _, path := range []string{"/v1/workspaces/" + e.ws + "/keys", "/v1/workspaces/" + e.ws + "/keys/" + id} {
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+e.key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		require.NotContains(t, string(raw), key[6:len(key)-3])
		require.Contains(t, string(raw), key[:6]+"…"+key[len(key)-3:], "the masked label is shown")
	}
	var n int
	require.NoError(t, e.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM api_keys WHERE row_to_json(api_keys)::text LIKE '%' || $1 || '%'`, key[6:len(key)-3]).Scan(&n))
	require.Zero(t, n, "the database holds only the hash and the label")
}

// TestGenerationIsReadableOnAnotherReplica: the record of a request served
// by one replica is readable at once through another (no 404 while it sits
// in the first replica's batch).
func TestGenerationIsReadableOnAnotherReplica(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	b := e.replica()
	for range 5 {
		status, doc := call(t, e.srv.URL, "POST", "/v1/chat/completions", e.key, chatBody)
		require.Equal(t, 200, status)
		status, doc = call(t, b.URL, "GET", "/v1/generation?id="+doc["id"].(string), e.key, "")
		require.Equal(t, 200, status, "%v", doc)
		require.Equal(t, "mock", data(doc)["provider_name"])
	}
}

// TestKeyRequiringZDRRoutesOnlyToZDREndpoints: a key's require_zdr applies
// to every request it makes, without the request asking.
func TestKeyRequiringZDRRoutesOnlyToZDREndpoints(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	_, key := e.newKey(`{"name":"private","require_zdr":true}`)
	status, doc := call(t, e.srv.URL, "POST", "/v1/chat/completions", key,
		`{"model":"test/duo","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 200, status, "%v", doc)
	require.Equal(t, "steady", doc["provider"], "the cheaper flaky endpoint retains data")
	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", key,
		`{"model":"test/leaky","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 404, status)
	er := requireEnvelope(t, doc, 404, "privacy_restricted")
	require.Equal(t, []any{"data_policy:zdr"}, er["metadata"].(map[string]any)["excluded_by"])
}
