package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
)

// scripted is an OpenAI-compatible upstream answering every call with the
// given usage, after gate (if any) lets it; it keeps the bodies it got.
type scripted struct {
	mu     sync.Mutex
	bodies []map[string]any
	usage  string // the "usage" object it reports
	gate   func() // called before answering; may block
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	s.mu.Lock()
	s.bodies = append(s.bodies, body)
	s.mu.Unlock()
	if s.gate != nil {
		s.gate()
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"echo",`+
		`"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":%s}`, s.usage)
}

func (s *scripted) last() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies[len(s.bodies)-1]
}

// The test catalog prices mock/echo at $0.000001 per prompt token and
// $0.000002 per completion token.
var promptPrice, completionPrice = decimal.RequireFromString("0.000001"), decimal.RequireFromString("0.000002")

// TestBudgetHoldsWhenEveryRequestIsInFlightAtOnce: the upstream holds every
// call until all the admitted ones have arrived, and each costs exactly its
// reserved worst case, so a reservation that is not atomic would admit more
// than the limit pays for (checked once by replacing it with a read then a
// write: this test then fails).
func TestBudgetHoldsWhenEveryRequestIsInFlightAtOnce(t *testing.T) {
	t.Parallel()
	const maxTokens, admit, n = 50, 5, 24
	body := `{"model":"mock/echo","max_tokens":50,"messages":[{"role":"user","content":"a fixed prompt"}]}`
	worst := promptPrice.Mul(decimal.NewFromInt(int64(len(body)))).Add(completionPrice.Mul(decimal.NewFromInt(maxTokens)))

	var arrived atomic.Int32
	all := make(chan struct{})
	var once sync.Once
	up := &scripted{usage: fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d}`, len(body), maxTokens)}
	up.gate = func() {
		if arrived.Add(1) == admit {
			// Every admitted call is in flight; give any wrongly admitted
			// extra ones time to arrive too, then answer them all.
			time.AfterFunc(300*time.Millisecond, func() { once.Do(func() { close(all) }) })
		}
		select {
		case <-all:
		case <-time.After(10 * time.Second):
		}
	}
	e := setup(t, map[string]http.Handler{"mock": up})
	b := e.replica()
	limit := worst.Mul(decimal.NewFromInt(admit)).Add(worst.Div(decimal.NewFromInt(2)))
	id, key := e.newKey(fmt.Sprintf(`{"name":"tight","limit":%s}`, limit))

	served, _, refused := burst(t, n, []string{e.srv.URL, b.URL}, key, body)
	require.EqualValues(t, admit, arrived.Load(), "exactly as many calls as the limit pays for reached the upstream")
	require.Equal(t, n-admit, refused)
	require.True(t, served.Equal(worst.Mul(decimal.NewFromInt(admit))), "each call cost its worst case: %s", served)
	spent, reserved := e.ledger(id, "")
	require.True(t, reserved.IsZero())
	require.True(t, spent.Equal(served), "ledger %s, responses %s", spent, served)
	require.True(t, spent.LessThanOrEqual(limit))
}

// TestReportedUsageNeverPassesTheReservation: an upstream that reports far
// more (or negative) usage than the request allowed is clamped to the
// reserved bound, the record says so, and the ledger never passes the limit.
func TestReportedUsageNeverPassesTheReservation(t *testing.T) {
	t.Parallel()
	up := &scripted{usage: `{"prompt_tokens":-5,"completion_tokens":100000000,"completion_tokens_details":{"reasoning_tokens":200000000}}`}
	e := setup(t, map[string]http.Handler{"mock": up})
	id, key := e.newKey(`{"name":"small","limit":0.01}`)
	status, doc := call(t, e.srv.URL, "POST", "/v1/chat/completions", key,
		`{"model":"mock/echo","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 200, status, "%v", doc)
	u := doc["usage"].(map[string]any)
	require.EqualValues(t, 0, u["prompt_tokens"])
	require.EqualValues(t, 10, u["completion_tokens"], "clamped to max_tokens")
	require.EqualValues(t, 10, u["completion_tokens_details"].(map[string]any)["reasoning_tokens"])
	require.True(t, costOf(t, doc).Equal(completionPrice.Mul(decimal.NewFromInt(10))))
	g := e.waitGeneration(doc["id"].(string))
	require.Contains(t, g.Anomaly, "clamped")
	require.Contains(t, *e.generation(g.ID).Anomaly, "clamped", "served by the API too")
	spent, _ := e.ledger(id, "")
	require.True(t, spent.LessThanOrEqual(decimal.RequireFromString("0.01")))
	require.True(t, spent.Equal(costOf(t, doc)))
}

// TestTheReservedCapIsSentUpstream: a limited key's call carries the output
// cap that was reserved (the smaller of the client's two caps, or the
// endpoint's bound when it set none); an unlimited key's carries the
// client's. Either goes under the one name the provider reads (the mock's
// is max_tokens), whichever name the client used.
func TestTheReservedCapIsSentUpstream(t *testing.T) {
	t.Parallel()
	up := &scripted{usage: `{"prompt_tokens":1,"completion_tokens":1}`}
	e := setup(t, map[string]http.Handler{"mock": up})
	_, limited := e.newKey(`{"name":"limited","limit":1}`)
	_, free := e.newKey(`{"name":"free"}`)
	for _, tc := range []struct {
		name, key, caps string
		want            map[string]any
	}{
		{"both set: the smaller", limited, `"max_completion_tokens":1,"max_tokens":500,`, map[string]any{"max_tokens": 1.0}},
		{"one set", limited, `"max_tokens":40,`, map[string]any{"max_tokens": 40.0}},
		{"the other name: renamed", limited, `"max_completion_tokens":40,`, map[string]any{"max_tokens": 40.0}},
		{"none set: the endpoint's bound", limited, ``, map[string]any{"max_tokens": 8192.0}},
		{"unlimited key: the client's cap", free, `"max_tokens":40,`, map[string]any{"max_tokens": 40.0}},
		{"unlimited key: renamed", free, `"max_completion_tokens":40,`, map[string]any{"max_tokens": 40.0}},
		{"unlimited key, none set: none sent", free, ``, map[string]any{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, doc := call(t, e.srv.URL, "POST", "/v1/chat/completions", tc.key,
				`{"model":"mock/echo",`+tc.caps+`"messages":[{"role":"user","content":"hi"}]}`)
			require.Equal(t, 200, status, "%v", doc)
			got := up.last()
			for _, f := range []string{"max_tokens", "max_completion_tokens"} {
				require.Equal(t, tc.want[f], got[f], f)
			}
		})
	}
}

// TestNonTextPartsReserveTheWholeContext: an image's token cost is not
// bounded by its bytes, so a limited key reserves the model's whole context
// for the prompt; a text prompt of the same size is bounded by its bytes.
func TestNonTextPartsReserveTheWholeContext(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	// 8192 context tokens at $0.000001 are $0.008192 of prompt alone.
	_, key := e.newKey(`{"name":"vision","limit":0.005}`)
	text := `{"model":"mock/echo","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"what is this?"}]}]}`
	image := `{"model":"mock/echo","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"what?"},` +
		`{"type":"image_url","image_url":{"url":"https://example.invalid/a.png"}}]}]}`
	status, doc := call(t, e.srv.URL, "POST", "/v1/chat/completions", key, text)
	require.Equal(t, 200, status, "%v", doc)
	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", key, image)
	require.Equal(t, 402, status, "%v", doc)
	er := requireEnvelope(t, doc, 402, "budget_exceeded")
	require.True(t, strings.Contains(er["message"].(string), "may cost up to $0.008212."), er["message"])
}

// TestAHungUpCallIsChargedItsPrompt: a non-streaming call the client
// abandons while the upstream works on it is charged the prompt estimate
// (the provider bills it), marked estimated.
func TestAHungUpCallIsChargedItsPrompt(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	up := &scripted{usage: `{"prompt_tokens":1,"completion_tokens":1}`, gate: func() {
		arrived <- struct{}{}
		<-release
	}}
	e := setup(t, map[string]http.Handler{"mock": up})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", e.srv.URL+"/v1/chat/completions", strings.NewReader(chatBody))
	req.Header.Set("Authorization", "Bearer "+e.key)
	req.Header.Set("Content-Type", "application/json")
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel()
	require.Error(t, <-errc)
	var id string
	require.Eventually(t, func() bool {
		_ = e.app.Recorder.Flush(context.Background())
		return e.pool.QueryRow(context.Background(), `SELECT id FROM generations WHERE cancelled`).Scan(&id) == nil
	}, 5*time.Second, 20*time.Millisecond)
	g := e.waitGeneration(id)
	require.True(t, g.Cancelled)
	require.True(t, g.UsageEstimated)
	require.Equal(t, (len(chatBody)+3)/4, g.PromptTokens)
	require.True(t, g.Cost.IsPositive(), "the prompt is charged: %s", g.Cost)
}

// TestTheAnswerDoesNotWaitForSettlement: with the ledger made slow to
// record spend (a trigger sleeps whenever spent changes), a limited key's
// answer, JSON or stream, is complete at once; the ledger catches up
// afterwards.
func TestTheAnswerDoesNotWaitForSettlement(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	_, err := e.pool.Exec(context.Background(), `
		CREATE FUNCTION slow_spend() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_sleep(1.5); RETURN NEW; END $$;
		CREATE TRIGGER slow_spend BEFORE UPDATE ON spend FOR EACH ROW
		WHEN (NEW.spent <> OLD.spent) EXECUTE FUNCTION slow_spend();`)
	require.NoError(t, err)
	id, key := e.newKey(`{"name":"limited","limit":1}`)
	for _, body := range []string{chatBody,
		`{"model":"mock/echo","stream":true,"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`} {
		start := time.Now()
		status, hdr, raw := send(t, e.srv.URL, "POST", "/v1/chat/completions", key, body)
		require.Equal(t, 200, status, "%s", raw)
		require.Less(t, time.Since(start), time.Second, "the client had its whole answer before settlement")
		if !strings.Contains(body, `"stream":true`) {
			require.Equal(t, strconv.Itoa(len(raw)), hdr.Get("Content-Length"), "complete without waiting for the handler")
		}
	}
	spent, reserved := e.ledger(id, "")
	require.True(t, reserved.IsZero())
	require.True(t, spent.IsPositive())
}

// TestStreamEstimatesCountEverythingGenerated: a stream whose upstream
// reports no usage is billed for its reasoning and tool-call arguments too,
// not only its content, and the usage says it is estimated.
func TestStreamEstimatesCountEverythingGenerated(t *testing.T) {
	t.Parallel()
	reasoning, args := strings.Repeat("r", 400), strings.Repeat("a", 400)
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for _, delta := range []string{
			`{"role":"assistant","reasoning":"` + reasoning + `"}`,
			`{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":"` + args + `"}}]}`,
			`{"content":"ok"}`,
		} {
			fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"echo\",\"choices\":[{\"index\":0,\"delta\":%s}]}\n\n", delta)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	})
	e := setup(t, map[string]http.Handler{"mock": up})
	status, _, raw := send(t, e.srv.URL, "POST", "/v1/chat/completions", e.key,
		`{"model":"mock/echo","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 200, status)
	var usage map[string]any
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "data: {"); ok && strings.Contains(rest, `"usage"`) {
			var chunk map[string]any
			require.NoError(t, json.Unmarshal([]byte("{"+rest), &chunk))
			usage = chunk["usage"].(map[string]any)
		}
	}
	require.NotNil(t, usage, "%s", raw)
	require.Equal(t, true, usage["usage_estimated"])
	require.EqualValues(t, (len(reasoning)+len(args)+len("f")+len("ok")+3)/4, usage["completion_tokens"])
}

// TestKeyUsageNeverFlushesOtherRecords: GET /v1/key counts the key's own
// records this replica has not written yet, without flushing anything (it
// once flushed every workspace's records under the writer's lock).
func TestKeyUsageNeverFlushesOtherRecords(t *testing.T) {
	t.Parallel()
	e := setupWith(t, nil, func(o *Options) { o.Records.FlushInterval, o.Records.BatchSize = time.Hour, 1<<20 })
	_, a := e.newKey(`{"name":"a"}`)
	_, b := e.newKey(`{"name":"b"}`)
	status, doc := call(t, e.srv.URL, "POST", "/v1/chat/completions", a, chatBody)
	require.Equal(t, 200, status)
	cost := costOf(t, doc)
	// The record is handed over just after the answer went out.
	require.Eventually(t, func() bool { return e.app.Recorder.Pending() > 0 }, 2*time.Second, 5*time.Millisecond)
	pending := e.app.Recorder.Pending()

	status, doc = call(t, e.srv.URL, "GET", "/v1/key", b, "")
	require.Equal(t, 200, status)
	require.Equal(t, 0.0, data(doc)["usage"])
	require.Equal(t, pending, e.app.Recorder.Pending(), "nothing was flushed")
	status, doc = call(t, e.srv.URL, "GET", "/v1/key", a, "")
	require.Equal(t, 200, status)
	require.True(t, cost.Equal(decimal.RequireFromString(toJSON(t, data(doc)["usage_daily"]))), "pending spend counts: %v", data(doc))

	require.NoError(t, e.app.Recorder.Flush(context.Background()))
	status, doc = call(t, e.srv.URL, "GET", "/v1/key", a, "")
	require.Equal(t, 200, status)
	require.True(t, cost.Equal(decimal.RequireFromString(toJSON(t, data(doc)["usage"]))), "and once written, from the rollups")
}
