package app

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
)

// counted serves h and counts the requests it got.
type counted struct {
	h http.Handler
	n atomic.Int64
}

func (c *counted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	c.h.ServeHTTP(w, r)
}

// zdrEnv has test/duo served by "flaky" (not ZDR, trains on data) and
// "steady" (ZDR), each counting what reaches it.
func zdrEnv(t *testing.T, steadyFails bool) (*env, *counted, *counted) {
	t.Helper()
	leaky := &counted{h: mockupstream.New(mockupstream.Config{})}
	cfg := mockupstream.Config{}
	if steadyFails {
		cfg = mockupstream.Config{FailureRate: 1, FailureStatus: 503}
	}
	private := &counted{h: mockupstream.New(cfg)}
	return setup(t, map[string]http.Handler{"flaky": leaky, "steady": private}), leaky, private
}

const duoBody = `{"model":"test/duo","provider":{"order":["flaky","steady"]%s},"messages":[{"role":"user","content":"private words"}]}`

// TestEachWayOfRequiringZDRRoutesOnlyToZDR: the request, the key, a
// guardrail and the workspace each restrict routing to the ZDR endpoint,
// also when it fails (the request fails rather than leak), and say so in
// the header, the record and its routing decision.
func TestEachWayOfRequiringZDRRoutesOnlyToZDR(t *testing.T) {
	t.Parallel()
	ways := []struct {
		name  string
		extra string // added to the request's provider object
		by    []any
		prep  func(e *env) string // returns the key to call with
	}{
		{"request", `,"zdr":true`, []any{"request"}, func(e *env) string { return e.key }},
		{"key", "", []any{"key"}, func(e *env) string {
			_, k := e.newKey(`{"name":"private","require_zdr":true}`)
			return k
		}},
		{"guardrail", "", []any{"guardrail:privacy first"}, func(e *env) string {
			id, k := e.newKey(`{"name":"governed"}`)
			e.assign("keys", id, e.guardrail(`{"name":"privacy first","enforce_zdr":true}`))
			return k
		}},
		{"workspace", "", []any{"workspace"}, func(e *env) string {
			status, doc := call(e.t, e.srv.URL, "PATCH", "/v1/workspaces/"+e.ws, e.key, `{"require_zdr":true}`)
			require.Equal(e.t, 200, status, "%v", doc)
			require.Equal(e.t, true, data(doc)["require_zdr"])
			return e.key
		}},
	}
	for _, w := range ways {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			e, leaky, private := zdrEnv(t, false)
			key := w.prep(e)
			status, hdr, raw := send(t, e.srv.URL, "POST", "/v1/chat/completions", key, strings.Replace(duoBody, "%s", w.extra, 1))
			require.Equal(t, 200, status, "%s", raw)
			require.Equal(t, "steady", gjson.GetBytes(raw, "provider").String())
			require.Equal(t, "true", hdr.Get("X-Perpetuo-Zdr"))
			require.Zero(t, leaky.n.Load(), "the non-ZDR endpoint, first in provider.order, got nothing")
			require.EqualValues(t, 1, private.n.Load())
			g := e.generation(hdr.Get("X-Generation-Id"))
			require.True(t, g.Zdr)
			row := e.storedRow(hdr.Get("X-Generation-Id"))
			require.Equal(t, true, gjson.Get(row, "zdr").Bool())
			var by []any
			for _, v := range gjson.Get(row, "routing.zdr_required_by").Array() {
				by = append(by, v.Value())
			}
			require.Equal(t, w.by, by, "the decision says who required ZDR")

			if w.name != "request" {
				status, doc := call(t, e.srv.URL, "GET", "/v1/key", key, "")
				require.Equal(t, 200, status)
				require.Equal(t, w.by, data(doc)["zdr_required_by"], "GET /v1/key shows who imposes ZDR")
			}

			// Streams too: the header, and the ZDR endpoint only.
			status, hdr, raw = send(t, e.srv.URL, "POST", "/v1/chat/completions", key,
				strings.Replace(strings.Replace(duoBody, "%s", w.extra, 1), `"model"`, `"stream":true,"model"`, 1))
			require.Equal(t, 200, status, "%s", raw)
			require.Equal(t, "true", hdr.Get("X-Perpetuo-Zdr"))
			require.Contains(t, string(raw), `"provider":"steady"`)
			require.Zero(t, leaky.n.Load())
		})
		t.Run(w.name+", the ZDR endpoint failing", func(t *testing.T) {
			t.Parallel()
			e, leaky, private := zdrEnv(t, true)
			key := w.prep(e)
			for _, stream := range []string{"false", "true"} {
				status, _, raw := send(t, e.srv.URL, "POST", "/v1/chat/completions", key,
					strings.Replace(strings.Replace(duoBody, "%s", w.extra, 1), `"model"`, `"stream":`+stream+`,"model"`, 1))
				require.Equal(t, 503, status, "the request fails rather than fall back to a retaining endpoint: %s", raw)
			}
			require.Zero(t, leaky.n.Load())
			require.EqualValues(t, 2, private.n.Load())
		})
	}
}

// TestZDRNeverFallsBackToANonZDREndpoint: when the only ZDR endpoint
// fails, the request fails; a models[] fallback to a model with only
// non-ZDR endpoints is refused, with a 404 that names who required ZDR.
func TestZDRNeverFallsBackToANonZDREndpoint(t *testing.T) {
	t.Parallel()
	e, leaky, private := zdrEnv(t, true)
	_, key := e.newKey(`{"name":"private","require_zdr":true}`)
	for _, stream := range []string{"false", "true"} {
		status, _, raw := send(t, e.srv.URL, "POST", "/v1/chat/completions", key,
			`{"model":"test/duo","stream":`+stream+`,"messages":[{"role":"user","content":"x"}]}`)
		require.Equal(t, 503, status, "%s", raw)
		require.Equal(t, "provider_overloaded", gjson.GetBytes(raw, "error.type").String())
	}
	require.Zero(t, leaky.n.Load(), "never the non-ZDR endpoint, even after the ZDR one failed")
	require.EqualValues(t, 2, private.n.Load())

	status, _, raw := send(t, e.srv.URL, "POST", "/v1/chat/completions", key,
		`{"model":"test/leaky","models":["test/leaky"],"messages":[{"role":"user","content":"x"}]}`)
	require.Equal(t, 404, status, "%s", raw)
	er := gjson.GetBytes(raw, "error")
	require.Equal(t, "privacy_restricted", er.Get("type").String())
	require.Contains(t, er.Get("metadata.excluded_by").Raw, `"data_policy:zdr"`)
	require.Equal(t, "/v1/endpoints/zdr", er.Get("metadata.zdr_endpoints").String())
	require.Equal(t, `["key"]`, er.Get("metadata.zdr_required_by").Raw)
	require.Contains(t, er.Get("message").String(), "test/leaky")
	require.Contains(t, er.Get("message").String(), "the key (require_zdr)")
	require.Zero(t, leaky.n.Load())

	// Every setting is named.
	id, k2 := e.newKey(`{"name":"all of them","require_zdr":true}`)
	e.assign("keys", id, e.guardrail(`{"name":"strict","enforce_zdr":true}`))
	status, doc := call(t, e.srv.URL, "PATCH", "/v1/workspaces/"+e.ws, e.key, `{"require_zdr":true}`)
	require.Equal(t, 200, status, "%v", doc)
	_, _, raw = send(t, e.srv.URL, "POST", "/v1/chat/completions", k2,
		`{"model":"test/leaky","provider":{"zdr":true},"messages":[{"role":"user","content":"x"}]}`)
	msg := gjson.GetBytes(raw, "error.message").String()
	for _, who := range []string{"the request (provider.zdr)", "the key (require_zdr)", `guardrail "strict" (enforce_zdr)`, "the workspace (require_zdr)"} {
		require.Contains(t, msg, who)
	}
	require.Zero(t, leaky.n.Load())
}

// TestDataCollectionDenyExcludesTrainingEndpoints: provider.data_collection
// "deny" keeps off endpoints that train on data, like ZDR does for
// retention.
func TestDataCollectionDenyExcludesTrainingEndpoints(t *testing.T) {
	t.Parallel()
	e, leaky, _ := zdrEnv(t, false)
	status, _, raw := e.postRaw("/v1/chat/completions", strings.Replace(duoBody, "%s", `,"data_collection":"deny"`, 1))
	require.Equal(t, 200, status, "%s", raw)
	require.Equal(t, "steady", gjson.GetBytes(raw, "provider").String())
	status, _, raw = e.postRaw("/v1/chat/completions",
		`{"model":"test/leaky","provider":{"data_collection":"deny"},"messages":[{"role":"user","content":"x"}]}`)
	require.Equal(t, 404, status)
	require.Equal(t, "privacy_restricted", gjson.GetBytes(raw, "error.type").String())
	require.Contains(t, gjson.GetBytes(raw, "error.metadata.excluded_by").Raw, "data_policy:training")
	require.Zero(t, leaky.n.Load())
}

// TestBYOKBaseURLDeclaresItsOwnDataPolicy: a workspace credential that
// sends a ZDR provider's traffic to its own base URL is not ZDR unless it
// declares so (and BYOK never bypasses a ZDR requirement).
func TestBYOKBaseURLDeclaresItsOwnDataPolicy(t *testing.T) {
	t.Parallel()
	e, _, private := zdrEnv(t, false)
	elsewhere := &counted{h: mockupstream.New(mockupstream.Config{})}
	url := newServer(t, elsewhere) + "/v1"
	status, doc := call(t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/credentials", e.key,
		`{"provider":"steady","api_key":"sk-own","base_url":"`+url+`"}`)
	require.Equal(t, 201, status, "%v", doc)
	credID := data(doc)["id"].(string)
	dp := data(doc)["data_policy"].(map[string]any)
	require.Equal(t, false, dp["zdr"], "undeclared: not ZDR")
	require.Equal(t, true, dp["trains_on_data"], "undeclared: trains on data")

	body := `{"model":"test/duo","provider":{"zdr":true},"messages":[{"role":"user","content":"x"}]}`
	status, _, raw := e.postRaw("/v1/chat/completions", body)
	require.Equal(t, 404, status, "the catalog says steady is ZDR, but this credential sends it elsewhere: %s", raw)
	require.Equal(t, "privacy_restricted", gjson.GetBytes(raw, "error.type").String())
	require.Zero(t, elsewhere.n.Load()+private.n.Load())

	status, doc = call(t, e.srv.URL, "PATCH", "/v1/workspaces/"+e.ws+"/credentials/"+credID, e.key,
		`{"data_policy":{"zdr":true,"trains_on_data":false,"retention_days":0}}`)
	require.Equal(t, 200, status, "%v", doc)
	require.Equal(t, "declared by the workspace", data(doc)["data_policy"].(map[string]any)["source"])
	status, _, raw = e.postRaw("/v1/chat/completions", body)
	require.Equal(t, 200, status, "%s", raw)
	require.EqualValues(t, 1, elsewhere.n.Load(), "the declared ZDR base URL serves")
	require.Zero(t, private.n.Load())

	// A data policy describes where base_url sends traffic: not without one.
	status, doc = call(t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/credentials", e.key,
		`{"provider":"flaky","api_key":"sk-own","data_policy":{"zdr":true}}`)
	requireEnvelope(t, doc, 400, "invalid_request")
	require.Equal(t, 400, status)
	require.Equal(t, "/data_policy", doc["error"].(map[string]any)["metadata"].(map[string]any)["field"])
}

// TestZDREndpointsListWhatTheCallerMayUse: GET /v1/endpoints/zdr in
// OpenRouter's shape, only ZDR endpoints, filtered by the caller's
// guardrails and by what its credentials make ZDR; /v1/models?zdr=true.
func TestZDREndpointsListWhatTheCallerMayUse(t *testing.T) {
	t.Parallel()
	e, _, _ := zdrEnv(t, false)
	list := func(key string) map[string]gjson.Result {
		status, _, raw := send(t, e.srv.URL, "GET", "/api/v1/endpoints/zdr", key, "")
		require.Equal(t, 200, status, "%s", raw)
		out := map[string]gjson.Result{}
		for _, ep := range gjson.GetBytes(raw, "data").Array() {
			out[ep.Get("model_id").String()+"@"+ep.Get("tag").String()] = ep
		}
		return out
	}
	all := list(e.key)
	require.Contains(t, all, "test/duo@steady")
	require.Contains(t, all, "mock/echo@mock")
	require.NotContains(t, all, "test/duo@flaky", "not ZDR")
	require.NotContains(t, all, "test/leaky@flaky")
	require.NotContains(t, all, "test/unreachable@nocred", "no credential: not usable")
	ep := all["test/duo@steady"]
	for _, field := range []string{"name", "model_id", "model_name", "provider_name", "tag", "context_length", "pricing.prompt",
		"pricing.completion", "quantization", "status", "supported_parameters", "uptime_last_30m"} {
		require.True(t, ep.Get(field).Exists(), "field %s in %s", field, ep.Raw)
	}
	require.Equal(t, "Steady | test/duo", ep.Get("name").String())

	// A guardrail's lists apply.
	id, key := e.newKey(`{"name":"governed"}`)
	e.assign("keys", id, e.guardrail(`{"name":"tests only","allowed_models":["test/*"],"ignored_providers":["tri-b"]}`))
	governed := list(key)
	require.Contains(t, governed, "test/duo@steady")
	require.NotContains(t, governed, "mock/echo@mock")
	require.NotContains(t, governed, "test/trio@tri-b")
	require.Contains(t, governed, "test/trio@tri-a")

	// models?zdr=true: models with a ZDR endpoint only.
	status, _, raw := send(t, e.srv.URL, "GET", "/v1/models?zdr=true", e.key, "")
	require.Equal(t, 200, status, "%s", raw)
	ids := map[string]bool{}
	for _, m := range gjson.GetBytes(raw, "data.#.id").Array() {
		ids[m.String()] = true
	}
	require.True(t, ids["test/duo"])
	require.False(t, ids["test/leaky"], "its only endpoint is not ZDR")
	_, _, raw = send(t, e.srv.URL, "GET", "/v1/models", e.key, "")
	require.Contains(t, string(raw), `"test/leaky"`)

	// A credential sending steady's traffic elsewhere, undeclared, takes it off the list.
	status, doc := call(t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/credentials", e.key,
		`{"provider":"steady","api_key":"sk-own","base_url":"`+e.upstream["steady"].URL+`/v1"}`)
	require.Equal(t, 201, status, "%v", doc)
	require.NotContains(t, list(e.key), "test/duo@steady")
}
