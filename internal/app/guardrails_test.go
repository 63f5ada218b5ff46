package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/budget"
)

// guardrail creates a guardrail with the owner key and returns its id.
func (e *env) guardrail(body string) string {
	e.t.Helper()
	status, doc := call(e.t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/guardrails", e.key, body)
	require.Equal(e.t, 201, status, "%v", doc)
	return data(doc)["id"].(string)
}

// assign gives a key (kind "keys") or member (kind "members") a guardrail.
func (e *env) assign(kind, id, guardrailID string) {
	e.t.Helper()
	status, doc := call(e.t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/"+kind+"/"+id+"/guardrail", e.key,
		`{"guardrail_id":"`+guardrailID+`"}`)
	require.Equal(e.t, 200, status, "%v", doc)
	require.Equal(e.t, guardrailID, data(doc)["guardrail_id"])
}

// TestGuardrailCRUDAndValidation: create, read, list, replace and delete,
// with every refusal naming the field and the rule.
func TestGuardrailCRUDAndValidation(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	base := "/v1/workspaces/" + e.ws + "/guardrails"
	status, doc := call(t, e.srv.URL, "POST", base, e.key, `{"name":"prod","description":"production","limit_usd":25.5,
		"reset_interval":"monthly","allowed_models":["test/*","mock/echo","mock/echo"],"allowed_providers":["mock","tri-a"],
		"ignored_providers":["flaky"],"enforce_zdr":true,"include_byok_in_budgets":true}`)
	require.Equal(t, 201, status, "%v", doc)
	g := data(doc)
	id := g["id"].(string)
	require.True(t, strings.HasPrefix(id, "gr_"), id)
	require.Equal(t, e.ws, g["workspace_id"])
	require.Equal(t, "production", g["description"])
	require.Equal(t, 25.5, g["limit_usd"])
	require.Equal(t, "monthly", g["reset_interval"])
	require.Equal(t, []any{"test/*", "mock/echo"}, g["allowed_models"], "deduplicated, in order")
	require.Equal(t, []any{}, g["ignored_models"])
	require.Equal(t, true, g["enforce_zdr"])
	require.Equal(t, true, g["include_byok_in_budgets"])
	require.Equal(t, 0.0, g["usage"])
	require.Equal(t, 25.5, g["limit_remaining"])
	next, _ := budget.NextReset("monthly", time.Now())
	require.Equal(t, next.Format(time.RFC3339), g["resets_at"])
	require.Equal(t, []any{}, g["member_ids"])
	require.Equal(t, false, g["is_default"])

	status, doc = call(t, e.srv.URL, "GET", base+"/"+id, e.key, "")
	require.Equal(t, 200, status, "%v", doc)
	require.Equal(t, "prod", data(doc)["name"])
	status, doc = call(t, e.srv.URL, "PUT", base+"/"+id, e.key, `{"name":"prod2","allowed_models":["mock/*"]}`)
	require.Equal(t, 200, status, "%v", doc)
	g = data(doc)
	require.Equal(t, "prod2", g["name"])
	require.Nil(t, g["limit_usd"], "PUT replaces every field")
	require.Nil(t, g["limit_remaining"])
	require.Nil(t, g["resets_at"])
	require.Equal(t, []any{}, g["allowed_providers"])
	require.Equal(t, false, g["enforce_zdr"])
	status, doc = call(t, e.srv.URL, "GET", base, e.key, "")
	require.Equal(t, 200, status)
	require.Len(t, doc["data"], 1)

	for _, tc := range []struct{ body, field string }{
		{`{"name":"x","allowed_models":["mock/echo","nobody/nothing"]}`, "/allowed_models/1"},
		{`{"name":"x","ignored_models":["zzz/*"]}`, "/ignored_models/0"},
		{`{"name":"x","allowed_providers":["nope"]}`, "/allowed_providers/0"},
		{`{"name":"x","ignored_providers":["mock","nope"]}`, "/ignored_providers/1"},
		{`{"name":"x","limit_usd":-1}`, "/limit_usd"},
		{`{"name":"x","limit_usd":1,"reset_interval":"hourly"}`, "/reset_interval"},
		{`{"name":"x","reset_interval":"daily"}`, "/reset_interval"},
		{`{"name":"   "}`, "/name"},
	} {
		status, doc := call(t, e.srv.URL, "POST", base, e.key, tc.body)
		er := requireEnvelope(t, doc, 400, "invalid_request")
		require.Equal(t, 400, status)
		require.Equal(t, tc.field, er["metadata"].(map[string]any)["field"], "%s: %v", tc.body, er)
		require.NotContains(t, er["message"], "nobody", "the value sent is never echoed")
		require.NotContains(t, er["message"], "nope")
	}

	// Assigned, it is deleted only with force, which unassigns it.
	keyID, key := e.newKey(`{"name":"governed"}`)
	e.assign("keys", keyID, id)
	status, doc = call(t, e.srv.URL, "PATCH", "/v1/workspaces/"+e.ws, e.key, `{"default_guardrail_id":"`+id+`"}`)
	require.Equal(t, 200, status, "%v", doc)
	require.Equal(t, id, data(doc)["default_guardrail_id"])
	status, doc = call(t, e.srv.URL, "GET", base+"/"+id, e.key, "")
	require.Equal(t, 200, status)
	require.Equal(t, []any{keyID}, data(doc)["key_ids"])
	require.Equal(t, true, data(doc)["is_default"])
	status, doc = call(t, e.srv.URL, "DELETE", base+"/"+id, e.key, "")
	require.Equal(t, 409, status)
	requireEnvelope(t, doc, 409, "conflict")
	status, _ = call(t, e.srv.URL, "DELETE", base+"/"+id+"?force=true", e.key, "")
	require.Equal(t, 204, status)
	status, doc = call(t, e.srv.URL, "GET", "/v1/workspaces/"+e.ws+"/keys/"+keyID, e.key, "")
	require.Equal(t, 200, status)
	require.Nil(t, data(doc)["guardrail_id"], "unassigned")
	status, doc = call(t, e.srv.URL, "GET", "/v1/workspaces/"+e.ws, e.key, "")
	require.Equal(t, 200, status)
	require.Nil(t, data(doc)["default_guardrail_id"])
	status, _ = call(t, e.srv.URL, "POST", "/v1/chat/completions", key, chatBody)
	require.Equal(t, 200, status, "the key works, ungoverned")
	status, doc = call(t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/keys/"+keyID+"/guardrail", e.key, `{"guardrail_id":"gr_gone"}`)
	require.Equal(t, 400, status)
	require.Equal(t, "/guardrail_id", requireEnvelope(t, doc, 400, "invalid_request")["metadata"].(map[string]any)["field"])
}

// TestGuardrailRoles: admins and owners manage guardrails; members and
// viewers read, a member only the ones governing it.
func TestGuardrailRoles(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	base := "/v1/workspaces/" + e.ws + "/guardrails"
	mine := e.guardrail(`{"name":"mine"}`)
	other := e.guardrail(`{"name":"other"}`)
	member := func(role string) (string, string) {
		status, doc := call(t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/members", e.key, `{"name":"m","role":"`+role+`"}`)
		require.Equal(t, 201, status, "%v", doc)
		mid := data(doc)["id"].(string)
		_, key := e.newKey(`{"name":"k","member_id":"` + mid + `"}`)
		return mid, key
	}
	mid, memberKey := member("member")
	_, viewerKey := member("viewer")
	_, adminKey := member("admin")
	e.assign("members", mid, mine)

	for _, k := range []string{memberKey, viewerKey} {
		status, doc := call(t, e.srv.URL, "POST", base, k, `{"name":"x"}`)
		require.Equal(t, 403, status)
		requireEnvelope(t, doc, 403, "permission_denied")
		status, doc = call(t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/members/"+mid+"/guardrail", k, `{"guardrail_id":"`+other+`"}`)
		require.Equal(t, 403, status, "%v", doc)
	}
	status, doc := call(t, e.srv.URL, "GET", base, viewerKey, "")
	require.Equal(t, 200, status)
	require.Len(t, doc["data"], 2, "viewers read every guardrail")
	status, doc = call(t, e.srv.URL, "GET", base, memberKey, "")
	require.Equal(t, 200, status)
	require.Len(t, doc["data"], 1, "a member reads the ones governing it")
	require.Equal(t, mine, doc["data"].([]any)[0].(map[string]any)["id"])
	status, _ = call(t, e.srv.URL, "GET", base+"/"+other, memberKey, "")
	require.Equal(t, 404, status)
	status, doc = call(t, e.srv.URL, "PUT", base+"/"+other, adminKey, `{"name":"renamed"}`)
	require.Equal(t, 200, status, "%v", doc)
	// An admin cannot put a guardrail on an owner.
	status, doc = call(t, e.srv.URL, "GET", "/v1/key", e.key, "")
	require.Equal(t, 200, status)
	ownerMember := data(doc)["member_id"].(string)
	status, doc = call(t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/members/"+ownerMember+"/guardrail", adminKey, `{"guardrail_id":"`+other+`"}`)
	require.Equal(t, 403, status, "%v", doc)
}

// TestGuardrailEnforcement: each refusal before any upstream call, with
// its status, type and metadata; providers outside an allowlist are
// filtered in routing.
func TestGuardrailEnforcement(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	keyID, key := e.newKey(`{"name":"governed"}`)
	models := e.guardrail(`{"name":"test only","allowed_models":["test/*"],"ignored_models":["test/leaky"]}`)
	e.assign("keys", keyID, models)

	status, doc := call(t, e.srv.URL, "POST", "/v1/chat/completions", key, chatBody)
	er := requireEnvelope(t, doc, 403, "model_not_allowed")
	require.Equal(t, 403, status)
	md := er["metadata"].(map[string]any)
	require.Equal(t, models, md["guardrail_id"])
	require.Equal(t, "test only", md["guardrail_name"])
	require.Equal(t, []any{"test/*"}, md["allowed_models"])
	require.Contains(t, er["message"], "test only")
	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", key, `{"model":"test/leaky","messages":[{"role":"user","content":"x"}]}`)
	require.Equal(t, 403, status, "ignored: %v", doc)
	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", key,
		`{"models":["mock/echo","test/trio"],"max_tokens":5,"messages":[{"role":"user","content":"x"}]}`)
	require.Equal(t, 200, status, "a chain keeps its allowed models: %v", doc)
	require.Equal(t, "test/trio", doc["model"])

	// The member's guardrail narrows the providers further: allowlists intersect.
	status, doc = call(t, e.srv.URL, "GET", "/v1/key", key, "")
	require.Equal(t, 200, status)
	memberID := data(doc)["member_id"].(string)
	require.Equal(t, []any{map[string]any{"id": models, "name": "test only", "via": "key", "limit_usd": nil,
		"reset_interval": nil, "usage": 0.0, "limit_remaining": nil, "resets_at": nil}}, data(doc)["guardrails"])
	_ = memberID
	providers := e.guardrail(`{"name":"b only","allowed_providers":["tri-b","mock"]}`)
	status, doc = call(t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/keys", e.key, `{"name":"second"}`)
	require.Equal(t, 201, status)
	second := data(doc)["key"].(string)
	secondID := data(doc)["id"].(string)
	e.assign("keys", secondID, providers)
	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", second,
		`{"model":"test/trio","max_tokens":5,"provider":{"sort":"price"},"messages":[{"role":"user","content":"x"}]}`)
	require.Equal(t, 200, status, "%v", doc)
	require.Equal(t, "tri-b", doc["provider"], "the cheaper tri-a is outside the allowlist")
	g := e.generation(doc["id"].(string))
	excluded := map[string]string{}
	for _, c := range g.Routing.Candidates {
		if c.ExcludedBy != nil {
			excluded[c.Provider] = *c.ExcludedBy
		}
	}
	require.Equal(t, map[string]string{"tri-a": "guardrail:providers", "tri-c": "guardrail:providers"}, excluded)
	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", second, `{"model":"test/duo","messages":[{"role":"user","content":"x"}]}`)
	er = requireEnvelope(t, doc, 404, "no_endpoints")
	require.Equal(t, 404, status)
	require.Contains(t, er["metadata"].(map[string]any)["excluded_by"], "guardrail:providers")

	// Budgets: the guardrail's and the workspace's, each on its own.
	budgetKeyID, budgetKey := e.newKey(`{"name":"budgeted"}`)
	tiny := e.guardrail(`{"name":"tiny","limit_usd":0.00001,"reset_interval":"daily"}`)
	e.assign("keys", budgetKeyID, tiny)
	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", budgetKey, chatBody)
	er = requireEnvelope(t, doc, 402, "budget_exceeded")
	require.Equal(t, 402, status)
	md = er["metadata"].(map[string]any)
	require.Equal(t, "guardrail", md["scope"])
	require.Equal(t, tiny, md["guardrail_id"])
	require.Equal(t, "tiny", md["guardrail_name"])
	require.Equal(t, 0.00001, md["limit"])
	require.Equal(t, 0.0, md["spent"])
	require.Equal(t, 0.00001, md["remaining"])
	next, _ := budget.NextReset("daily", time.Now())
	require.Equal(t, next.Format(time.RFC3339), md["resets_at"])

	status, doc = call(t, e.srv.URL, "PATCH", "/v1/workspaces/"+e.ws, e.key, `{"limit_usd":0.00002,"reset_interval":"weekly"}`)
	require.Equal(t, 200, status, "%v", doc)
	require.Equal(t, 0.00002, data(doc)["limit_usd"])
	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", key,
		`{"model":"test/trio","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`)
	er = requireEnvelope(t, doc, 402, "budget_exceeded")
	require.Equal(t, 402, status)
	require.Equal(t, "workspace", er["metadata"].(map[string]any)["scope"])
	require.Equal(t, e.ws, er["metadata"].(map[string]any)["workspace_id"])
	status, doc = call(t, e.srv.URL, "PATCH", "/v1/workspaces/"+e.ws, e.key, `{"limit_usd":null}`)
	require.Equal(t, 200, status, "%v", doc)
	require.Nil(t, data(doc)["limit_usd"])
	status, _ = call(t, e.srv.URL, "POST", "/v1/chat/completions", key, `{"model":"test/trio","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`)
	require.Equal(t, 200, status)
	status, doc = call(t, e.srv.URL, "PATCH", "/v1/workspaces/"+e.ws, e.key, `{"reset_interval":"daily"}`)
	require.Equal(t, 400, status, "%v", doc)
}

// TestDefaultGuardrailAndChangesApplyOnEveryReplica: the workspace default
// governs members without a guardrail of their own, a member's own
// replaces it, and every change holds on another replica's very next
// request.
func TestDefaultGuardrailAndChangesApplyOnEveryReplica(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	b := e.replica()
	status, doc := call(t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/members", e.key, `{"name":"m","role":"member"}`)
	require.Equal(t, 201, status)
	mid := data(doc)["id"].(string)
	_, key := e.newKey(`{"name":"k","member_id":"` + mid + `"}`)
	trio := `{"model":"test/trio","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`
	use := func(want int) {
		t.Helper()
		for _, srv := range []string{b.URL, e.srv.URL} {
			status, doc := call(t, srv, "POST", "/v1/chat/completions", key, trio)
			require.Equal(t, want, status, "%s: %v", srv, doc)
		}
	}
	use(200) // cached on both replicas
	echoOnly := e.guardrail(`{"name":"echo only","allowed_models":["mock/echo"]}`)
	status, doc = call(t, e.srv.URL, "PATCH", "/v1/workspaces/"+e.ws, e.key, `{"default_guardrail_id":"`+echoOnly+`"}`)
	require.Equal(t, 200, status, "%v", doc)
	use(403)
	trioOnly := e.guardrail(`{"name":"trio only","allowed_models":["test/trio"]}`)
	e.assign("members", mid, trioOnly)
	use(200) // the member's own replaces the default
	status, doc = call(t, e.srv.URL, "PUT", "/v1/workspaces/"+e.ws+"/guardrails/"+trioOnly, e.key, `{"name":"trio only","allowed_models":["test/duo"]}`)
	require.Equal(t, 200, status, "%v", doc)
	use(403)
	status, _ = call(t, e.srv.URL, "DELETE", "/v1/workspaces/"+e.ws+"/members/"+mid+"/guardrail", e.key, "")
	require.Equal(t, 204, status)
	use(403) // the default again
	status, _ = call(t, e.srv.URL, "DELETE", "/v1/workspaces/"+e.ws+"/guardrails/"+echoOnly+"?force=true", e.key, "")
	require.Equal(t, 204, status)
	use(200)
}

// TestGuardrailBudgetNeverOverspentAcrossReplicas is the overspend test: a
// guardrail with a $1.00 budget, two replicas on one database, 500
// concurrent streaming and non-streaming requests through both, each
// costing exactly its reservation (about 1.6 cents): the final spend is at
// most $1.00, the admitted requests are within one of ⌊1.00 / cost⌋, every
// refusal is a 402, and no lease is left once the replicas hand theirs
// back.
func TestGuardrailBudgetNeverOverspentAcrossReplicas(t *testing.T) {
	t.Parallel()
	const maxTokens, n = 8000, 500
	jsonBody := fmt.Sprintf(`{"model":"mock/echo","stream":false,"max_tokens":%d,"messages":[{"role":"user","content":"a fixed prompt"}]}`, maxTokens)
	streamBody := fmt.Sprintf(`{"model":"mock/echo","stream":true ,"max_tokens":%d,"messages":[{"role":"user","content":"a fixed prompt"}]}`, maxTokens)
	require.Equal(t, len(jsonBody), len(streamBody))
	cost := promptPrice.Mul(decimal.NewFromInt(int64(len(jsonBody)))).Add(completionPrice.Mul(decimal.NewFromInt(maxTokens)))
	fits := decimal.NewFromInt(1).Div(cost).Floor().IntPart()
	usage := fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d}`, len(jsonBody), maxTokens)
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(raw), `"stream":true`) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":"c","object":"chat.completion","created":1,"model":"echo",`+
				`"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":%s}`, usage)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"echo\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n")
		fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"echo\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":%s}\n\n", usage)
		fmt.Fprint(w, "data: [DONE]\n\n")
	})
	e := setup(t, map[string]http.Handler{"mock": up})
	b := e.replica()
	keyID, key := e.newKey(`{"name":"spender"}`)
	gr := e.guardrail(`{"name":"one dollar","limit_usd":1}`)
	e.assign("keys", keyID, gr)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: 0}}
	var mu sync.Mutex
	admitted, served := 0, decimal.Zero
	statuses := map[int]int{}
	// Ten requests one after another on each replica first, served from
	// the replicas' leases in memory; then the rest all at once.
	const warm = 20
	for i := range warm {
		srv := e.srv.URL
		if i%2 == 1 {
			srv = b.URL
		}
		status, doc := call(t, srv, "POST", "/v1/chat/completions", key, jsonBody)
		require.Equal(t, 200, status, "%v", doc)
		statuses[200]++
		admitted++
		served = served.Add(costOf(t, doc))
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n - warm {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			srv, body := e.srv.URL, jsonBody
			if i%2 == 1 {
				srv = b.URL
			}
			if i%4 >= 2 {
				body = streamBody
			}
			req, _ := http.NewRequest("POST", srv+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("request: %v", err)
				return
			}
			defer resp.Body.Close()
			c := decimal.Zero
			if resp.StatusCode == 200 && body == streamBody {
				c = streamCost(t, resp.Body)
			} else {
				var doc map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&doc)
				if resp.StatusCode == 200 {
					c = costOf(t, doc)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			statuses[resp.StatusCode]++
			if resp.StatusCode == 200 {
				admitted++
				served = served.Add(c)
			}
		}()
	}
	close(start)
	wg.Wait()
	require.Equal(t, map[int]int{200: admitted, 402: n - admitted}, statuses, "every refusal is a 402")
	require.GreaterOrEqual(t, int64(admitted), fits-1, "admitted within one of ⌊1/%s⌋ = %d", cost, fits)
	require.LessOrEqual(t, int64(admitted), fits)
	require.True(t, served.Equal(cost.Mul(decimal.NewFromInt(int64(admitted)))), "each cost its reservation: %s", served)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, a := range append([]*App{e.app}, e.replicas...) {
		require.NoError(t, a.Budgets.Sync(ctx))
	}
	spent, reserved, err := e.app.Store.Spend(ctx, "guardrail", gr, budget.Lifetime)
	require.NoError(t, err)
	require.True(t, spent.Equal(served), "ledger %s, responses %s", spent, served)
	require.True(t, spent.LessThanOrEqual(decimal.NewFromInt(1)), "never past the limit: %s", spent)
	require.True(t, reserved.IsZero(), "nothing held: %s", reserved)
	require.Zero(t, count(t, e.pool, `SELECT count(*) FROM spend_leases`), "no lease left")
	t.Logf("admitted %d of %d (⌊1/%s⌋ = %d), spent %s", admitted, n, cost, fits, spent)
}

// streamCost reads a stream to its end and returns its usage chunk's cost.
func streamCost(t *testing.T, r io.Reader) decimal.Decimal {
	t.Helper()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	cost, done := decimal.Zero, false
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if line == "[DONE]" {
			done = true
			continue
		}
		var chunk map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &chunk))
		if u, ok := chunk["usage"].(map[string]any); ok && u["cost"] != nil {
			cost = decimal.RequireFromString(toJSON(t, u["cost"]))
		}
	}
	require.True(t, done, "the stream ended with [DONE]")
	return cost
}
