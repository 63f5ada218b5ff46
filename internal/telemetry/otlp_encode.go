package telemetry

import (
	"context"
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// The field numbers are opentelemetry-proto's (collector/trace/v1,
// collector/metrics/v1, trace/v1, metrics/v1, common/v1, resource/v1).
// proto3 leaves out scalars at their zero value; a message field is
// written, possibly empty, wherever the upstream exporters set it.

// pb is a protobuf message being appended to.
type pb []byte

func (b pb) bytes(n protowire.Number, v []byte) pb {
	if len(v) == 0 {
		return b
	}
	return protowire.AppendBytes(protowire.AppendTag(b, n, protowire.BytesType), v)
}

func (b pb) str(n protowire.Number, v string) pb {
	if v == "" {
		return b
	}
	return protowire.AppendString(protowire.AppendTag(b, n, protowire.BytesType), v)
}

func (b pb) varint(n protowire.Number, v uint64) pb {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(protowire.AppendTag(b, n, protowire.VarintType), v)
}

func (b pb) fixed64(n protowire.Number, v uint64) pb {
	if v == 0 {
		return b
	}
	return protowire.AppendFixed64(protowire.AppendTag(b, n, protowire.Fixed64Type), v)
}

func (b pb) fixed32(n protowire.Number, v uint32) pb {
	if v == 0 {
		return b
	}
	return protowire.AppendFixed32(protowire.AppendTag(b, n, protowire.Fixed32Type), v)
}

func (b pb) double(n protowire.Number, v float64) pb { return b.fixed64(n, math.Float64bits(v)) }

// optDouble writes v even when it is zero (an optional field).
func (b pb) optDouble(n protowire.Number, v float64) pb {
	return protowire.AppendFixed64(protowire.AppendTag(b, n, protowire.Fixed64Type), math.Float64bits(v))
}

// msg writes the message that enc appends, empty or not.
func (b pb) msg(n protowire.Number, enc func(pb) pb) pb {
	return protowire.AppendBytes(protowire.AppendTag(b, n, protowire.BytesType), enc(nil))
}

func clamp32(v int) uint64 { return uint64(min(max(v, 0), math.MaxUint32)) }

func unixNano(t time.Time) uint64 { return uint64(max(0, t.UnixNano())) }

// anyValue is common.v1.AnyValue.
func anyValue(b pb, v attribute.Value) pb {
	switch v.Type() {
	case attribute.BOOL:
		return protowire.AppendVarint(protowire.AppendTag(b, 2, protowire.VarintType), protowire.EncodeBool(v.AsBool()))
	case attribute.INT64:
		return protowire.AppendVarint(protowire.AppendTag(b, 3, protowire.VarintType), uint64(v.AsInt64()))
	case attribute.FLOAT64:
		return b.optDouble(4, v.AsFloat64())
	case attribute.STRING:
		return protowire.AppendString(protowire.AppendTag(b, 1, protowire.BytesType), v.AsString())
	case attribute.BYTESLICE:
		return protowire.AppendBytes(protowire.AppendTag(b, 7, protowire.BytesType), v.AsByteSlice())
	case attribute.BOOLSLICE:
		return array(b, v.AsBoolSlice(), attribute.BoolValue)
	case attribute.INT64SLICE:
		return array(b, v.AsInt64Slice(), attribute.Int64Value)
	case attribute.FLOAT64SLICE:
		return array(b, v.AsFloat64Slice(), attribute.Float64Value)
	case attribute.STRINGSLICE:
		return array(b, v.AsStringSlice(), attribute.StringValue)
	case attribute.SLICE:
		return array(b, v.AsSlice(), func(v attribute.Value) attribute.Value { return v })
	case attribute.MAP:
		return b.msg(6, func(b pb) pb { return keyValues(b, 1, v.AsMap()) })
	case attribute.EMPTY:
		return b
	default:
		return protowire.AppendString(protowire.AppendTag(b, 1, protowire.BytesType), "INVALID")
	}
}

// array is AnyValue.array_value of vs.
func array[T any](b pb, vs []T, val func(T) attribute.Value) pb {
	return b.msg(5, func(b pb) pb {
		for _, v := range vs {
			b = b.msg(1, func(b pb) pb { return anyValue(b, val(v)) })
		}
		return b
	})
}

// keyValues writes kvs as repeated common.v1.KeyValue field n.
func keyValues(b pb, n protowire.Number, kvs []attribute.KeyValue) pb {
	for _, kv := range kvs {
		b = b.msg(n, func(b pb) pb {
			return b.str(1, string(kv.Key)).msg(2, func(b pb) pb { return anyValue(b, kv.Value) })
		})
	}
	return b
}

func setKeyValues(b pb, n protowire.Number, s attribute.Set) pb { return keyValues(b, n, s.ToSlice()) }

// resourceMsg is resource.v1.Resource.
func resourceMsg(r *resource.Resource) func(pb) pb {
	return func(b pb) pb { return keyValues(b, 1, r.Attributes()) }
}

// scopeMsg is common.v1.InstrumentationScope.
func scopeMsg(s instrumentation.Scope) func(pb) pb {
	return func(b pb) pb { return setKeyValues(b.str(1, s.Name).str(2, s.Version), 3, s.Attributes) }
}

// encodeSpans is a collector.trace.v1.ExportTraceServiceRequest: spans
// grouped by resource, then by instrumentation scope, in the order first
// seen.
func encodeSpans(spans []sdktrace.ReadOnlySpan) []byte {
	type group struct {
		res    *resource.Resource
		scopes []instrumentation.Scope
		spans  map[instrumentation.Scope][]sdktrace.ReadOnlySpan
	}
	var order []attribute.Distinct
	groups := map[attribute.Distinct]*group{}
	for _, s := range spans {
		if s == nil {
			continue
		}
		k := s.Resource().Equivalent()
		g := groups[k]
		if g == nil {
			g = &group{res: s.Resource(), spans: map[instrumentation.Scope][]sdktrace.ReadOnlySpan{}}
			groups[k] = g
			order = append(order, k)
		}
		sc := s.InstrumentationScope()
		if _, ok := g.spans[sc]; !ok {
			g.scopes = append(g.scopes, sc)
		}
		g.spans[sc] = append(g.spans[sc], s)
	}
	var b pb
	for _, k := range order {
		g := groups[k]
		b = b.msg(1, func(b pb) pb {
			if g.res != nil {
				b = b.msg(1, resourceMsg(g.res))
			}
			for _, sc := range g.scopes {
				b = b.msg(2, func(b pb) pb {
					if sc != (instrumentation.Scope{}) {
						b = b.msg(1, scopeMsg(sc))
					}
					for _, s := range g.spans[sc] {
						b = b.msg(2, func(b pb) pb { return spanMsg(b, s) })
					}
					return b.str(3, sc.SchemaURL)
				})
			}
			return b.str(3, g.res.SchemaURL())
		})
	}
	return b
}

// spanFlags are the W3C trace flags and whether the parent is remote.
func spanFlags(tf trace.TraceFlags, parent trace.SpanContext) uint32 {
	const hasIsRemote, isRemote = 0x100, 0x200
	f := uint32(tf) | hasIsRemote
	if parent.IsRemote() {
		f |= isRemote
	}
	return f
}

// spanMsg is trace.v1.Span.
func spanMsg(b pb, s sdktrace.ReadOnlySpan) pb {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	b = b.bytes(1, tid[:]).bytes(2, sid[:]).str(3, sc.TraceState().String())
	if psid := s.Parent().SpanID(); psid.IsValid() {
		b = b.bytes(4, psid[:])
	}
	b = b.str(5, s.Name()).varint(6, uint64(s.SpanKind()))
	b = b.fixed64(7, unixNano(s.StartTime())).fixed64(8, unixNano(s.EndTime()))
	b = keyValues(b, 9, s.Attributes()).varint(10, clamp32(s.DroppedAttributes()))
	for _, e := range s.Events() {
		b = b.msg(11, func(b pb) pb {
			b = b.fixed64(1, unixNano(e.Time)).str(2, e.Name)
			return keyValues(b, 3, e.Attributes).varint(4, clamp32(e.DroppedAttributeCount))
		})
	}
	b = b.varint(12, clamp32(s.DroppedEvents()))
	for _, l := range s.Links() {
		b = b.msg(13, func(b pb) pb {
			ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
			b = keyValues(b.bytes(1, ltid[:]).bytes(2, lsid[:]), 4, l.Attributes)
			return b.varint(5, clamp32(l.DroppedAttributeCount)).fixed32(6, spanFlags(l.SpanContext.TraceFlags(), l.SpanContext))
		})
	}
	b = b.varint(14, clamp32(s.DroppedLinks()))
	st := s.Status()
	b = b.msg(15, func(b pb) pb {
		var code uint64 // STATUS_CODE_UNSET
		switch st.Code {
		case codes.Ok:
			code = 1
		case codes.Error:
			code = 2
		}
		return b.str(2, st.Description).varint(3, code)
	})
	return b.fixed32(16, spanFlags(sc.TraceFlags(), s.Parent()))
}

// encodeMetrics is a collector.metrics.v1.ExportMetricsServiceRequest.
func encodeMetrics(rm *metricdata.ResourceMetrics) ([]byte, error) {
	var err error
	b := pb(nil).msg(1, func(b pb) pb {
		b = b.msg(1, resourceMsg(rm.Resource))
		for _, sm := range rm.ScopeMetrics {
			b = b.msg(2, func(b pb) pb {
				b = b.msg(1, scopeMsg(sm.Scope))
				for _, m := range sm.Metrics {
					data, derr := metricData(m.Data)
					if derr != nil {
						err = fmt.Errorf("metric %s: %w", m.Name, derr)
						continue
					}
					b = b.msg(2, func(b pb) pb { return append(b.str(1, m.Name).str(2, m.Description).str(3, m.Unit), data...) })
				}
				return b.str(3, sm.Scope.SchemaURL)
			})
		}
		return b.str(3, rm.Resource.SchemaURL())
	})
	return b, err
}

// metricData is Metric's data oneof.
func metricData(d metricdata.Aggregation) (pb, error) {
	switch a := d.(type) {
	case metricdata.Gauge[int64]:
		return pb(nil).msg(5, func(b pb) pb { return numberPoints(b, a.DataPoints) }), nil
	case metricdata.Gauge[float64]:
		return pb(nil).msg(5, func(b pb) pb { return numberPoints(b, a.DataPoints) }), nil
	case metricdata.Sum[int64]:
		return sumMsg(a.Temporality, a.IsMonotonic, func(b pb) pb { return numberPoints(b, a.DataPoints) })
	case metricdata.Sum[float64]:
		return sumMsg(a.Temporality, a.IsMonotonic, func(b pb) pb { return numberPoints(b, a.DataPoints) })
	case metricdata.Histogram[int64]:
		return histogramMsg(a.Temporality, a.DataPoints)
	case metricdata.Histogram[float64]:
		return histogramMsg(a.Temporality, a.DataPoints)
	case metricdata.ExponentialHistogram[int64]:
		return expHistogramMsg(a.Temporality, a.DataPoints)
	case metricdata.ExponentialHistogram[float64]:
		return expHistogramMsg(a.Temporality, a.DataPoints)
	case metricdata.Summary:
		return pb(nil).msg(11, func(b pb) pb { return summaryPoints(b, a.DataPoints) }), nil
	default:
		return nil, fmt.Errorf("unknown aggregation %T", d)
	}
}

// temporality is metrics.v1.AggregationTemporality.
func temporality(t metricdata.Temporality) (uint64, error) {
	switch t {
	case metricdata.DeltaTemporality:
		return 1, nil
	case metricdata.CumulativeTemporality:
		return 2, nil
	default:
		return 0, fmt.Errorf("unknown temporality %s", t)
	}
}

func sumMsg(t metricdata.Temporality, monotonic bool, points func(pb) pb) (pb, error) {
	tv, err := temporality(t)
	if err != nil {
		return nil, err
	}
	return pb(nil).msg(7, func(b pb) pb {
		b = points(b).varint(2, tv)
		if monotonic {
			b = b.varint(3, 1)
		}
		return b
	}), nil
}

func numberPoints[N int64 | float64](b pb, ps []metricdata.DataPoint[N]) pb {
	for _, p := range ps {
		b = b.msg(1, func(b pb) pb {
			b = setKeyValues(b, 7, p.Attributes).fixed64(2, unixNano(p.StartTime)).fixed64(3, unixNano(p.Time))
			switch v := any(p.Value).(type) {
			case int64:
				b = protowire.AppendFixed64(protowire.AppendTag(b, 6, protowire.Fixed64Type), uint64(v))
			case float64:
				b = b.optDouble(4, v)
			}
			return exemplars(b, 5, p.Exemplars)
		})
	}
	return b
}

func exemplars[N int64 | float64](b pb, n protowire.Number, es []metricdata.Exemplar[N]) pb {
	for _, e := range es {
		b = b.msg(n, func(b pb) pb {
			b = keyValues(b, 7, e.FilteredAttributes).fixed64(2, unixNano(e.Time)).bytes(4, e.SpanID).bytes(5, e.TraceID)
			switch v := any(e.Value).(type) {
			case int64:
				return protowire.AppendFixed64(protowire.AppendTag(b, 6, protowire.Fixed64Type), uint64(v))
			case float64:
				return b.optDouble(3, v)
			}
			return b
		})
	}
	return b
}

// packedFixed64 writes vs as a packed repeated fixed64 field.
func (b pb) packedFixed64(n protowire.Number, vs []uint64) pb {
	if len(vs) == 0 {
		return b
	}
	var p []byte
	for _, v := range vs {
		p = protowire.AppendFixed64(p, v)
	}
	return b.bytes(n, p)
}

func histogramMsg[N int64 | float64](t metricdata.Temporality, ps []metricdata.HistogramDataPoint[N]) (pb, error) {
	tv, err := temporality(t)
	if err != nil {
		return nil, err
	}
	return pb(nil).msg(9, func(b pb) pb {
		for _, p := range ps {
			b = b.msg(1, func(b pb) pb {
				b = setKeyValues(b, 9, p.Attributes).fixed64(2, unixNano(p.StartTime)).fixed64(3, unixNano(p.Time))
				b = b.fixed64(4, p.Count).optDouble(5, float64(p.Sum)).packedFixed64(6, p.BucketCounts)
				bounds := make([]uint64, len(p.Bounds))
				for i, f := range p.Bounds {
					bounds[i] = math.Float64bits(f)
				}
				b = exemplars(b.packedFixed64(7, bounds), 8, p.Exemplars)
				if v, ok := p.Min.Value(); ok {
					b = b.optDouble(11, float64(v))
				}
				if v, ok := p.Max.Value(); ok {
					b = b.optDouble(12, float64(v))
				}
				return b
			})
		}
		return b.varint(2, tv)
	}), nil
}

func expHistogramMsg[N int64 | float64](t metricdata.Temporality, ps []metricdata.ExponentialHistogramDataPoint[N]) (pb, error) {
	tv, err := temporality(t)
	if err != nil {
		return nil, err
	}
	buckets := func(eb metricdata.ExponentialBucket) func(pb) pb {
		return func(b pb) pb {
			b = b.varint(1, protowire.EncodeZigZag(int64(eb.Offset)))
			var p []byte
			for _, c := range eb.Counts {
				p = protowire.AppendVarint(p, c)
			}
			return b.bytes(2, p)
		}
	}
	return pb(nil).msg(10, func(b pb) pb {
		for _, p := range ps {
			b = b.msg(1, func(b pb) pb {
				b = setKeyValues(b, 1, p.Attributes).fixed64(2, unixNano(p.StartTime)).fixed64(3, unixNano(p.Time))
				b = b.fixed64(4, p.Count).optDouble(5, float64(p.Sum)).varint(6, protowire.EncodeZigZag(int64(p.Scale)))
				b = b.fixed64(7, p.ZeroCount).msg(8, buckets(p.PositiveBucket)).msg(9, buckets(p.NegativeBucket))
				b = exemplars(b, 11, p.Exemplars)
				if v, ok := p.Min.Value(); ok {
					b = b.optDouble(12, float64(v))
				}
				if v, ok := p.Max.Value(); ok {
					b = b.optDouble(13, float64(v))
				}
				return b.double(14, p.ZeroThreshold)
			})
		}
		return b.varint(2, tv)
	}), nil
}

func summaryPoints(b pb, ps []metricdata.SummaryDataPoint) pb {
	for _, p := range ps {
		b = b.msg(1, func(b pb) pb {
			b = setKeyValues(b, 7, p.Attributes).fixed64(2, unixNano(p.StartTime)).fixed64(3, unixNano(p.Time))
			b = b.fixed64(4, p.Count).double(5, p.Sum)
			for _, q := range p.QuantileValues {
				b = b.msg(6, func(b pb) pb { return b.double(1, q.Quantile).double(2, q.Value) })
			}
			return b
		})
	}
	return b
}

// spanExporter sends spans over OTLP/HTTP (sdktrace.SpanExporter).
type spanExporter struct{ c *otlpClient }

func (e *spanExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	return e.c.post(ctx, encodeSpans(spans))
}

func (e *spanExporter) Shutdown(context.Context) error { e.c.shutdown(); return nil }

// metricExporter sends metrics over OTLP/HTTP (sdkmetric.Exporter).
type metricExporter struct {
	c           *otlpClient
	temporality sdkmetric.TemporalitySelector
}

func newMetricExporter(e otlpEndpoint) *metricExporter {
	sel := sdkmetric.DefaultTemporalitySelector
	switch e.temporality {
	case "delta":
		sel = func(k sdkmetric.InstrumentKind) metricdata.Temporality {
			switch k {
			case sdkmetric.InstrumentKindUpDownCounter, sdkmetric.InstrumentKindObservableUpDownCounter:
				return metricdata.CumulativeTemporality
			}
			return metricdata.DeltaTemporality
		}
	case "lowmemory":
		sel = func(k sdkmetric.InstrumentKind) metricdata.Temporality {
			switch k {
			case sdkmetric.InstrumentKindCounter, sdkmetric.InstrumentKindHistogram:
				return metricdata.DeltaTemporality
			}
			return metricdata.CumulativeTemporality
		}
	}
	return &metricExporter{c: newOTLPClient(e), temporality: sel}
}

func (e *metricExporter) Temporality(k sdkmetric.InstrumentKind) metricdata.Temporality {
	return e.temporality(k)
}

func (e *metricExporter) Aggregation(k sdkmetric.InstrumentKind) sdkmetric.Aggregation {
	return sdkmetric.DefaultAggregationSelector(k)
}

// Export sends rm; a metric the encoder does not know is left out and
// reported, the rest still go.
func (e *metricExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	body, encErr := encodeMetrics(rm)
	if err := e.c.post(ctx, body); err != nil {
		return err
	}
	return encErr
}

func (e *metricExporter) ForceFlush(context.Context) error { return nil }

func (e *metricExporter) Shutdown(context.Context) error { e.c.shutdown(); return nil }
