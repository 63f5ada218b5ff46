package telemetry

import (
	"compress/gzip"
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	colltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/google/go-cmp/cmp"
)

// receiver is an OTLP/HTTP endpoint on loopback that keeps the bodies it
// is sent (decompressed) and the headers of the last one.
type receiver struct {
	mu     sync.Mutex
	bodies [][]byte
	header http.Header
	status []int // answered in turn; then 200
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, "bad gzip", http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, _ := io.ReadAll(body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.header = r.Header.Clone()
	if len(rc.status) > 0 {
		st := rc.status[0]
		rc.status = rc.status[1:]
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(st)
		return
	}
	rc.bodies = append(rc.bodies, b)
	w.Header().Set("Content-Type", "application/x-protobuf")
}

func (rc *receiver) last(t *testing.T) []byte {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	require.NotEmpty(t, rc.bodies, "nothing was exported")
	return rc.bodies[len(rc.bodies)-1]
}

func newReceiver(t *testing.T) (*receiver, string) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv.URL
}

// testSpans covers every field the span encoder writes: each attribute
// type, events, links, a remote parent, trace state, status, dropped
// counts, two scopes under one resource.
func testSpans(t *testing.T) []sdktrace.ReadOnlySpan {
	res := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0",
		attribute.String("service.name", "perpetuo"), attribute.Int64("pid", 42))
	ts, err := trace.ParseTraceState("vendor=a,other=b")
	require.NoError(t, err)
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled, Remote: true})
	start := time.Date(2026, 12, 7, 9, 0, 0, 123, time.UTC)
	attrs := []attribute.KeyValue{
		attribute.Bool("b", true), attribute.Bool("f", false), attribute.Int64("i", -7), attribute.Int64("zero", 0),
		attribute.Float64("x", 2.5), attribute.Float64("fz", 0), attribute.String("s", "héllo"), attribute.String("empty", ""),
		attribute.BoolSlice("bs", []bool{true, false}), attribute.Int64Slice("is", []int64{1, 0, -1}),
		attribute.Float64Slice("fs", []float64{0.5, 0}), attribute.StringSlice("ss", []string{"a", ""}),
	}
	stubs := tracetest.SpanStubs{
		{
			Name: "POST /v1/chat/completions", SpanKind: trace.SpanKindServer, Resource: res,
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{9, 9, 9, 9, 9, 9, 9, 9},
				TraceFlags: trace.FlagsSampled, TraceState: ts}),
			Parent: parent, StartTime: start, EndTime: start.Add(1500 * time.Millisecond), Attributes: attrs,
			Events: []sdktrace.Event{{Name: "first token", Time: start.Add(time.Millisecond),
				Attributes: []attribute.KeyValue{attribute.Int("n", 1)}, DroppedAttributeCount: 2}},
			Links:             []sdktrace.Link{{SpanContext: parent, Attributes: []attribute.KeyValue{attribute.String("why", "retry")}, DroppedAttributeCount: 1}},
			Status:            sdktrace.Status{Code: codes.Error, Description: "upstream 503"},
			DroppedAttributes: 3, DroppedEvents: 4, DroppedLinks: 5, ChildSpanCount: 1,
			InstrumentationScope: instrumentation.Scope{Name: "perpetuo/server", Version: "1", SchemaURL: "https://x/1",
				Attributes: attribute.NewSet(attribute.String("scope.attr", "v"))},
		},
		{
			Name: "chat openai", SpanKind: trace.SpanKindClient, Resource: res,
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{8, 8, 8, 8, 8, 8, 8, 8}}),
			Parent:      trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{9, 9, 9, 9, 9, 9, 9, 9}}),
			StartTime:   start, EndTime: start.Add(time.Second), Status: sdktrace.Status{Code: codes.Ok},
			InstrumentationScope: instrumentation.Scope{Name: "perpetuo/gateway"},
		},
		{
			Name: "root, no scope", SpanKind: trace.SpanKindInternal, Resource: res,
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{7, 7, 7, 7, 7, 7, 7, 7}}),
			StartTime:   start, EndTime: start,
		},
	}
	return stubs.Snapshots()
}

// TestSpansEncodeAsTheUpstreamExporter sends the same spans through the
// upstream otlptracehttp exporter and through Perpetuo's, and compares the
// decoded requests field by field.
func TestSpansEncodeAsTheUpstreamExporter(t *testing.T) {
	ctx := context.Background()
	spans := testSpans(t)
	upRecv, upURL := newReceiver(t)
	up, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(upURL+"/v1/traces"))
	require.NoError(t, err)
	require.NoError(t, up.ExportSpans(ctx, spans))
	require.NoError(t, up.Shutdown(ctx))

	ourRecv, ourURL := newReceiver(t)
	e, err := otlpFromEnv(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ourURL}, "traces")
	require.NoError(t, err)
	ours := &spanExporter{newOTLPClient(e)}
	require.NoError(t, ours.ExportSpans(ctx, spans))
	require.Equal(t, "application/x-protobuf", ourRecv.header.Get("Content-Type"))

	var want, got colltrace.ExportTraceServiceRequest
	require.NoError(t, proto.Unmarshal(upRecv.last(t), &want))
	require.NoError(t, proto.Unmarshal(ourRecv.last(t), &got))
	require.Len(t, got.ResourceSpans, 1)
	require.Len(t, got.ResourceSpans[0].ScopeSpans, 3)
	require.Empty(t, cmp.Diff(&want, &got, protocmp.Transform()))

	require.NoError(t, ours.Shutdown(ctx))
	require.Empty(t, ours.c.conns, "shutdown closes every connection")
	require.ErrorIs(t, ours.ExportSpans(ctx, spans), errOTLPStopped)
}

// testMetrics has one metric of each aggregation the SDK makes.
func testMetrics() *metricdata.ResourceMetrics {
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	set := attribute.NewSet(attribute.String("provider", "openai"), attribute.Bool("byok", false))
	ex := []metricdata.Exemplar[float64]{{FilteredAttributes: []attribute.KeyValue{attribute.String("k", "v")}, Time: t1,
		Value: 0.25, SpanID: []byte{1, 2, 3, 4, 5, 6, 7, 8}, TraceID: make([]byte, 16)}}
	exi := []metricdata.Exemplar[int64]{{Time: t1, Value: 0}}
	return &metricdata.ResourceMetrics{
		Resource: resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0", attribute.String("service.name", "perpetuo")),
		ScopeMetrics: []metricdata.ScopeMetrics{{
			Scope: instrumentation.Scope{Name: "perpetuo/gateway", Version: "v1", SchemaURL: "https://x/1"},
			Metrics: []metricdata.Metrics{
				{Name: "perpetuo.generations", Description: "Generations", Unit: "{generation}", Data: metricdata.Sum[int64]{
					Temporality: metricdata.CumulativeTemporality, IsMonotonic: true,
					DataPoints: []metricdata.DataPoint[int64]{{Attributes: set, StartTime: t0, Time: t1, Value: 12, Exemplars: exi}, {StartTime: t0, Time: t1, Value: 0}}}},
				{Name: "perpetuo.cost", Unit: "USD", Data: metricdata.Sum[float64]{Temporality: metricdata.DeltaTemporality,
					DataPoints: []metricdata.DataPoint[float64]{{Attributes: set, StartTime: t0, Time: t1, Value: 0.5, Exemplars: ex}, {Time: t1}}}},
				{Name: "g.int", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{{Time: t1, Value: -3}}}},
				{Name: "g.float", Data: metricdata.Gauge[float64]{DataPoints: []metricdata.DataPoint[float64]{{Time: t1, Value: 1.5}}}},
				{Name: "gen_ai.client.operation.duration", Unit: "s", Data: metricdata.Histogram[float64]{Temporality: metricdata.CumulativeTemporality,
					DataPoints: []metricdata.HistogramDataPoint[float64]{
						{Attributes: set, StartTime: t0, Time: t1, Count: 3, Bounds: []float64{0, 0.5, 1}, BucketCounts: []uint64{0, 1, 2, 0},
							Min: metricdata.NewExtrema(0.25), Max: metricdata.NewExtrema(0.75), Sum: 1.5, Exemplars: ex},
						{StartTime: t0, Time: t1}}}},
				{Name: "gen_ai.client.token.usage", Data: metricdata.Histogram[int64]{Temporality: metricdata.DeltaTemporality,
					DataPoints: []metricdata.HistogramDataPoint[int64]{{Time: t1, Count: 1, Bounds: []float64{10}, BucketCounts: []uint64{0, 1},
						Min: metricdata.NewExtrema[int64](0), Max: metricdata.NewExtrema[int64](20), Sum: 20}}}},
				{Name: "exp", Data: metricdata.ExponentialHistogram[float64]{Temporality: metricdata.CumulativeTemporality,
					DataPoints: []metricdata.ExponentialHistogramDataPoint[float64]{{Attributes: set, StartTime: t0, Time: t1, Count: 5, Sum: 3,
						Scale: -2, ZeroCount: 1, ZeroThreshold: 0.001, Min: metricdata.NewExtrema(0.0), Max: metricdata.NewExtrema(2.0),
						PositiveBucket: metricdata.ExponentialBucket{Offset: -3, Counts: []uint64{1, 0, 3}},
						NegativeBucket: metricdata.ExponentialBucket{}, Exemplars: ex}}}},
				{Name: "exp.int", Data: metricdata.ExponentialHistogram[int64]{Temporality: metricdata.DeltaTemporality,
					DataPoints: []metricdata.ExponentialHistogramDataPoint[int64]{{Time: t1, Scale: 3, PositiveBucket: metricdata.ExponentialBucket{Offset: 2, Counts: []uint64{300}}}}}},
				{Name: "summary", Data: metricdata.Summary{DataPoints: []metricdata.SummaryDataPoint{{Attributes: set, StartTime: t0, Time: t1,
					Count: 2, Sum: 4, QuantileValues: []metricdata.QuantileValue{{Quantile: 0, Value: 1}, {Quantile: 1, Value: 3}}}}}},
			},
		}, {Scope: instrumentation.Scope{Name: "empty scope"}}},
	}
}

// TestMetricsEncodeAsTheUpstreamExporter does the same for metrics.
func TestMetricsEncodeAsTheUpstreamExporter(t *testing.T) {
	ctx := context.Background()
	upRecv, upURL := newReceiver(t)
	up, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(upURL+"/v1/metrics"))
	require.NoError(t, err)
	require.NoError(t, up.Export(ctx, testMetrics()))
	require.NoError(t, up.Shutdown(ctx))

	ourRecv, ourURL := newReceiver(t)
	e, err := otlpFromEnv(map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": ourURL + "/custom/path"}, "metrics")
	require.NoError(t, err)
	require.Equal(t, ourURL+"/custom/path", e.url, "a per-signal endpoint is used as it is")
	ours := newMetricExporter(e)
	require.NoError(t, ours.Export(ctx, testMetrics()))

	var want, got collmetrics.ExportMetricsServiceRequest
	require.NoError(t, proto.Unmarshal(upRecv.last(t), &want))
	require.NoError(t, proto.Unmarshal(ourRecv.last(t), &got))
	require.Len(t, got.ResourceMetrics[0].ScopeMetrics[0].Metrics, 9)
	require.Empty(t, cmp.Diff(&want, &got, protocmp.Transform()))
}

// TestOTLPExportSettings: headers, gzip and retries of what the
// specification calls retryable, and no retry of the rest.
func TestOTLPExportSettings(t *testing.T) {
	ctx := context.Background()
	rc, url := newReceiver(t)
	e, err := otlpFromEnv(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": url + "/",
		"OTEL_EXPORTER_OTLP_HEADERS": "api-key=abc%20def, x-tenant = t1", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-only=traces",
		"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip", "OTEL_EXPORTER_OTLP_TIMEOUT": "2500"}, "traces")
	require.NoError(t, err)
	require.Equal(t, url+"/v1/traces", e.url)
	require.Equal(t, map[string]string{"x-only": "traces"}, e.headers, "the per-signal variable wins")
	require.Equal(t, 2500*time.Millisecond, e.timeout)

	e, err = otlpFromEnv(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": url,
		"OTEL_EXPORTER_OTLP_HEADERS": "api-key=abc%20def, x-tenant = t1", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}, "metrics")
	require.NoError(t, err)
	rc.status = []int{http.StatusServiceUnavailable, http.StatusTooManyRequests}
	exp := newMetricExporter(e)
	require.NoError(t, exp.Export(ctx, testMetrics()), "503 and 429 are retried")
	require.Len(t, rc.bodies, 1)
	require.Equal(t, "abc def", rc.header.Get("api-key"))
	require.Equal(t, "t1", rc.header.Get("x-tenant"))
	require.Equal(t, "gzip", rc.header.Get("Content-Encoding"))
	var got collmetrics.ExportMetricsServiceRequest
	require.NoError(t, proto.Unmarshal(rc.last(t), &got), "the gzipped body decodes")

	rc.status = []int{http.StatusBadRequest, http.StatusServiceUnavailable}
	err = exp.Export(ctx, testMetrics())
	require.ErrorContains(t, err, "HTTP 400")
	require.Len(t, rc.bodies, 1, "a 400 is not retried")

	for env, msg := range map[string]string{
		"OTEL_EXPORTER_OTLP_HEADERS=novalue":                    "OTEL_EXPORTER_OTLP_HEADERS: entry 1 is not key=value",
		"OTEL_EXPORTER_OTLP_TIMEOUT=-1":                         "OTEL_EXPORTER_OTLP_TIMEOUT must be a positive number of milliseconds",
		"OTEL_EXPORTER_OTLP_COMPRESSION=zstd":                   "OTEL_EXPORTER_OTLP_COMPRESSION must be gzip or none",
		"OTEL_EXPORTER_OTLP_CERTIFICATE=/nonexistent/ca.pem":    "OTEL_EXPORTER_OTLP_CERTIFICATE: cannot read the file",
		"OTEL_EXPORTER_OTLP_CLIENT_KEY=/nonexistent/key.pem":    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY go together",
		"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=odd": "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE must be cumulative, delta or lowmemory",
		"OTEL_EXPORTER_OTLP_ENDPOINT=collector:4318":            "OTEL_EXPORTER_OTLP_ENDPOINT must be an http or https URL",
	} {
		k, v, _ := strings.Cut(env, "=")
		vars := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": url, k: v}
		_, err := FromEnv(vars)
		require.EqualError(t, err, msg, env)
	}
}

// TestOTLPRetriesStopAtTheContext: a collector that keeps answering 503
// holds an export no longer than its context.
func TestOTLPRetriesStopAtTheContext(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	e, err := otlpFromEnv(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}, "traces")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = newOTLPClient(e).post(ctx, []byte{1})
	require.ErrorContains(t, err, "HTTP 503")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 5*time.Second)
	require.EqualValues(t, 1, calls.Load(), "the first retry waits a second")
}

// TestOTLPTrustsTheNamedCA: an https collector whose certificate only
// OTEL_EXPORTER_OTLP_CERTIFICATE vouches for is reached; without it the
// export fails on the certificate.
func TestOTLPTrustsTheNamedCA(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewTLSServer(rc)
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))

	plain, err := otlpFromEnv(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}, "traces")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	require.ErrorContains(t, newOTLPClient(plain).post(ctx, []byte{1}), "certificate")

	trusted, err := otlpFromEnv(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": ca}, "traces")
	require.NoError(t, err)
	c := newOTLPClient(trusted)
	require.NoError(t, c.post(context.Background(), []byte{1}))
	require.Equal(t, []byte{1}, rc.last(t))
	c.shutdown()
}

// TestOTLPTemporalityPreference: delta and lowmemory change what the
// counters and histograms report; up-down counters stay cumulative.
func TestOTLPTemporalityPreference(t *testing.T) {
	kinds := []sdkmetric.InstrumentKind{sdkmetric.InstrumentKindCounter, sdkmetric.InstrumentKindHistogram,
		sdkmetric.InstrumentKindObservableCounter, sdkmetric.InstrumentKindUpDownCounter}
	d, c := metricdata.DeltaTemporality, metricdata.CumulativeTemporality
	for pref, want := range map[string][]metricdata.Temporality{"": {c, c, c, c}, "delta": {d, d, d, c}, "lowmemory": {d, d, c, c}} {
		e, err := otlpFromEnv(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
			"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": pref}, "metrics")
		require.NoError(t, err)
		exp := newMetricExporter(e)
		for i, k := range kinds {
			require.Equal(t, want[i], exp.Temporality(k), "%q, %s", pref, k)
		}
	}
}
