package proxy

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/wail-cdc/wail/internal/telemetry"
)

// TestIntentsCarryTheWriteSpan: with tracing on, a write's intents carry
// the traceparent of its span, in the caller's trace (the resolver puts it
// on the event); with tracing off they carry none.
func TestIntentsCarryTheWriteSpan(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	for _, on := range []bool{true, false} {
		w := &world{}
		p := newWindowProxy(t, w, 10*time.Second)
		if on {
			p = p.WithTracing(telemetry.NewTracingWith(tp))
		}
		ctx, parent := tp.Tracer("client").Start(context.Background(), "call")
		r := p.Write(ctx, []Mutation{{Table: "tx", Key: []byte("k"), Value: []byte("v")}})[0]
		parent.End()
		if r.Err != nil || len(w.Intents) != 1 {
			t.Fatalf("tracing %v: result %+v, %d intents", on, r, len(w.Intents))
		}
		tr := w.Intents[0].Trace
		if !on {
			if tr != "" {
				t.Fatalf("tracing off: the intent carries %q", tr)
			}
			continue
		}
		sc, ok := telemetry.ParseTraceparent(tr)
		if !ok || sc.TraceID() != parent.SpanContext().TraceID() || sc.SpanID() == parent.SpanContext().SpanID() {
			t.Fatalf("the intent's traceparent %q is not the write's span in the caller's trace %s", tr, parent.SpanContext().TraceID())
		}
	}
}

// TestFailedStepsMarkTheirSpans: the span of a step that failed (the
// store write here) is marked failed with the error; the append's, which
// worked, is not.
func TestFailedStepsMarkTheirSpans(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	w := &world{StErr: errStoreDown}
	p := newWindowProxy(t, w, 10*time.Second).WithTracing(telemetry.NewTracingWith(tp))
	if r := p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("k"), Value: []byte("v")}})[0]; r.Err == nil {
		t.Fatalf("result %+v, want a failed store write", r)
	}
	status := map[string]codes.Code{}
	for _, s := range rec.Ended() {
		status[s.Name()] = s.Status().Code
	}
	if status["wail.store.write"] != codes.Error || status["wail.intent.append"] != codes.Unset {
		t.Fatalf("span status %v: want wail.store.write failed, wail.intent.append not", status)
	}
}
