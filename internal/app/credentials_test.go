package app

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
	"github.com/perpetuo/perpetuo/internal/secrets"
)

const byokSecret = "sk-byok-very-secret-0123456789abcdef"

// byokUpstream accepts only the BYOK key and remembers what it was sent.
func byokUpstream(seen *[]string, mu *sync.Mutex) http.Handler {
	inner := mockupstream.New(mockupstream.Config{APIKey: byokSecret})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		*seen = append(*seen, r.Header.Get("Authorization"))
		mu.Unlock()
		inner.ServeHTTP(w, r)
	})
}

func TestBYOKCredentialIsEncryptedAndRoutes(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	e := setup(t, nil)
	byok := newServer(t, byokUpstream(&seen, &mu))
	ws := "/v1/workspaces/" + e.ws + "/credentials"

	status, doc := call(t, e.srv.URL, "POST", ws, e.key,
		`{"provider":"flaky","api_key":"`+byokSecret+`","base_url":"`+byok+`/v1","name":"team flaky"}`)
	require.Equal(t, 201, status, "%v", doc)
	cred := data(doc)
	require.Equal(t, "sk-…cdef", cred["label"])
	require.NotContains(t, cred, "api_key")

	// The workspace's own credential wins over the operator's for "flaky".
	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", e.key,
		`{"model":"test/leaky","messages":[{"role":"user","content":"byok please"}]}`)
	require.Equal(t, 200, status, "%v", doc)
	require.Equal(t, "flaky", doc["provider"])
	require.Equal(t, true, doc["usage"].(map[string]any)["is_byok"])
	mu.Lock()
	require.Equal(t, []string{"Bearer " + byokSecret}, seen)
	mu.Unlock()
	g := e.generation(doc["id"].(string))
	require.True(t, g.IsByok)

	// Nothing readable holds the plaintext: the API, nor the database.
	for _, path := range []string{ws, ws + "/" + cred["id"].(string)} {
		status, doc := call(t, e.srv.URL, "GET", path, e.key, "")
		require.Equal(t, 200, status)
		require.NotContains(t, toJSON(t, doc), "very-secret")
	}
	var dump string
	require.NoError(t, e.pool.QueryRow(context.Background(),
		`SELECT string_agg(row_to_json(c)::text || encode(secret, 'escape'), ' ') FROM credentials c`).Scan(&dump))
	require.NotContains(t, dump, "very-secret", "the database must hold ciphertext only")

	// Disabling it falls back to the operator's credential at once.
	status, _ = call(t, e.srv.URL, "PATCH", ws+"/"+cred["id"].(string), e.key, `{"disabled":true}`)
	require.Equal(t, 200, status)
	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", e.key,
		`{"model":"test/leaky","messages":[{"role":"user","content":"operator now"}]}`)
	require.Equal(t, 200, status, "%v", doc)
	require.Equal(t, false, doc["usage"].(map[string]any)["is_byok"])
}

func TestCredentialValidation(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	ws := "/v1/workspaces/" + e.ws + "/credentials"
	cases := []struct{ name, body, field string }{
		{"unknown provider", `{"provider":"nope","api_key":"k"}`, "/provider"},
		{"missing key", `{"provider":"flaky"}`, "/api_key"},
		{"ftp base url", `{"provider":"flaky","api_key":"k","base_url":"ftp://x"}`, "/base_url"},
		{"relative base url", `{"provider":"flaky","api_key":"k","base_url":"/v1"}`, "/base_url"},
		{"userinfo in base url", `{"provider":"flaky","api_key":"k","base_url":"https://u:p@x/v1"}`, "/base_url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, doc := call(t, e.srv.URL, "POST", ws, e.key, tc.body)
			require.Equal(t, 400, status, "%v", doc)
			er := requireEnvelope(t, doc, 400, "invalid_request")
			require.Equal(t, tc.field, er["metadata"].(map[string]any)["field"])
		})
	}
}

func TestBaseURLRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	elsewhere := newServer(t, byokUpstream(&seen, &mu))
	redirect := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	e := setup(t, nil)
	status, _ := call(t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/credentials", e.key,
		`{"provider":"flaky","api_key":"`+byokSecret+`","base_url":"`+redirect+`/v1"}`)
	require.Equal(t, 201, status)
	status, doc := call(t, e.srv.URL, "POST", "/v1/chat/completions", e.key,
		`{"model":"test/leaky","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 502, status, "%v", doc)
	requireEnvelope(t, doc, 502, "provider_error")
	mu.Lock()
	require.Empty(t, seen, "the credential must never be sent to the redirect's target")
	mu.Unlock()
}

func TestOperatorCredentialsOptOut(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	b := e.replica()
	status, _ := call(t, b.URL, "POST", "/v1/chat/completions", e.key, chatBody)
	require.Equal(t, 200, status)
	status, doc := call(t, e.srv.URL, "PATCH", "/v1/workspaces/"+e.ws, e.key, `{"use_operator_credentials":false}`)
	require.Equal(t, 200, status, "%v", doc)
	status, doc = call(t, b.URL, "POST", "/v1/chat/completions", e.key, chatBody)
	require.Equal(t, 404, status, "the other replica must stop using operator keys at once: %v", doc)
	requireEnvelope(t, doc, 404, "no_endpoints")
}

// TestMasterKeyRotation seals credentials under one master key, rotates to
// a new one, and proves a gateway holding only the new key still routes.
func TestMasterKeyRotation(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	e := setup(t, nil)
	byok := newServer(t, byokUpstream(&seen, &mu))
	for _, p := range []string{"flaky", "steady"} {
		status, doc := call(t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/credentials", e.key,
			`{"provider":"`+p+`","api_key":"`+byokSecret+`","base_url":"`+byok+`/v1"}`)
		require.Equal(t, 201, status, "%v", doc)
	}
	newKey, err := secrets.GenerateKey()
	require.NoError(t, err)
	n, skipped, err := RotateSecrets(context.Background(), e.app.Store, secrets.NewKeyring(newKey, e.master))
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Zero(t, skipped)
	n, _, err = RotateSecrets(context.Background(), e.app.Store, secrets.NewKeyring(newKey))
	require.NoError(t, err)
	require.Zero(t, n, "a second rotation finds nothing left to do")

	e.ring = secrets.NewKeyring(newKey) // the old key is gone
	b := e.replica()
	status, doc := call(t, b.URL, "POST", "/v1/chat/completions", e.key,
		`{"model":"test/duo","strategy":"cheapest","messages":[{"role":"user","content":"after rotation"}]}`)
	require.Equal(t, 200, status, "%v", doc)
	require.Equal(t, true, doc["usage"].(map[string]any)["is_byok"])
	mu.Lock()
	require.Equal(t, "Bearer "+byokSecret, seen[len(seen)-1])
	mu.Unlock()
}

// TestAzureCredentialAddressesDeployments: a workspace's Azure OpenAI
// credential holds the resource (base URL), the API version and the
// deployment per upstream model; calls go to the deployment's URL with the
// key in api-key (never as Bearer), and a change to the mapping applies to
// the next request.
func TestAzureCredentialAddressesDeployments(t *testing.T) {
	t.Parallel()
	type hit struct{ path, version, apiKey, bearer string }
	var mu sync.Mutex
	var hits []hit
	inner := mockupstream.NewAzure(mockupstream.Config{APIKey: byokSecret})
	azure := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, hit{r.URL.Path, r.URL.Query().Get("api-version"), r.Header.Get("api-key"), r.Header.Get("Authorization")})
		mu.Unlock()
		inner.ServeHTTP(w, r)
	}))
	e := setup(t, nil)
	ws := "/v1/workspaces/" + e.ws + "/credentials"
	body := `{"model":"test/azure","messages":[{"role":"user","content":"hello azure"}]}`

	status, doc := call(t, e.srv.URL, "POST", ws, e.key, `{"provider":"azure","api_key":"`+byokSecret+`","base_url":"`+azure+`",
		"data_policy":{"zdr":true,"trains_on_data":false},
		"azure":{"api_version":"2024-06-01","deployments":{"gpt-4o-mock":"prod-4o"}}}`)
	require.Equal(t, 201, status, "%v", doc)
	cred := data(doc)
	require.Equal(t, map[string]any{"api_version": "2024-06-01", "deployments": map[string]any{"gpt-4o-mock": "prod-4o"}}, cred["azure"])

	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", e.key, body)
	require.Equal(t, 200, status, "%v", doc)
	require.Equal(t, "azure", doc["provider"])
	require.Equal(t, "test/azure", doc["model"])
	require.NotEmpty(t, doc["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"])

	// Without an API version the default applies; the new deployment is
	// used at once.
	status, doc = call(t, e.srv.URL, "PATCH", ws+"/"+cred["id"].(string), e.key, `{"azure":{"deployments":{"gpt-4o-mock":"canary-4o"}}}`)
	require.Equal(t, 200, status, "%v", doc)
	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", e.key, body)
	require.Equal(t, 200, status, "%v", doc)

	mu.Lock()
	require.Equal(t, []hit{
		{"/openai/deployments/prod-4o/chat/completions", "2024-06-01", byokSecret, ""},
		{"/openai/deployments/canary-4o/chat/completions", "2024-10-21", byokSecret, ""},
	}, hits)
	mu.Unlock()

	// Azure settings belong to an Azure provider only, on create and on update.
	status, doc = call(t, e.srv.URL, "POST", ws, e.key, `{"provider":"flaky","api_key":"k","azure":{"api_version":"2024-10-21"}}`)
	require.Equal(t, 400, status, "%v", doc)
	require.Equal(t, "/azure", requireEnvelope(t, doc, 400, "invalid_request")["metadata"].(map[string]any)["field"])
	status, doc = call(t, e.srv.URL, "POST", ws, e.key, `{"provider":"flaky","api_key":"k"}`)
	require.Equal(t, 201, status, "%v", doc)
	status, doc = call(t, e.srv.URL, "PATCH", ws+"/"+data(doc)["id"].(string), e.key, `{"azure":{"deployments":{"a":"b"}}}`)
	require.Equal(t, 400, status, "%v", doc)
	require.Equal(t, "/azure", requireEnvelope(t, doc, 400, "invalid_request")["metadata"].(map[string]any)["field"])
	// A deployment name outside Azure's rule is refused by the spec.
	status, doc = call(t, e.srv.URL, "POST", ws, e.key, `{"provider":"azure","api_key":"k","azure":{"deployments":{"gpt-4o":"../x"}}}`)
	require.Equal(t, 400, status, "%v", doc)
	require.Contains(t, requireEnvelope(t, doc, 400, "invalid_request")["metadata"].(map[string]any)["field"], "/azure/deployments")
}
