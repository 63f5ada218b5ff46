package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// clock is a settable time source for the gateway.
type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time   { return time.Unix(0, c.ns.Load()) }
func (c *clock) set(t time.Time)  { c.ns.Store(t.UnixNano()) }
func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func (e *env) flush()             { require.NoError(e.t, e.app.Recorder.Flush(context.Background())) }
func (e *env) analytics(key, query string) gjson.Result {
	e.t.Helper()
	status, _, raw := send(e.t, e.srv.URL, "GET", "/v1/workspaces/"+e.ws+"/analytics/"+query, key, "")
	require.Equal(e.t, 200, status, "%s", raw)
	return gjson.GetBytes(raw, "data")
}

// postAs sends a completion with key and extra headers, requires a 200 and
// returns the generation id.
func postAs(t *testing.T, e *env, key string, h map[string]string, body string) string {
	t.Helper()
	req, err := http.NewRequest("POST", e.srv.URL+"/v1/chat/completions", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	// Read to the end: closing a stream early cancels it, and its record
	// lands only after the handler has finished, which may be after the
	// client has the last byte.
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	id := resp.Header.Get("X-Generation-Id")
	e.waitGeneration(id)
	return id
}

// TestAnalyticsFromHeadersToAggregates: attribution headers reach the
// hourly aggregates, read back per app, model, provider and key, with
// hourly and daily series at UTC boundaries, and as daily activity.
func TestAnalyticsFromHeadersToAggregates(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Date(2026, 11, 30, 23, 40, 0, 0, time.UTC))
	e := setupWith(t, nil, func(o *Options) { o.Now = clk.Now })
	appA := map[string]string{"HTTP-Referer": "https://a.example/chat"}
	appB := map[string]string{"X-Client-Name": "b-cli"}
	for range 3 {
		postAs(t, e, e.key, appA, chatBody)
	}
	postAs(t, e, e.key, appB, chatBody)
	clk.set(time.Date(2026, 12, 1, 0, 5, 0, 0, time.UTC)) // the next UTC hour and day
	for range 2 {
		postAs(t, e, e.key, appA, chatBody)
	}
	postAs(t, e, e.key, nil, chatBody)
	postAs(t, e, e.key, appB, `{"model":"mock/echo","stream":true,"messages":[{"role":"user","content":"a b c"}]}`)
	e.flush()

	rep := e.analytics(e.key, "apps?from=2026-11-30T00:00:00Z&to=2026-12-02T00:00:00Z&granularity=hour")
	groups := map[string]gjson.Result{}
	for _, g := range rep.Get("groups").Array() {
		groups[g.Get("id").String()] = g
	}
	require.Len(t, groups, 3, "%s", rep.Raw)
	a := groups["a.example"]
	require.Equal(t, int64(5), a.Get("requests").Int())
	require.Equal(t, `["mock/echo"]`, a.Get("models").Raw)
	require.Equal(t, `["2026-11-30T23:00:00Z","2026-12-01T00:00:00Z"]`, a.Get("series.#.start").Raw)
	require.Equal(t, `[3,2]`, a.Get("series.#.requests").Raw)
	require.True(t, a.Get("latency_p50_ms").Exists())
	require.Equal(t, int64(2), groups["b-cli"].Get("requests").Int())
	require.Equal(t, int64(1), groups["unattributed"].Get("requests").Int())

	// The costs are the records' own, exactly.
	var recorded string
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT sum(cost_usd)::text FROM generations`).Scan(&recorded))
	total := decimal.Zero
	for _, g := range groups {
		total = total.Add(decimal.RequireFromString(g.Get("cost").String()))
	}
	require.True(t, total.Equal(decimal.RequireFromString(recorded)), "%s vs %s", total, recorded)

	daily := e.analytics(e.key, "models?from=2026-11-30T00:00:00Z&to=2026-12-02T00:00:00Z&granularity=day")
	require.Equal(t, "mock/echo", daily.Get("groups.0.id").String())
	require.Equal(t, `["2026-11-30T00:00:00Z","2026-12-01T00:00:00Z"]`, daily.Get("groups.0.series.#.start").Raw)
	require.Equal(t, `[4,4]`, daily.Get("groups.0.series.#.requests").Raw)
	require.Equal(t, "mock", e.analytics(e.key, "providers?from=2026-11-30T00:00:00Z").Get("groups.0.id").String())
	filtered := e.analytics(e.key, "keys?from=2026-11-30T00:00:00Z&app_id=b-cli")
	require.Equal(t, int64(2), filtered.Get("groups.0.requests").Int())
	require.Equal(t, int64(0), e.analytics(e.key, "apps?from=2026-12-01T01:00:00Z&to=2026-12-01T03:00:00Z").Get("groups.#").Int(), "nothing after 01:00")

	status, _, raw := send(t, e.srv.URL, "GET", "/v1/workspaces/"+e.ws+"/activity", e.key, "")
	require.Equal(t, 200, status, "%s", raw)
	rows := gjson.GetBytes(raw, "data").Array()
	require.Len(t, rows, 2, "%s", raw)
	require.Equal(t, "2026-12-01", rows[0].Get("date").String(), "newest first")
	require.Equal(t, "mock/echo", rows[0].Get("model").String())
	require.Equal(t, "mock", rows[0].Get("provider_name").String())
	require.Equal(t, int64(4), rows[0].Get("requests").Int())
	require.Equal(t, "mock/echo@mock", rows[0].Get("endpoint_id").String())
	var dayCost string
	require.NoError(t, e.pool.QueryRow(context.Background(),
		`SELECT sum(cost_usd)::text FROM generations WHERE created_at >= '2026-12-01T00:00:00Z'`).Scan(&dayCost))
	require.True(t, decimal.RequireFromString(rows[0].Get("usage").Raw).Equal(decimal.RequireFromString(dayCost)),
		"the day's usage is exact: %s vs %s", rows[0].Get("usage").Raw, dayCost)

	status, _, raw = send(t, e.srv.URL, "GET", "/v1/workspaces/"+e.ws+"/analytics/apps?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z", e.key, "")
	require.Equal(t, 400, status, "%s", raw)
	require.Equal(t, "/to", gjson.GetBytes(raw, "error.metadata.field").String())
}

// TestAnalyticsAreExactUnderConcurrency: after 1,000 concurrent requests
// over several keys and apps, the aggregates equal the sum of the records.
func TestAnalyticsAreExactUnderConcurrency(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	keys := []string{e.key}
	for i := range 2 {
		_, k := e.newKey(fmt.Sprintf(`{"name":"k%d"}`, i))
		keys = append(keys, k)
	}
	// Two replicas write the same aggregate rows, each flushing many small
	// batches while the load runs.
	second := e.replica()
	srvs := []string{e.srv.URL, second.URL}
	stop := make(chan struct{})
	var flushers sync.WaitGroup
	for _, a := range append([]*App{e.app}, e.replicas...) {
		flushers.Add(1)
		go func() {
			defer flushers.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
					_ = a.Recorder.Flush(context.Background())
				}
			}
		}()
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range 1000 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			status, _, raw := send(t, srvs[i%2], "POST", "/v1/chat/completions", keys[i%3],
				fmt.Sprintf(`{"model":"mock/echo","messages":[{"role":"user","content":"%s"}]}`, strings.Repeat("w ", 1+i%7)))
			require.Equal(t, 200, status, "%s", raw)
		}()
	}
	wg.Wait()
	close(stop)
	flushers.Wait()
	for _, a := range append([]*App{e.app}, e.replicas...) {
		require.NoError(t, a.Recorder.Flush(context.Background()))
	}
	var n int64
	var prompt, completion int64
	var cost string
	require.NoError(t, e.pool.QueryRow(context.Background(),
		`SELECT count(*), sum(prompt_tokens), sum(completion_tokens), sum(cost_usd)::text FROM generations`).Scan(&n, &prompt, &completion, &cost))
	require.Equal(t, int64(1000), n)
	for _, dim := range []string{"apps", "keys", "models"} {
		rep := e.analytics(e.key, dim+"")
		var gotN, gotP, gotC int64
		gotCost := decimal.Zero
		for _, g := range rep.Get("groups").Array() {
			gotN += g.Get("requests").Int()
			gotP += g.Get("prompt_tokens").Int()
			gotC += g.Get("completion_tokens").Int()
			gotCost = gotCost.Add(decimal.RequireFromString(g.Get("cost").String()))
		}
		require.Equal(t, n, gotN, dim)
		require.Equal(t, prompt, gotP, dim)
		require.Equal(t, completion, gotC, dim)
		require.True(t, gotCost.Equal(decimal.RequireFromString(cost)), "%s: %s vs %s", dim, gotCost, cost)
	}
}

// TestAnalyticsAccess: viewers read the workspace; members read their own
// keys only, and not the guardrail cut.
func TestAnalyticsAccess(t *testing.T) {
	t.Parallel()
	f := newRBACFix(t)
	e := f.e
	gr := e.guardrail(`{"name":"watched"}`)
	e.assign("keys", f.main.keyIDs[rAdmin], gr)
	postAs(t, e, f.main.keys[rAdmin], nil, chatBody)
	postAs(t, e, f.main.keys[rOwner], nil, chatBody)
	postAs(t, e, f.main.keys[rMember], nil, chatBody)
	postAs(t, e, f.main.keys[rMember], nil, `{"model":"mock/echo","stream":true,"messages":[{"role":"user","content":"a b c"}]}`)
	e.flush()
	for _, role := range []string{rOwner, rAdmin, rViewer} {
		rep := e.analytics(f.main.keys[role], "keys")
		require.Len(t, rep.Get("groups").Array(), 3, role)
	}
	byGuardrail := e.analytics(e.key, "guardrails")
	require.Equal(t, gr, byGuardrail.Get("groups.0.id").String(), "%s", byGuardrail.Raw)
	require.Equal(t, int64(1), byGuardrail.Get("groups.0.requests").Int(), "only the governed key's request")
	mine := e.analytics(f.main.keys[rMember], "keys")
	require.Len(t, mine.Get("groups").Array(), 1)
	require.Equal(t, f.main.keyIDs[rMember], mine.Get("groups.0.id").String())
	require.Equal(t, int64(2), mine.Get("groups.0.requests").Int())
	require.Greater(t, mine.Get("groups.0.ttft_p50_ms").Float(), 0.0, "the streamed request has a time to first token")
	require.Greater(t, mine.Get("groups.0.latency_p95_ms").Float(), 0.0)
	status, _, raw := send(t, e.srv.URL, "GET", "/v1/workspaces/"+e.ws+"/analytics/guardrails", f.main.keys[rMember], "")
	require.Equal(t, 403, status, "%s", raw)
	status, _, raw = send(t, e.srv.URL, "GET", "/v1/workspaces/"+f.other.id+"/analytics/apps", f.main.keys[rOwner], "")
	require.Equal(t, 404, status, "another workspace is not found: %s", raw)
	status, _, raw = send(t, e.srv.URL, "GET", "/v1/workspaces/"+e.ws+"/activity", f.main.keys[rMember], "")
	require.Equal(t, 200, status, "%s", raw)
	require.Equal(t, int64(2), gjson.GetBytes(raw, "data.0.requests").Int(), "a member's activity is its own keys'")
}

// TestRetentionDeletesOldRecordsKeepsAggregates: raw records older than the
// retention go, in batches; the aggregates (and so analytics) stay.
func TestRetentionDeletesOldRecordsKeepsAggregates(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Now().Add(-72 * time.Hour))
	e := setupWith(t, nil, func(o *Options) {
		o.Now, o.Retention, o.RetentionEvery, o.RetentionBatch = clk.Now, 24*time.Hour, 20*time.Millisecond, 2
	})
	for range 5 {
		postAs(t, e, e.key, nil, chatBody)
	}
	clk.set(time.Now())
	for range 2 {
		postAs(t, e, e.key, nil, chatBody)
	}
	e.flush()
	within(t, 5*time.Second, func() bool { return count(t, e.pool, `SELECT count(*) FROM generations`) == 2 },
		"the five old records were never deleted")
	require.Equal(t, 7, count(t, e.pool, `SELECT sum(requests)::int FROM usage_hourly`), "the aggregates stay")
	rep := e.analytics(e.key, "apps?from="+time.Now().Add(-96*time.Hour).UTC().Format(time.RFC3339))
	require.Equal(t, int64(7), rep.Get("groups.0.requests").Int())
}
