package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
	perpetuo "github.com/perpetuo/perpetuo/sdk/go"
)

func duo(text string) openai.ChatCompletionNewParams {
	p := userMessage(text)
	p.Model = "test/duo"
	return p
}

func TestFallbackToNextEndpointOnRetryableFailure(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, stream string
		status       int
		errType      string
	}{
		{"503 non-streaming", "false", 503, "provider_overloaded"},
		{"429 streaming", "true", 429, "rate_limit_exceeded"},
		{"500 streaming", "true", 500, "provider_unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, map[string]http.Handler{
				"flaky": mockupstream.New(mockupstream.Config{FailureRate: 1, FailureStatus: tc.status}),
			})
			status, hdr, body := e.postRaw("/v1/chat/completions",
				`{"model":"test/duo","strategy":"cheapest","stream":`+tc.stream+`,"messages":[{"role":"user","content":"hello"}]}`)
			require.Equal(t, 200, status, "%s", body)
			g := e.generation(hdr.Get("X-Generation-Id"))
			requireFellBackToSteady(t, g, "flaky", tc.status, tc.errType)
			// steady's prices: 5 prompt × 0.000003 + 1 completion × 0.000004
			require.Equal(t, "0.000019", g.TotalCost.String())
		})
	}
}

func TestNoFallbackWhenDisallowed(t *testing.T) {
	t.Parallel()
	e := setup(t, map[string]http.Handler{
		"flaky": mockupstream.New(mockupstream.Config{FailureRate: 1, FailureStatus: 503}),
	})
	status, hdr, doc := e.post("/v1/chat/completions", e.key,
		`{"model":"test/duo","strategy":"cheapest","provider":{"allow_fallbacks":false},"messages":[{"role":"user","content":"hello"}]}`)
	require.Equal(t, 503, status)
	requireEnvelope(t, doc, 503, "provider_overloaded")
	require.Empty(t, hdr.Get("X-Generation-Id"))
}

func TestAllEndpointsFailingReturnsTheLastError(t *testing.T) {
	t.Parallel()
	fail := mockupstream.New(mockupstream.Config{FailureRate: 1, FailureStatus: 429})
	e := setup(t, map[string]http.Handler{"flaky": fail, "steady": fail})
	_, err := e.openai.Chat.Completions.New(context.Background(), duo("hello"))
	var oe *openai.Error
	require.True(t, errors.As(err, &oe), "%v", err)
	require.Equal(t, 429, oe.StatusCode)
	require.Equal(t, "rate_limit_exceeded", oe.Type)
	require.NotEmpty(t, oe.Response.Header.Get("Retry-After"))
}

func TestProviderPreferencesFilterAndOrder(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	cases := []struct {
		name, provider, want string
	}{
		{"cheapest first", `{}`, "flaky"},
		{"order", `{"order":["steady"]}`, "steady"},
		{"only", `{"only":["steady"]}`, "steady"},
		{"ignore", `{"ignore":["flaky"]}`, "steady"},
		{"zdr", `{"zdr":true}`, "steady"},
		{"data_collection deny", `{"data_collection":"deny"}`, "steady"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, body := e.postRaw("/v1/chat/completions",
				`{"model":"test/duo","strategy":"cheapest","provider":`+tc.provider+`,"messages":[{"role":"user","content":"hi"}]}`)
			require.Equal(t, 200, status, "%s", body)
			var doc map[string]any
			require.NoError(t, json.Unmarshal(body, &doc))
			require.Equal(t, tc.want, doc["provider"])
			require.Equal(t, hdr.Get("X-Generation-Id"), doc["id"])
		})
	}
	status, _, doc := e.post("/v1/chat/completions", e.key,
		`{"model":"test/duo","provider":{"zdr":true,"only":["flaky"]},"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 404, status)
	requireEnvelope(t, doc, 404, "no_endpoints")
	status, _, doc = e.post("/v1/chat/completions", e.key,
		`{"model":"test/duo","provider":{"zdr":true,"ignore":["steady"]},"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 404, status)
	er := requireEnvelope(t, doc, 404, "no_endpoints")
	require.ElementsMatch(t, []any{"data_policy:zdr", "provider:ignore"}, er["metadata"].(map[string]any)["excluded_by"])
}

func TestPrivacyRestrictedNamesTheFilter(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	cases := []struct{ name, provider, filter string }{
		{"zdr", `{"zdr":true}`, "data_policy:zdr"},
		{"training", `{"data_collection":"deny"}`, "data_policy:training"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, _, doc := e.post("/v1/chat/completions", e.key,
				`{"model":"test/leaky","provider":`+tc.provider+`,"messages":[{"role":"user","content":"hi"}]}`)
			require.Equal(t, 404, status)
			er := requireEnvelope(t, doc, 404, "privacy_restricted")
			require.Equal(t, []any{tc.filter}, er["metadata"].(map[string]any)["excluded_by"])
		})
	}
}

func TestModelsChainFallsBackToTheNextModel(t *testing.T) {
	t.Parallel()
	fail := mockupstream.New(mockupstream.Config{FailureRate: 1, FailureStatus: 502})
	e := setup(t, map[string]http.Handler{"flaky": fail, "steady": fail})
	status, hdr, body := e.postRaw("/v1/chat/completions",
		`{"models":["test/duo","mock/echo"],"messages":[{"role":"user","content":"still here"}]}`)
	require.Equal(t, 200, status, "%s", body)
	g := e.generation(hdr.Get("X-Generation-Id"))
	require.Equal(t, "test/duo", g.RequestedModel)
	require.Equal(t, "mock/echo", g.Model)
	require.Len(t, g.Attempts, 3)
	// The decision planned both models, test/duo's endpoints first.
	var planned []string
	for _, c := range g.Routing.Candidates {
		if c.Rank != nil {
			planned = append(planned, c.Model)
		}
	}
	require.ElementsMatch(t, []string{"test/duo", "test/duo", "mock/echo"}, planned)
	for _, c := range g.Routing.Candidates {
		if c.Model == "mock/echo" {
			require.Equal(t, 3, *c.Rank, "the next model comes after every endpoint of the first")
		}
	}
}

func TestMidStreamFailureIsReportedInBand(t *testing.T) {
	t.Parallel()
	e := setup(t, map[string]http.Handler{"mock": mockupstream.New(mockupstream.Config{MidStreamFailAfter: 2})})
	stream := e.openai.Chat.Completions.NewStreaming(context.Background(), userMessage("one two three four five"))
	defer stream.Close()
	var id, content string
	for stream.Next() {
		c := stream.Current()
		id = c.ID
		if len(c.Choices) > 0 {
			content += c.Choices[0].Delta.Content
		}
	}
	require.Error(t, stream.Err(), "a cut stream must never look like a finished one")
	require.Contains(t, stream.Err().Error(), "provider_unavailable")
	require.Equal(t, "one two ", content)

	g := e.generation(id)
	require.Equal(t, 200, g.Status, "the stream had started")
	require.Equal(t, "provider_unavailable", string(*g.ErrorType))
	require.Equal(t, "error", *g.FinishReason)
	require.Positive(t, g.TokensCompletion, "what was produced is billed")
}

func TestClientHangUpCancelsUpstreamAndBillsWhatWasProduced(t *testing.T) {
	t.Parallel()
	e := setup(t, map[string]http.Handler{"mock": mockupstream.New(mockupstream.Config{TokensPerSecond: 20})})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream := e.openai.Chat.Completions.NewStreaming(ctx, userMessage("a b c d e f g h i j k l m n o p q r s t u v w x y z"))
	defer stream.Close()
	var id string
	for stream.Next() {
		c := stream.Current()
		id = c.ID
		if len(c.Choices) > 0 && c.Choices[0].Delta.Content == "c " {
			cancel()
		}
	}
	start := time.Now()
	g := e.waitGeneration(id)
	require.Less(t, time.Since(start), 2*time.Second, "the gateway must notice the hang-up promptly")
	require.True(t, g.Cancelled)
	require.Positive(t, g.CompletionTokens)
	require.Less(t, g.CompletionTokens, 26, "billed only for what was produced")
	require.True(t, g.Cost.IsPositive())
}

func TestCloseFlushesPendingRecords(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	resp, err := e.openai.Chat.Completions.New(context.Background(), userMessage("flush me"))
	require.NoError(t, err)
	require.NoError(t, e.app.Close(context.Background()))
	var n int
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*) FROM generations WHERE id = $1`, resp.ID).Scan(&n))
	require.Equal(t, 1, n)
}

// TestSilentUpstreamsTimeOut: an upstream that says nothing is cut after the
// idle limit: before the first chunk it falls back like any retryable
// failure; after it, the client gets an in-band timeout error.
func TestSilentUpstreamsTimeOut(t *testing.T) {
	t.Parallel()
	hung := mockupstream.New(mockupstream.Config{Latency: 5 * time.Second, TTFT: 5 * time.Second})
	stall := mockupstream.New(mockupstream.Config{TokensPerSecond: 1})
	e := setupWith(t, map[string]http.Handler{"flaky": hung, "mock": stall}, func(o *Options) {
		o.StreamIdle, o.AttemptTimeout = 300*time.Millisecond, 300*time.Millisecond
	})
	for _, stream := range []string{"false", "true"} {
		start := time.Now()
		status, hdr, body := e.postRaw("/v1/chat/completions",
			`{"model":"test/duo","provider":{"order":["flaky"]},"stream":`+stream+`,"messages":[{"role":"user","content":"hi"}]}`)
		require.Equal(t, 200, status, "%s", body)
		require.Less(t, time.Since(start), 3*time.Second)
		g := e.generation(hdr.Get("X-Generation-Id"))
		require.Equal(t, "steady", *g.ProviderName)
		require.Equal(t, "timeout", string(*g.Attempts[0].ErrorType), "stream=%s", stream)
	}

	stream := e.openai.Chat.Completions.NewStreaming(context.Background(), userMessage("one two three four"))
	defer stream.Close()
	var id string
	for stream.Next() {
		id = stream.Current().ID
	}
	require.Error(t, stream.Err())
	require.Contains(t, stream.Err().Error(), "timeout")
	g := e.generation(id)
	require.Equal(t, "timeout", string(*g.ErrorType))
	require.Equal(t, "error", *g.FinishReason)
}

// TestAMalformedFirstChunkFallsBack: a first chunk that is not valid JSON,
// however it begins, is refused while the request can still fall back (the
// whole chunk is validated before anything reaches the client), and the
// next endpoint serves.
func TestAMalformedFirstChunkFallsBack(t *testing.T) {
	t.Parallel()
	for name, first := range map[string]string{
		"not an object": `<html>oops</html>`,
		"cut short":     `{"id":"x","model":"m","choices":[{"delta":{"content":"x"`,
		"trailing text": `{"id":"x","model":"m","choices":[]} and more`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bad := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = w.Write([]byte("data: " + first + "\n\ndata: [DONE]\n\n"))
			})
			e := setup(t, map[string]http.Handler{"flaky": bad})
			status, hdr, body := e.postRaw("/v1/chat/completions",
				`{"model":"test/duo","strategy":"cheapest","stream":true,"messages":[{"role":"user","content":"hello"}]}`)
			require.Equal(t, 200, status, "%s", body)
			require.NotContains(t, string(body), "oops")
			requireFellBackToSteady(t, e.generation(hdr.Get("X-Generation-Id")), "flaky", 200, "provider_error")
		})
	}
}

// requireFellBackToSteady: g was served by steady on its second attempt,
// after failed's first one failed with status and errType.
func requireFellBackToSteady(t *testing.T, g perpetuo.Generation, failed string, status int, errType string) {
	t.Helper()
	require.Equal(t, "steady", *g.ProviderName, "the first endpoint failed, steady served")
	require.Len(t, g.Attempts, 2)
	require.Equal(t, failed, g.Attempts[0].Provider)
	require.Equal(t, status, g.Attempts[0].Status)
	require.Equal(t, errType, string(*g.Attempts[0].ErrorType))
	require.Equal(t, "steady", g.Attempts[1].Provider)
	require.Equal(t, 200, g.Attempts[1].Status)
}
