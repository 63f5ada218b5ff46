package app

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/budget"
)

// ledger reads a key's spent and reserved amounts for a period.
func (e *env) ledger(keyID, reset string) (decimal.Decimal, decimal.Decimal) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, a := range append([]*App{e.app}, e.replicas...) {
		require.NoError(e.t, a.Budgets.Sync(ctx), "consumed spend reaches the ledger with the next flush; unused leases go back")
	}
	spent, reserved, err := e.app.Store.Spend(context.Background(), "key", keyID, budget.PeriodStart(reset, time.Now()))
	require.NoError(e.t, err)
	return spent, reserved
}

func costOf(t *testing.T, doc map[string]any) decimal.Decimal {
	t.Helper()
	return decimal.RequireFromString(toJSON(t, doc["usage"].(map[string]any)["cost"]))
}

// burst sends n copies of body at once, spread over srvs, and returns what
// the answered ones cost and how many were answered and refused (402).
func burst(t *testing.T, n int, srvs []string, key, body string) (cost decimal.Decimal, ok, refused int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, doc := call(t, srvs[i%len(srvs)], "POST", "/v1/chat/completions", key, body)
			mu.Lock()
			defer mu.Unlock()
			switch status {
			case 200:
				ok++
				cost = cost.Add(costOf(t, doc))
			case 402:
				refused++
			default:
				t.Errorf("unexpected status %d: %v", status, doc)
			}
		}()
	}
	wg.Wait()
	return cost, ok, refused
}

func TestKeyLimitIsEnforced(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	id, key := e.newKey(`{"name":"capped","limit":0.0002}`)
	spentByResponses := decimal.Zero
	var refusal map[string]any
	successes := 0
	for range 50 {
		status, doc := call(t, e.srv.URL, "POST", "/v1/chat/completions", key, chatBody)
		if status == 402 {
			refusal = doc
			break
		}
		require.Equal(t, 200, status, "%v", doc)
		successes++
		spentByResponses = spentByResponses.Add(costOf(t, doc))
	}
	require.NotNil(t, refusal, "the limit must stop spending")
	require.Positive(t, successes)
	er := requireEnvelope(t, refusal, 402, "budget_exceeded")
	md := er["metadata"].(map[string]any)
	require.Equal(t, "key", md["scope"])
	require.Equal(t, id, md["key_id"])
	require.Equal(t, 0.0002, md["limit"])
	require.NotContains(t, md, "resets_at", "a lifetime limit never resets")
	require.Contains(t, er["message"], "never resets")

	spent, reserved := e.ledger(id, "")
	require.True(t, spent.Equal(spentByResponses), "ledger %s, responses %s", spent, spentByResponses)
	require.True(t, reserved.IsZero(), "every reservation was released")
	require.True(t, spent.LessThanOrEqual(decimal.RequireFromString("0.0002")))

	status, doc := call(t, e.srv.URL, "GET", "/v1/key", key, "")
	require.Equal(t, 200, status)
	k := data(doc)
	require.Equal(t, 0.0002, k["limit"])
	require.True(t, decimal.RequireFromString("0.0002").Sub(spent).Equal(decimal.RequireFromString(toJSON(t, k["limit_remaining"]))))
	require.True(t, spent.Equal(decimal.RequireFromString(toJSON(t, k["usage"]))))

	// An admin raises the limit: the key works again on its next request.
	status, _ = call(t, e.srv.URL, "PATCH", "/v1/workspaces/"+e.ws+"/keys/"+id, e.key, `{"limit":1}`)
	require.Equal(t, 200, status)
	status, _ = call(t, e.srv.URL, "POST", "/v1/chat/completions", key, chatBody)
	require.Equal(t, 200, status)
	// And removes it.
	status, doc = call(t, e.srv.URL, "PATCH", "/v1/workspaces/"+e.ws+"/keys/"+id, e.key, `{"limit":null}`)
	require.Equal(t, 200, status)
	require.NotContains(t, data(doc), "limit")
}

func TestPeriodicLimitSaysWhenItResets(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	_, key := e.newKey(`{"name":"daily","limit":0,"limit_reset":"daily"}`)
	status, doc := call(t, e.srv.URL, "POST", "/v1/chat/completions", key, chatBody)
	require.Equal(t, 402, status)
	er := requireEnvelope(t, doc, 402, "budget_exceeded")
	next, _ := budget.NextReset("daily", time.Now())
	require.Equal(t, next.Format(time.RFC3339), er["metadata"].(map[string]any)["resets_at"])

	// A stream is refused before its first byte, as a plain HTTP error.
	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", key,
		`{"model":"mock/echo","stream":true,"messages":[{"role":"user","content":"hello"}]}`)
	require.Equal(t, 402, status)
	requireEnvelope(t, doc, 402, "budget_exceeded")
}

// TestKeyLimitHoldsUnderConcurrency fires many requests at once, through two
// replicas, at a key whose limit covers only some of them: the ledger never
// passes the limit and holds exactly what the successful responses cost.
func TestKeyLimitHoldsUnderConcurrency(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	b := e.replica()
	limit := decimal.RequireFromString("0.001")
	id, key := e.newKey(`{"name":"shared","limit":0.001,"limit_reset":"monthly"}`)

	const n = 60
	total, ok, refused := burst(t, n, []string{e.srv.URL, b.URL}, key, chatBody)
	require.Equal(t, n, ok+refused)
	require.Positive(t, ok)
	require.Positive(t, refused, "the limit must bind in this test")
	spent, reserved := e.ledger(id, "monthly")
	require.True(t, reserved.IsZero())
	require.True(t, spent.Equal(total), "ledger %s, responses %s", spent, total)
	require.True(t, spent.LessThanOrEqual(limit), "spent %s over limit %s", spent, limit)
}

func TestStreamSpendIsSettled(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	id, key := e.newKey(`{"name":"streamer","limit":1}`)
	status, _ := call(t, e.srv.URL, "POST", "/v1/chat/completions", key,
		`{"model":"mock/echo","stream":false,"max_tokens":10,"messages":[{"role":"user","content":"one two three"}]}`)
	require.Equal(t, 200, status)
	var before decimal.Decimal
	require.Eventually(t, func() bool { // settlement runs after the response, in the background
		var reserved decimal.Decimal
		before, reserved = e.ledger(id, "")
		return reserved.IsZero() && before.IsPositive()
	}, 2*time.Second, 10*time.Millisecond)
	_, _, raw := send(t, e.srv.URL, "POST", "/v1/chat/completions", key,
		`{"model":"mock/echo","stream":true,"max_tokens":10,"messages":[{"role":"user","content":"one two three"}]}`)
	require.Contains(t, string(raw), "data: [DONE]")
	require.Eventually(t, func() bool {
		after, reserved := e.ledger(id, "")
		return reserved.IsZero() && after.Equal(before.Add(before)) // same request, same cost
	}, 2*time.Second, 10*time.Millisecond)
}

// TestLimitSetLaterCountsEarlierSpend: a limit added mid-period counts what
// the key already spent in that period, so it binds at once.
func TestLimitSetLaterCountsEarlierSpend(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	id, key := e.newKey(`{"name":"late"}`)
	spent := decimal.Zero
	for range 3 {
		status, doc := call(t, e.srv.URL, "POST", "/v1/chat/completions", key, chatBody)
		require.Equal(t, 200, status)
		spent = spent.Add(costOf(t, doc))
	}
	require.NoError(t, e.app.Recorder.Flush(context.Background()))
	status, _ := call(t, e.srv.URL, "PATCH", "/v1/workspaces/"+e.ws+"/keys/"+id, e.key,
		`{"limit":`+spent.String()+`,"limit_reset":"monthly"}`)
	require.Equal(t, 200, status)
	got, _ := e.ledger(id, "monthly")
	require.True(t, got.Equal(spent), "seeded %s, spent %s", got, spent)
	status, doc := call(t, e.srv.URL, "POST", "/v1/chat/completions", key, chatBody)
	require.Equal(t, 402, status)
	er := requireEnvelope(t, doc, 402, "budget_exceeded")
	require.Equal(t, 0.0, er["metadata"].(map[string]any)["remaining"])
	require.Contains(t, er["message"], "Ask an admin to raise the limit")
}
