package app

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
	"github.com/perpetuo/perpetuo/internal/telemetry"
)

const (
	clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID  = "00f067aa0ba902b7"
)

// traceEnv is a gateway whose spans land in memory and whose metrics can
// be read on demand. flaky always answers 503, so test/duo falls back to
// steady.
func traceEnv(t *testing.T) (*env, *tracetest.InMemoryExporter, *sdkmetric.ManualReader) {
	spans, reader := tracetest.NewInMemoryExporter(), sdkmetric.NewManualReader()
	e := setupWith(t, map[string]http.Handler{
		"flaky": mockupstream.New(mockupstream.Config{FailureRate: 1, FailureStatus: 503}),
	}, func(o *Options) {
		o.Telemetry = telemetry.Config{SpanExporter: spans, MetricReader: reader}
	})
	return e, spans, reader
}

// tracedPost sends a chat request carrying the client's traceparent.
func tracedPost(t *testing.T, e *env, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+clientTraceID+"-"+clientSpanID+"-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(raw)
}

func attrs(kvs []attribute.KeyValue) map[string]attribute.Value {
	m := map[string]attribute.Value{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value
	}
	return m
}

// TestSpansFollowTheRequestAndEachAttempt: the server span is the child of
// the client's traceparent, each upstream attempt (the failed one and the
// fallback that served) is a client span under it, the serving attempt's
// span ends with the stream (it carries the usage the last chunk brought),
// and no attribute holds the prompt or the answer.
func TestSpansFollowTheRequestAndEachAttempt(t *testing.T) {
	t.Parallel()
	for _, stream := range []string{"false", "true"} {
		t.Run("stream="+stream, func(t *testing.T) {
			t.Parallel()
			e, spans, _ := traceEnv(t)
			const marker = "tele-marker-7f3a9c"
			status, hdr, body := tracedPost(t, e, `{"model":"test/duo","strategy":"cheapest","stream":`+stream+
				`,"messages":[{"role":"system","content":"`+marker+` system"},{"role":"user","content":"`+marker+` user"}],"user":"`+marker+`"}`)
			require.Equal(t, 200, status, body)
			require.Contains(t, body, marker, "the mock echoes the prompt, so the answer holds the marker too")
			genID := hdr.Get("X-Generation-Id")
			e.waitGeneration(genID)

			// The server span ends as its handler returns, just after the
			// client has its last byte.
			require.Eventually(t, func() bool { return len(spans.GetSpans()) >= 3 }, 5*time.Second, 5*time.Millisecond)
			var server, failed, served *tracetest.SpanStub
			got := spans.GetSpans()
			for i := range got {
				s := &got[i]
				switch {
				case s.SpanKind == trace.SpanKindServer:
					server = s
				case s.SpanKind == trace.SpanKindClient && attrs(s.Attributes)["perpetuo.provider"].AsString() == "flaky":
					failed = s
				case s.SpanKind == trace.SpanKindClient && attrs(s.Attributes)["perpetuo.provider"].AsString() == "steady":
					served = s
				}
			}
			require.Len(t, got, 3, "one server span and one client span per attempt: %+v", got)
			require.NotNil(t, server)
			require.NotNil(t, failed)
			require.NotNil(t, served)

			require.Equal(t, clientTraceID, server.SpanContext.TraceID().String())
			require.Equal(t, clientSpanID, server.Parent.SpanID().String(), "Perpetuo's span is the caller's child")
			require.True(t, server.Parent.IsRemote())
			require.Equal(t, "POST /v1/chat/completions", server.Name)
			sa := attrs(server.Attributes)
			require.Equal(t, int64(200), sa["http.response.status_code"].AsInt64())
			require.Equal(t, genID, sa["perpetuo.generation.id"].AsString())
			require.Equal(t, "cheapest", sa["perpetuo.routing.strategy"].AsString())

			for _, c := range []*tracetest.SpanStub{failed, served} {
				require.Equal(t, server.SpanContext.SpanID(), c.Parent.SpanID(), "attempts are children of the request")
				require.Equal(t, clientTraceID, c.SpanContext.TraceID().String())
				require.Equal(t, "chat test/duo", c.Name)
				a := attrs(c.Attributes)
				require.Equal(t, "chat", a["gen_ai.operation.name"].AsString())
				require.Equal(t, "test/duo", a["gen_ai.request.model"].AsString())
				require.Equal(t, genID, a["perpetuo.generation.id"].AsString())
				require.Equal(t, "127.0.0.1", a["server.address"].AsString())
			}
			fa := attrs(failed.Attributes)
			require.Equal(t, codes.Error, failed.Status.Code)
			require.Equal(t, "provider_overloaded", fa["error.type"].AsString())
			require.Equal(t, int64(503), fa["perpetuo.upstream.status"].AsInt64())
			require.False(t, fa["perpetuo.fallback"].AsBool())

			ga := attrs(served.Attributes)
			require.Equal(t, codes.Unset, served.Status.Code)
			require.True(t, ga["perpetuo.fallback"].AsBool())
			require.Equal(t, int64(1), ga["perpetuo.attempt"].AsInt64())
			require.Equal(t, "test/duo", ga["gen_ai.response.model"].AsString())
			g := e.generation(genID)
			require.Equal(t, int64(g.TokensPrompt), ga["gen_ai.usage.input_tokens"].AsInt64())
			require.Equal(t, int64(g.TokensCompletion), ga["gen_ai.usage.output_tokens"].AsInt64())
			require.Equal(t, g.TotalCost.String(), ga["perpetuo.cost"].AsString())
			require.Equal(t, []string{"stop"}, ga["gen_ai.response.finish_reasons"].AsStringSlice())
			require.False(t, served.EndTime.After(server.EndTime), "the attempt ends before its request")
			require.True(t, served.EndTime.After(failed.EndTime))

			for _, s := range got {
				require.NotContains(t, s.Name, marker)
				for _, kv := range s.Attributes {
					require.NotContains(t, kv.Value.Emit(), marker, "span %s attribute %s", s.Name, kv.Key)
				}
				for _, ev := range s.Events {
					require.NotContains(t, ev.Name, marker)
					for _, kv := range ev.Attributes {
						require.NotContains(t, kv.Value.Emit(), marker)
					}
				}
			}
		})
	}
}

// TestGenAIMetricsMatchTheRecords: the conventions' histograms count what
// the records hold, and /metrics shows them under their Prometheus names.
func TestGenAIMetricsMatchTheRecords(t *testing.T) {
	t.Parallel()
	e, _, reader := traceEnv(t)
	var prompt, completion int64
	for i, stream := range []string{"false", "true", "false"} {
		status, hdr, body := tracedPost(t, e, `{"model":"mock/echo","stream":`+stream+
			`,"messages":[{"role":"user","content":"hello number `+strings.Repeat("x", i*40)+`"}]}`)
		require.Equal(t, 200, status, body)
		g := e.generation(hdr.Get("X-Generation-Id"))
		prompt += int64(g.TokensPrompt)
		completion += int64(g.TokensCompletion)
	}
	status, _, body := tracedPost(t, e, `{"model":"test/leaky","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 503, status, body)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	found := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			found[m.Name] = m.Data
		}
	}
	tokens, ok := found["gen_ai.client.token.usage"].(metricdata.Histogram[int64])
	require.True(t, ok, "gen_ai.client.token.usage is a histogram: %v", found)
	byType := map[string]int64{}
	for _, dp := range tokens.DataPoints {
		typ, _ := dp.Attributes.Value("gen_ai.token.type")
		prov, _ := dp.Attributes.Value("gen_ai.provider.name")
		model, _ := dp.Attributes.Value("gen_ai.request.model")
		require.Equal(t, "mock", prov.AsString())
		require.Equal(t, "mock/echo", model.AsString())
		byType[typ.AsString()] += dp.Sum
		require.Equal(t, uint64(3), dp.Count)
	}
	require.Equal(t, map[string]int64{"input": prompt, "output": completion}, byType)

	ttft, ok := found["gen_ai.server.time_to_first_token"].(metricdata.Histogram[float64])
	require.True(t, ok)
	require.Len(t, ttft.DataPoints, 1)
	require.Equal(t, uint64(1), ttft.DataPoints[0].Count, "only the stream has a first token")

	dur, ok := found["gen_ai.client.operation.duration"].(metricdata.Histogram[float64])
	require.True(t, ok)
	var failed uint64
	for _, dp := range dur.DataPoints {
		if v, ok := dp.Attributes.Value("error.type"); ok {
			require.Equal(t, "provider_overloaded", v.AsString())
			failed += dp.Count
		}
	}
	require.Equal(t, uint64(1), failed, "the failed generation carries its error type")

	status, _, raw := send(t, e.srv.URL, http.MethodGet, "/metrics", "", "")
	require.Equal(t, 200, status)
	text := string(raw)
	for _, name := range []string{
		`gen_ai_client_token_usage_bucket{gen_ai_operation_name="chat",gen_ai_provider_name="mock",gen_ai_request_model="mock/echo",gen_ai_response_model="mock/echo",gen_ai_token_type="input"`,
		`gen_ai_client_operation_duration_seconds_count`, `gen_ai_server_time_to_first_token_seconds_count`,
		`perpetuo_upstream_attempts_total{gen_ai_provider_name="flaky",perpetuo_attempt_class=`,
		`perpetuo_generations_total{`, `perpetuo_cost_USD_total{`,
	} {
		require.Contains(t, text, name)
	}
}
