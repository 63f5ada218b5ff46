package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/budget"
)

// TestSpendViews: spend per period of a key, a member (its keys summed), a
// guardrail and the workspace, each as its own source has it, and who may
// read which.
func TestSpendViews(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	status, doc := call(t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/members", e.key, `{"name":"m","role":"member"}`)
	require.Equal(t, 201, status)
	mid := data(doc)["id"].(string)
	k1, key1 := e.newKey(`{"name":"a","member_id":"` + mid + `"}`)
	k2, key2 := e.newKey(`{"name":"b","member_id":"` + mid + `"}`)
	gr := e.guardrail(`{"name":"budget","limit_usd":5,"reset_interval":"monthly"}`)
	e.assign("members", mid, gr)
	status, doc = call(t, e.srv.URL, "PATCH", "/v1/workspaces/"+e.ws, e.key, `{"limit_usd":100}`)
	require.Equal(t, 200, status, "%v", doc)

	costs := map[string]decimal.Decimal{}
	for _, k := range []string{key1, key1, key2} {
		status, doc := call(t, e.srv.URL, "POST", "/v1/chat/completions", k, chatBody)
		require.Equal(t, 200, status, "%v", doc)
		costs[k] = costs[k].Add(costOf(t, doc))
	}
	require.NoError(t, e.app.Recorder.Flush(context.Background()))
	require.NoError(t, e.app.Budgets.Sync(context.Background()))
	total := costs[key1].Add(costs[key2])

	view := func(key, q string) (int, map[string]any) {
		return call(t, e.srv.URL, "GET", "/v1/workspaces/"+e.ws+"/spend?"+q, key, "")
	}
	usageOf := func(doc map[string]any) (string, decimal.Decimal) {
		periods := data(doc)["periods"].([]any)
		require.Len(t, periods, 1, "%v", doc)
		p := periods[0].(map[string]any)
		return p["period_start"].(string), decimal.RequireFromString(toJSON(t, p["usage"]))
	}
	day := budget.PeriodStart("daily", time.Now()).Format(time.RFC3339)
	month := budget.PeriodStart("monthly", time.Now()).Format(time.RFC3339)

	status, doc = view(e.key, "scope=key&id="+k1+"&period=daily")
	require.Equal(t, 200, status, "%v", doc)
	start, usage := usageOf(doc)
	require.Equal(t, day, start)
	require.True(t, usage.Equal(costs[key1]), "key: %s, want %s", usage, costs[key1])
	require.Equal(t, 0.0, data(doc)["periods"].([]any)[0].(map[string]any)["byok_usage"])

	status, doc = view(key2, "scope=member&id="+mid) // a member reads its own
	require.Equal(t, 200, status, "%v", doc)
	require.Equal(t, "monthly", data(doc)["period"])
	start, usage = usageOf(doc)
	require.Equal(t, month, start)
	require.True(t, usage.Equal(total), "member: %s, want %s", usage, total)

	for _, scope := range []string{"scope=guardrail&id=" + gr, "scope=workspace"} {
		status, doc = view(key1, scope)
		require.Equal(t, 200, status, "%s: %v", scope, doc)
		_, usage = usageOf(doc)
		require.True(t, usage.Equal(total), "%s: %s, want %s", scope, usage, total)
		require.Nil(t, data(doc)["periods"].([]any)[0].(map[string]any)["byok_usage"])
	}
	require.Equal(t, 5.0, data(func() map[string]any { _, d := view(e.key, "scope=guardrail&id="+gr); return d }())["limit_usd"])

	// Members read only their own member and keys.
	_, ownerDoc := call(t, e.srv.URL, "GET", "/v1/key", e.key, "")
	ownerMember := data(ownerDoc)["member_id"].(string)
	status, doc = view(key1, "scope=member&id="+ownerMember)
	require.Equal(t, 403, status, "%v", doc)
	_, ownerKeyDoc := call(t, e.srv.URL, "GET", "/v1/key", e.key, "")
	status, _ = view(key1, "scope=key&id="+data(ownerKeyDoc)["id"].(string))
	require.NotEqual(t, 200, status)
	status, doc = view(key1, "scope=key")
	require.Equal(t, 400, status)
	require.Equal(t, "id", requireEnvelope(t, doc, 400, "invalid_request")["metadata"].(map[string]any)["field"])
	status, doc = view(e.key, fmt.Sprintf("scope=key&id=%s&period=weekly&limit=0", k2))
	require.Equal(t, 400, status, "limit below 1: %v", doc)
}
