package telemetry

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing traces writes from the proxy to their events: the proxy's span
// of a write (continuing the caller's W3C trace context), its intent
// append and store write; the resolver's span of the event, its store
// reads and its publish (see DESIGN.md, "Observability: metrics and
// tracing"). The trace context travels in the intent (Intent.Trace) and
// the event (Event.Trace, and the "traceparent" header of its record).
//
// A nil *Tracing is off: Start returns a no-op span, Extract the context
// as it is; nothing carries a trace context.
type Tracing struct {
	tracer   trace.Tracer
	shutdown func(context.Context) error
}

// TraceOptions configure NewTracing (config.Tracing).
type TraceOptions struct {
	// Endpoint is the collector's OTLP/HTTP traces URL.
	Endpoint string
	// SampleRatio is the share of writes traced among those whose
	// caller did not decide (no traceparent).
	SampleRatio float64
	// ServiceName is the spans' service.name.
	ServiceName string
	// OnError hears the exporter's errors (a collector down, refusing);
	// nil: they are dropped. It replaces OpenTelemetry's global error
	// handler.
	OnError func(error)
}

// tracerName names wail's instrumentation.
const tracerName = "github.com/wail-cdc/wail"

// NewTracing exports sampled traces to an OTLP/HTTP collector, in the
// background (batches; a collector that is down loses spans, never
// slows a write).
func NewTracing(ctx context.Context, o TraceOptions) (*Tracing, error) {
	if o.OnError != nil {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(o.OnError))
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(o.Endpoint))
	if err != nil {
		return nil, fmt.Errorf("tracing: exporter for %s: %w", o.Endpoint, err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio))),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", o.ServiceName))),
	)
	return &Tracing{tracer: tp.Tracer(tracerName), shutdown: tp.Shutdown}, nil
}

// NewTracingWith traces with tp (tests: an SDK provider that records to
// memory).
func NewTracingWith(tp trace.TracerProvider) *Tracing {
	return &Tracing{tracer: tp.Tracer(tracerName), shutdown: func(context.Context) error { return nil }}
}

// Shutdown exports what is buffered and stops.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// On reports whether tracing is on.
func (t *Tracing) On() bool { return t != nil }

var noopSpan trace.Span = noop.Span{}

// Start starts a span, a child of ctx's span (or remote span context).
// Off: ctx unchanged and a no-op span.
func (t *Tracing) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if t == nil {
		return ctx, noopSpan
	}
	return t.tracer.Start(ctx, name, opts...)
}

var w3c = propagation.TraceContext{}

// Extract returns ctx with the remote span context of the request's W3C
// trace context headers (traceparent, tracestate), if any. Off: ctx.
func (t *Tracing) Extract(ctx context.Context, h http.Header) context.Context {
	if t == nil || h.Get("traceparent") == "" {
		return ctx
	}
	return w3c.Extract(ctx, propagation.HeaderCarrier(h))
}

// Traceparent is the W3C traceparent of sc ("00-trace-span-flags") when
// it is sampled, else "": only what is traced carries a trace context.
func Traceparent(sc trace.SpanContext) string {
	if !sc.IsSampled() {
		return ""
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	b := make([]byte, 0, 55)
	b = append(b, "00-"...)
	b = hex.AppendEncode(b, tid[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, sid[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, []byte{byte(sc.TraceFlags())})
	return string(b)
}

// ParseTraceparent reads a W3C traceparent as a remote span context
// (false when it is not a valid one).
func ParseTraceparent(s string) (trace.SpanContext, bool) {
	ctx := w3c.Extract(context.Background(), propagation.MapCarrier{"traceparent": s})
	sc := trace.SpanContextFromContext(ctx)
	return sc, sc.IsValid()
}
