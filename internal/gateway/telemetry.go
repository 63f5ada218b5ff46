package gateway

import (
	"context"
	"net/url"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/perpetuo/perpetuo/internal/records"
	"github.com/perpetuo/perpetuo/internal/routing"
)

// Telemetry is what the gateway measures and traces, named after the
// OpenTelemetry GenAI semantic conventions where they have a name
// (gen_ai.*) and under perpetuo.* for cost and routing. Every attribute
// is a catalog slug, a model id, a number or a Perpetuo id: never request
// or response text.
type Telemetry struct {
	tracer  trace.Tracer
	tracing bool

	attempts    metric.Int64Counter     // perpetuo.upstream.attempts
	generations metric.Int64Counter     // perpetuo.generations
	cost        metric.Float64Counter   // perpetuo.cost
	tokens      metric.Int64Histogram   // gen_ai.client.token.usage
	duration    metric.Float64Histogram // gen_ai.client.operation.duration
	ttft        metric.Float64Histogram // gen_ai.server.time_to_first_token

	labels sync.Map // labelKey → *labels, attemptKey → metric.MeasurementOption
}

// Bucket boundaries the GenAI conventions advise.
var (
	tokenBuckets    = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}
	durationBuckets = []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}
	ttftBuckets     = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0}
)

// NewTelemetry creates the instruments on mp and traces with tp; tracing
// says whether spans go anywhere (when not, none are built).
func NewTelemetry(tp trace.TracerProvider, mp metric.MeterProvider, tracing bool) (*Telemetry, error) {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	m := mp.Meter("github.com/perpetuo/perpetuo/internal/gateway")
	t := &Telemetry{tracer: tp.Tracer("github.com/perpetuo/perpetuo/internal/gateway"), tracing: tracing}
	var err error
	if t.attempts, err = m.Int64Counter("perpetuo.upstream.attempts",
		metric.WithDescription("Upstream calls by provider, status and outcome class.")); err != nil {
		return nil, err
	}
	if t.generations, err = m.Int64Counter("perpetuo.generations",
		metric.WithDescription("Finished generations by provider, status and error type.")); err != nil {
		return nil, err
	}
	if t.cost, err = m.Float64Counter("perpetuo.cost", metric.WithUnit("USD"),
		metric.WithDescription("Cost of served generations as charged (the records hold the exact figures).")); err != nil {
		return nil, err
	}
	if t.tokens, err = m.Int64Histogram("gen_ai.client.token.usage", metric.WithUnit("{token}"),
		metric.WithDescription("Input and output tokens per generation, as the provider reported them."),
		metric.WithExplicitBucketBoundaries(tokenBuckets...)); err != nil {
		return nil, err
	}
	if t.duration, err = m.Float64Histogram("gen_ai.client.operation.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of a generation, from the request to its last byte, fallbacks included."),
		metric.WithExplicitBucketBoundaries(durationBuckets...)); err != nil {
		return nil, err
	}
	if t.ttft, err = m.Float64Histogram("gen_ai.server.time_to_first_token", metric.WithUnit("s"),
		metric.WithDescription("Time from the request to the first streamed token."),
		metric.WithExplicitBucketBoundaries(ttftBuckets...)); err != nil {
		return nil, err
	}
	return t, nil
}

// Attribute keys. The gen_ai.* ones are the conventions'.
const (
	keyOperation     = attribute.Key("gen_ai.operation.name")
	keyProvider      = attribute.Key("gen_ai.provider.name")
	keyRequestModel  = attribute.Key("gen_ai.request.model")
	keyResponseModel = attribute.Key("gen_ai.response.model")
	keyTokenType     = attribute.Key("gen_ai.token.type")
	keyErrorType     = attribute.Key("error.type")
)

// otherValue is the conventions' value for what is not known.
const otherValue = "_OTHER"

// semconvProviders maps catalog slugs to the conventions' well-known
// gen_ai.provider.name values; other slugs are used as they are.
var semconvProviders = map[string]string{
	"azure": "azure.ai.openai", "google-ai-studio": "gcp.gemini", "google-vertex": "gcp.vertex_ai",
	"mistral": "mistral_ai", "xai": "x_ai", "x-ai": "x_ai", "bedrock": "aws.bedrock",
}

func providerName(slug string) string {
	if slug == "" {
		return otherValue
	}
	if v, ok := semconvProviders[slug]; ok {
		return v
	}
	return slug
}

// attemptSpan starts the client span of one upstream attempt, a child of
// the request's span in ctx. It returns nil when tracing is off.
func (t *Telemetry) attemptSpan(ctx context.Context, r *run, c routing.Candidate, index int) trace.Span {
	if t == nil || !t.tracing {
		return nil
	}
	attrs := []attribute.KeyValue{
		keyOperation.String("chat"), keyProvider.String(providerName(c.Provider.Slug)),
		keyRequestModel.String(c.Model.ID), attribute.String("perpetuo.provider", c.Provider.Slug),
		attribute.String("perpetuo.generation.id", r.rec.ID), attribute.Int("perpetuo.attempt", index),
		attribute.Bool("perpetuo.fallback", index > 0), attribute.Bool("perpetuo.is_byok", c.Credential.BYOK),
		attribute.Bool("perpetuo.stream", r.req.Stream),
	}
	if u, err := url.Parse(c.BaseURL()); err == nil && u.Hostname() != "" {
		attrs = append(attrs, attribute.String("server.address", u.Hostname()))
	}
	_, span := t.tracer.Start(ctx, "chat "+c.Model.ID, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return span
}

// endFailed ends an attempt's span that failed.
func endFailed(span trace.Span, a records.Attempt) {
	if span == nil {
		return
	}
	span.SetAttributes(keyErrorType.String(a.ErrorType), attribute.Int("perpetuo.upstream.status", a.Status),
		attribute.String("perpetuo.attempt.class", a.Class))
	span.SetStatus(codes.Error, a.ErrorType)
	span.End()
}

// endServed ends the serving attempt's span when its generation is
// complete (for a stream, when the stream ends), with the usage and cost.
func endServed(span trace.Span, g records.Generation) {
	if span == nil {
		return
	}
	attrs := []attribute.KeyValue{
		keyResponseModel.String(g.Model), attribute.String("perpetuo.cost", g.Cost.String()),
		attribute.Bool("perpetuo.cancelled", g.Cancelled),
	}
	if g.UpstreamID != "" {
		attrs = append(attrs, attribute.String("gen_ai.response.id", g.UpstreamID))
	}
	if g.FinishReason != "" {
		attrs = append(attrs, attribute.StringSlice("gen_ai.response.finish_reasons", []string{g.FinishReason}))
	}
	if !g.UsageEstimated {
		attrs = append(attrs, attribute.Int("gen_ai.usage.input_tokens", g.PromptTokens),
			attribute.Int("gen_ai.usage.output_tokens", g.CompletionTokens))
	} else {
		attrs = append(attrs, attribute.Bool("perpetuo.usage.estimated", true))
	}
	if g.CachedTokens > 0 {
		attrs = append(attrs, attribute.Int("gen_ai.usage.cache_read.input_tokens", g.CachedTokens))
	}
	if g.ReasoningTokens > 0 {
		attrs = append(attrs, attribute.Int("gen_ai.usage.reasoning.output_tokens", g.ReasoningTokens))
	}
	span.SetAttributes(attrs...)
	if g.ErrorType != "" {
		span.SetAttributes(keyErrorType.String(g.ErrorType))
		span.SetStatus(codes.Error, g.ErrorType)
	}
	span.End()
}

// planned notes the routing decision on the request's span.
func (t *Telemetry) planned(ctx context.Context, r *run, plan routing.Plan) {
	if t == nil || !t.tracing {
		return
	}
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.String("perpetuo.generation.id", r.rec.ID),
		attribute.String("perpetuo.routing.strategy", plan.Decision.Strategy),
		attribute.Int("perpetuo.routing.candidates", len(plan.Candidates)),
		attribute.Bool("perpetuo.routing.allow_fallbacks", plan.Decision.Fallbacks),
		attribute.Bool("perpetuo.zdr", r.rec.ZDR))
}

func (t *Telemetry) attempt(ctx context.Context, a records.Attempt) {
	if t == nil {
		return
	}
	k := attemptKey{a.Provider, a.Class, a.Status}
	l, ok := t.labels.Load(k)
	if !ok {
		l, _ = t.labels.LoadOrStore(k, metric.WithAttributeSet(attribute.NewSet(keyProvider.String(providerName(a.Provider)),
			attribute.Int("perpetuo.upstream.status", a.Status), attribute.String("perpetuo.attempt.class", a.Class))))
	}
	t.attempts.Add(ctx, 1, l.(metric.MeasurementOption))
}

// attemptKey is what an attempt's metric attributes depend on.
type attemptKey struct {
	provider, class string
	status          int
}

// generation records a finished generation's metrics. The request model is
// named only when an endpoint served it (a model the catalog knows), so a
// client cannot grow the label set with made-up names.
func (t *Telemetry) generation(g records.Generation) {
	if t == nil {
		return
	}
	ctx := context.Background()
	l := t.labelsFor(g)
	t.generations.Add(ctx, 1, l.generations)
	t.duration.Record(ctx, g.Latency.Seconds(), l.duration)
	if g.Model == "" {
		return
	}
	if !g.UsageEstimated { // the conventions count reported tokens only
		t.tokens.Record(ctx, int64(g.PromptTokens), l.input)
		t.tokens.Record(ctx, int64(g.CompletionTokens), l.output)
	}
	if g.TTFT > 0 {
		t.ttft.Record(ctx, g.TTFT.Seconds(), l.base)
	}
	cost, _ := g.Cost.Float64()
	t.cost.Add(ctx, cost, l.cost)
}

// labelKey is what a generation's metric attributes depend on: catalog
// slugs and ids, a status and an error type, so the set of keys is
// bounded.
type labelKey struct {
	provider, requestModel, responseModel, errorType string
	status                                           int
	byok                                             bool
}

// labels are the attribute sets of one labelKey, built once: building and
// sorting the sets on every generation was most of what metrics cost.
type labels struct {
	generations, duration, input, output, base, cost metric.MeasurementOption
}

func (t *Telemetry) labelsFor(g records.Generation) *labels {
	k := labelKey{provider: g.Provider, errorType: g.ErrorType, status: g.Status, byok: g.BYOK,
		requestModel: otherValue, responseModel: otherValue}
	if g.Model != "" {
		k.requestModel, k.responseModel = g.RequestedModel, g.Model
	}
	if l, ok := t.labels.Load(k); ok {
		return l.(*labels)
	}
	provider := keyProvider.String(providerName(k.provider))
	base := []attribute.KeyValue{keyOperation.String("chat"), provider,
		keyRequestModel.String(k.requestModel), keyResponseModel.String(k.responseModel)}
	with := func(kv ...attribute.KeyValue) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(append(base[:len(base):len(base)], kv...)...))
	}
	l := &labels{
		generations: metric.WithAttributeSet(attribute.NewSet(provider,
			attribute.Int("http.response.status_code", k.status), keyErrorType.String(k.errorType))),
		duration: with(),
		input:    with(keyTokenType.String("input")),
		output:   with(keyTokenType.String("output")),
		base:     with(),
		cost: metric.WithAttributeSet(attribute.NewSet(provider, keyResponseModel.String(g.Model),
			attribute.Bool("perpetuo.is_byok", k.byok))),
	}
	if k.errorType != "" {
		l.duration = with(keyErrorType.String(k.errorType))
	}
	v, _ := t.labels.LoadOrStore(k, l)
	return v.(*labels)
}
