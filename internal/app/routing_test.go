package app

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
	"github.com/perpetuo/perpetuo/internal/routing"
)

// switchable serves whatever handler was set last.
type switchable struct{ h atomic.Pointer[http.Handler] }

func newSwitchable(h http.Handler) *switchable {
	s := &switchable{}
	s.set(h)
	return s
}

func (s *switchable) set(h http.Handler) { s.h.Store(&h) }

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*s.h.Load()).ServeHTTP(w, r) }

// trio sends a chat request for test/trio and returns who served it and
// the providers attempted, in order.
func trio(t *testing.T, e *env, extra string) (string, []string) {
	t.Helper()
	status, hdr, body := e.postRaw("/v1/chat/completions",
		`{"model":"test/trio",`+extra+`"messages":[{"role":"user","content":"hi there"}]}`)
	require.Equal(t, 200, status, "%s", body)
	g := e.generation(hdr.Get("X-Generation-Id"))
	var tried []string
	for _, a := range g.Attempts {
		tried = append(tried, a.Provider)
	}
	return *g.ProviderName, tried
}

// TestCheapestPicksTheCheapest: three upstreams behind test/trio, a the
// cheapest.
func TestCheapestPicksTheCheapest(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	for range 5 {
		served, tried := trio(t, e, `"strategy":"cheapest",`)
		require.Equal(t, "tri-a", served)
		require.Equal(t, []string{"tri-a"}, tried)
	}
	served, _ := trio(t, e, `"provider":{"sort":"price","order":["tri-c"]},`)
	require.Equal(t, "tri-c", served, "provider.order comes first")
}

// TestFastestLearnsTheFastest: before traffic, fastest trusts the catalog
// (it says a is quickest); once every endpoint has answered a few
// streams, it picks b, which really is.
func TestFastestLearnsTheFastest(t *testing.T) {
	t.Parallel()
	h := routing.NewTracker()
	e := setupWith(t, map[string]http.Handler{
		"tri-a": mockupstream.New(mockupstream.Config{TTFT: 250 * time.Millisecond}),
		"tri-b": mockupstream.New(mockupstream.Config{}),
		"tri-c": mockupstream.New(mockupstream.Config{TTFT: 120 * time.Millisecond}),
	}, func(o *Options) { o.Health = h })
	served, _ := trio(t, e, `"strategy":"fastest",`)
	require.Equal(t, "tri-a", served, "the catalog's defaults before any traffic")
	for _, p := range []string{"tri-a", "tri-b", "tri-c"} { // warm-up: each endpoint streams twice
		for range 2 {
			served, _ := trio(t, e, `"stream":true,"provider":{"only":["`+p+`"]},`)
			require.Equal(t, p, served)
		}
	}
	for _, p := range []string{"tri-a", "tri-b", "tri-c"} {
		require.True(t, h.Stats(p, "test/trio").Known, p)
	}
	for range 3 {
		served, tried := trio(t, e, `"strategy":"fastest","stream":true,`)
		require.Equal(t, "tri-b", served)
		require.Equal(t, []string{"tri-b"}, tried)
	}
	served, _ = trio(t, e, `"provider":{"sort":"latency"},`)
	require.Equal(t, "tri-b", served, "sort latency reads the same health")
}

// TestBreakerSkipsAFailingEndpointThenProbesIt: a fails; after 5 failures
// in a row its circuit opens and requests stop trying it; after the
// cool-down one request probes it, and once it answers it serves again.
func TestBreakerSkipsAFailingEndpointThenProbesIt(t *testing.T) {
	t.Parallel()
	a := newSwitchable(mockupstream.New(mockupstream.Config{FailureRate: 1, FailureStatus: 503}))
	h := routing.NewTracker()
	h.Cooldown, h.RecentFailure = 400*time.Millisecond, 0 // only the breaker moves it
	e := setupWith(t, map[string]http.Handler{"tri-a": a}, func(o *Options) { o.Health = h })
	for range 5 {
		served, tried := trio(t, e, `"strategy":"cheapest",`)
		require.Equal(t, "tri-b", served)
		require.Equal(t, []string{"tri-a", "tri-b"}, tried, "a fails, b serves")
	}
	for range 3 {
		served, tried := trio(t, e, `"strategy":"cheapest",`)
		require.Equal(t, "tri-b", served)
		require.Equal(t, []string{"tri-b"}, tried, "the open circuit keeps a out of the plan")
	}
	// The decision log says why a was not tried.
	status, hdr, body := e.postRaw("/v1/chat/completions", `{"model":"test/trio","strategy":"cheapest","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 200, status, "%s", body)
	for _, c := range e.generation(hdr.Get("X-Generation-Id")).Routing.Candidates {
		if c.Provider == "tri-a" {
			require.Equal(t, "circuit_open", *c.ExcludedBy)
		} else {
			require.NotNil(t, c.Rank, c.Provider)
		}
	}
	status, _, doc := e.post("/v1/chat/completions", e.key,
		`{"model":"test/trio","provider":{"only":["tri-a"]},"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 404, status)
	er := requireEnvelope(t, doc, 404, "no_endpoints")
	md := er["metadata"].(map[string]any)
	require.ElementsMatch(t, []any{"provider:only", "circuit_open"}, md["excluded_by"])
	require.Equal(t, map[string]any{"provider:only": 2.0, "circuit_open": 1.0}, md["excluded_counts"])
	require.Contains(t, er["message"], "retry shortly")

	a.set(mockupstream.New(mockupstream.Config{}))
	time.Sleep(450 * time.Millisecond)
	served, tried := trio(t, e, `"strategy":"cheapest",`)
	require.Equal(t, "tri-a", served, "the probe after the cool-down")
	require.Equal(t, []string{"tri-a"}, tried)
	served, _ = trio(t, e, `"strategy":"cheapest",`)
	require.Equal(t, "tri-a", served, "closed again")
}

// TestSessionStaysOnItsEndpoint: requests of one session_id keep the
// endpoint that first served them, whatever the balanced draw says.
func TestSessionStaysOnItsEndpoint(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	first, _ := trio(t, e, `"session_id":"conv-1","provider":{"order":["tri-c"]},`)
	require.Equal(t, "tri-c", first)
	for range 10 {
		served, _ := trio(t, e, `"session_id":"conv-1",`)
		require.Equal(t, "tri-c", served)
	}
}

// TestMaxPriceAcceptsExactDecimals: numbers and numeric strings, compared
// exactly per million tokens.
func TestMaxPriceAcceptsExactDecimals(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	served, _ := trio(t, e, `"strategy":"cheapest","provider":{"max_price":{"prompt":"4","completion":3.9999999999},"ignore":["tri-a"]},`)
	require.Equal(t, "tri-b", served)
	status, _, doc := e.post("/v1/chat/completions", e.key,
		`{"model":"test/trio","provider":{"max_price":{"prompt":"0.9999999999"}},"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 404, status)
	er := requireEnvelope(t, doc, 404, "no_endpoints")
	require.Equal(t, []any{"max_price"}, er["metadata"].(map[string]any)["excluded_by"])
	require.Contains(t, er["message"], "Raise provider.max_price")
	status, _, doc = e.post("/v1/chat/completions", e.key,
		`{"model":"test/trio","provider":{"max_price":{"prompt":"1e3"}},"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 400, status)
	require.Equal(t, "/provider/max_price/prompt", requireEnvelope(t, doc, 400, "invalid_request")["metadata"].(map[string]any)["field"])
}

// TestDecisionLogTellsTheStory: the generation record holds the routing
// decision (every candidate with its score or exclusion, and the order)
// and classifies every attempt.
func TestDecisionLogTellsTheStory(t *testing.T) {
	t.Parallel()
	e := setup(t, map[string]http.Handler{
		"tri-a": mockupstream.New(mockupstream.Config{FailureRate: 1, FailureStatus: 503}),
	})
	status, hdr, body := e.postRaw("/v1/chat/completions",
		`{"model":"test/trio","strategy":"cheapest","provider":{"ignore":["tri-c"]},"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 200, status, "%s", body)
	g := e.generation(hdr.Get("X-Generation-Id"))
	require.NotNil(t, g.Routing)
	d := *g.Routing
	require.Equal(t, "cheapest", string(d.Strategy))
	require.Equal(t, "expected_cost_usd", d.Key)
	got := map[string]string{}
	for _, c := range d.Candidates {
		switch {
		case c.ExcludedBy != nil:
			got[c.Provider] = "excluded:" + *c.ExcludedBy
		case c.Rank != nil:
			got[c.Provider] = "rank:" + string(rune('0'+*c.Rank))
		}
	}
	require.Equal(t, map[string]string{"tri-a": "rank:1", "tri-b": "rank:2", "tri-c": "excluded:provider:ignore"}, got)
	require.Len(t, g.Attempts, 2)
	require.Equal(t, "refused", string(*g.Attempts[0].Class), "a 503 answer: nothing generated")
	require.Equal(t, "served", string(*g.Attempts[1].Class))

	// An unreachable endpoint: the request never left.
	e.upstream["tri-b"].Close()
	status, hdr, body = e.postRaw("/v1/chat/completions",
		`{"model":"test/trio","provider":{"order":["tri-b","tri-c"]},"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 200, status, "%s", body)
	g = e.generation(hdr.Get("X-Generation-Id"))
	require.Equal(t, "tri-b", g.Attempts[0].Provider)
	require.Equal(t, "not_sent", string(*g.Attempts[0].Class))
	require.Equal(t, []string{"tri-b", "tri-c"}, *g.Routing.Order)
}

// TestUncertainAttempts: an upstream that takes the request and then goes
// silent may bill it: the attempt says so.
func TestUncertainAttempts(t *testing.T) {
	t.Parallel()
	e := setupWith(t, map[string]http.Handler{
		"tri-a": mockupstream.New(mockupstream.Config{Latency: 5 * time.Second}),
	}, func(o *Options) { o.AttemptTimeout = 200 * time.Millisecond })
	_, tried := trio(t, e, `"strategy":"cheapest",`)
	require.Equal(t, []string{"tri-a", "tri-b"}, tried)
	status, hdr, _ := e.postRaw("/v1/chat/completions",
		`{"model":"test/trio","strategy":"cheapest","provider":{"order":["tri-a"]},"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 200, status)
	g := e.generation(hdr.Get("X-Generation-Id"))
	require.Equal(t, "uncertain", string(*g.Attempts[0].Class))
	require.Equal(t, "timeout", string(*g.Attempts[0].ErrorType))
}

// TestModelEndpointsReportHealth: GET /v1/models/{author}/{slug}/endpoints
// lists every endpoint in OpenRouter's shape with what this replica saw.
func TestModelEndpointsReportHealth(t *testing.T) {
	t.Parallel()
	h := routing.NewTracker()
	h.RecentFailure = 0
	e := setupWith(t, map[string]http.Handler{
		"tri-a": mockupstream.New(mockupstream.Config{FailureRate: 1, FailureStatus: 503}),
	}, func(o *Options) { o.Health = h })
	for range 2 {
		trio(t, e, `"strategy":"cheapest","stream":true,`) // a fails, b serves
	}
	for _, path := range []string{"/v1/models/test/trio/endpoints", "/api/v1/models/test/trio/endpoints"} {
		status, doc := call(t, e.srv.URL, "GET", path, e.key, "")
		require.Equal(t, http.StatusOK, status, "%v", doc)
		d := data(doc)
		require.Equal(t, "test/trio", d["id"])
		byTag := map[string]map[string]any{}
		for _, ep := range d["endpoints"].([]any) {
			m := ep.(map[string]any)
			byTag[m["tag"].(string)] = m
			require.Equal(t, true, m["routable"])
		}
		require.Len(t, byTag, 3)
		require.Equal(t, 0.0, byTag["tri-a"]["uptime_last_5m"])
		require.Equal(t, 100.0, byTag["tri-b"]["uptime_last_30m"])
		require.Nil(t, byTag["tri-c"]["uptime_last_1d"], "never tried")
		require.NotNil(t, byTag["tri-b"]["latency_last_30m"], "streams measured time to first token")
		require.Equal(t, "0.000001", byTag["tri-a"]["pricing"].(map[string]any)["prompt"])
	}
	status, doc := call(t, e.srv.URL, "GET", "/v1/models/nobody/nothing/endpoints", e.key, "")
	require.Equal(t, http.StatusNotFound, status)
	requireEnvelope(t, doc, 404, "not_found")

	status, doc = call(t, e.srv.URL, "GET", "/v1/providers", e.key, "")
	require.Equal(t, http.StatusOK, status)
	zdr := map[string]any{}
	for _, p := range doc["data"].([]any) {
		m := p.(map[string]any)
		zdr[m["slug"].(string)] = m["zdr"]
	}
	require.Equal(t, false, zdr["flaky"])
	require.Equal(t, true, zdr["steady"])
}

// TestFirstByteTimeoutFallsBack: a stream whose first chunk is late moves
// on to the next endpoint after the first-byte timeout, while a stream
// that started is only held to the (longer) idle limit between chunks.
func TestFirstByteTimeoutFallsBack(t *testing.T) {
	t.Parallel()
	e := setupWith(t, map[string]http.Handler{
		"tri-a": mockupstream.New(mockupstream.Config{TTFT: 2 * time.Second}),
		"tri-b": mockupstream.New(mockupstream.Config{TokensPerSecond: 4}), // 250 ms between chunks
	}, func(o *Options) { o.FirstByteTimeout, o.StreamIdle = 300*time.Millisecond, 2*time.Second })
	start := time.Now()
	served, tried := trio(t, e, `"strategy":"cheapest","stream":true,`)
	require.Equal(t, "tri-b", served)
	require.Equal(t, []string{"tri-a", "tri-b"}, tried)
	require.Less(t, time.Since(start), 1500*time.Millisecond, "a's late first byte was not waited for")
}

// TestRequireParameters: with require_parameters, endpoints that do not
// list a parameter the request sets are left out (test/trio's list none).
func TestRequireParameters(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	tools := `"tools":[{"type":"function","function":{"name":"f","parameters":{}}}],`
	served, _ := trio(t, e, tools)
	require.NotEmpty(t, served, "not required: the parameter does not filter")
	served, _ = trio(t, e, `"provider":{"require_parameters":true},`)
	require.NotEmpty(t, served, "required, but the request sets none of the checked parameters")
	status, _, doc := e.post("/v1/chat/completions", e.key,
		`{"model":"test/trio",`+tools+`"provider":{"require_parameters":true},"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 404, status)
	er := requireEnvelope(t, doc, 404, "no_endpoints")
	require.Equal(t, []any{"require_parameters"}, er["metadata"].(map[string]any)["excluded_by"])
}
