// Package telemetry builds Perpetuo's OpenTelemetry providers: the meter
// provider behind both /metrics (through the Prometheus exporter, always)
// and OTLP (when configured), and the tracer provider (a no-op unless spans
// have somewhere to go). What is measured and traced is decided by its
// users (gateway, server); this package only decides where it goes.
//
// Export is off by default. Setting OTEL_EXPORTER_OTLP_ENDPOINT (or the
// per-signal OTEL_EXPORTER_OTLP_TRACES_ENDPOINT /
// OTEL_EXPORTER_OTLP_METRICS_ENDPOINT) turns on OTLP over HTTP/protobuf for
// that signal; the exporters (otlp.go) read the rest of the standard
// OTEL_EXPORTER_OTLP_* variables (headers, timeout, compression, TLS,
// temporality), the SDK reads OTEL_TRACES_SAMPLER and OTEL_SERVICE_NAME /
// OTEL_RESOURCE_ATTRIBUTES.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ServiceName is the resource's service.name unless OTEL_SERVICE_NAME says
// otherwise.
const ServiceName = "perpetuo"

// Config says where telemetry goes.
type Config struct {
	// OTLPTraces and OTLPMetrics export that signal over OTLP/HTTP, to the
	// endpoint the standard variables name.
	OTLPTraces, OTLPMetrics bool
	// traces and metrics are where each goes (FromEnv reads them).
	traces, metrics otlpEndpoint
	// SpanExporter, when set, receives every ended span synchronously
	// (tests: an in-memory exporter).
	SpanExporter sdktrace.SpanExporter
	// MetricReader, when set, is one more reader of the metrics (tests: a
	// manual reader).
	MetricReader sdkmetric.Reader
}

// FromEnv reads which signals go over OTLP. It refuses a protocol other than
// http/protobuf, the only one built in, rather than exporting nothing.
func FromEnv(env map[string]string) (Config, error) {
	base := env["OTEL_EXPORTER_OTLP_ENDPOINT"] != ""
	c := Config{
		OTLPTraces:  base || env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] != "",
		OTLPMetrics: base || env["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] != "",
	}
	if strings.EqualFold(env["OTEL_SDK_DISABLED"], "true") {
		return Config{}, nil
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"} {
		if p := env[k]; p != "" && p != "http/protobuf" {
			return Config{}, fmt.Errorf("%s: only http/protobuf is supported", k)
		}
	}
	var err error
	if c.OTLPTraces {
		if c.traces, err = otlpFromEnv(env, "traces"); err != nil {
			return Config{}, err
		}
	}
	if c.OTLPMetrics {
		if c.metrics, err = otlpFromEnv(env, "metrics"); err != nil {
			return Config{}, err
		}
	}
	return c, nil
}

// Telemetry holds the providers and ends them.
type Telemetry struct {
	Tracer trace.TracerProvider
	Meter  metric.MeterProvider
	// Tracing is false when spans go nowhere, so callers can skip the work
	// of building them.
	Tracing  bool
	shutdown []func(context.Context) error
}

// New builds the providers; the metrics are registered on reg for /metrics.
func New(ctx context.Context, cfg Config, reg prometheus.Registerer) (*Telemetry, error) {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", ServiceName)))
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	// resource.Default reads OTEL_SERVICE_NAME: the operator's name wins.
	if res, err = resource.Merge(res, resource.Environment()); err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	t := &Telemetry{}
	prom, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(prom)}
	if cfg.OTLPMetrics {
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(newMetricExporter(cfg.metrics))))
	}
	if cfg.MetricReader != nil {
		mopts = append(mopts, sdkmetric.WithReader(cfg.MetricReader))
	}
	mp := sdkmetric.NewMeterProvider(mopts...)
	t.Meter, t.shutdown = mp, append(t.shutdown, mp.Shutdown)

	var topts []sdktrace.TracerProviderOption
	if cfg.OTLPTraces {
		topts = append(topts, sdktrace.WithBatcher(&spanExporter{newOTLPClient(cfg.traces)}))
	}
	if cfg.SpanExporter != nil {
		topts = append(topts, sdktrace.WithSyncer(cfg.SpanExporter))
	}
	if len(topts) == 0 {
		t.Tracer = noop.NewTracerProvider()
		return t, nil
	}
	tp := sdktrace.NewTracerProvider(append(topts, sdktrace.WithResource(res))...)
	t.Tracer, t.Tracing = tp, true
	// Traces end first: their last batch is flushed before the meters stop.
	t.shutdown = append([]func(context.Context) error{tp.Shutdown}, t.shutdown...)
	return t, nil
}

// Shutdown flushes what is buffered (the last spans and metrics) and stops
// the exporters.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	t.shutdown = nil
	return errors.Join(errs...)
}
