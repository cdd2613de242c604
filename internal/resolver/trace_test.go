package resolver

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/telemetry"
)

// TestCoalescedEventTrace: an event that covers the intents of two traced
// writes (and an untraced one) is a span of the newest traced write's
// trace, linked to the other's; the event carries its publish span's
// traceparent. An event of untraced intents carries none.
func TestCoalescedEventTrace(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := newTestEnv(ctx, t, "tr")
	const (
		older = "00-11111111111111111111111111111111-1111111111111111-01"
		newer = "00-22222222222222222222222222222222-2222222222222222-01"
	)
	now := time.Now()
	env.writeIntent(ctx, t, intent.Intent{Key: []byte("k"), Op: intent.Upsert, Version: 10, CreatedAt: now, Trace: older}, "v10")
	env.writeIntent(ctx, t, intent.Intent{Key: []byte("k"), Op: intent.Upsert, Version: 11, CreatedAt: now, Trace: newer}, "v11")
	env.writeIntent(ctx, t, intent.Intent{Key: []byte("k"), Op: intent.Upsert, Version: 12, CreatedAt: now}, "v12")
	env.write(ctx, t, "plain", 13, "v")

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	logger, _ := testLogger()
	cfg := testConfig(logger, nil)
	cfg.Tracing = telemetry.NewTracingWith(tp)
	run := start(ctx, New(env.log, env.st, env.bus, cfg), env.tb)
	waitUntil(ctx, t, "every intent settled", func() bool { return committedAt(ctx, t, env.log, env.tb) == 4 })
	run.stop(t)

	events := map[string]intent.Event{}
	for _, r := range readTopic(ctx, t, env.log, eventbus.Topic(env.tb.Name)) {
		if r.Value != nil {
			e, err := intent.UnmarshalEvent(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			events[string(e.Key)] = e
		}
	}
	if e := events["k"]; e.Version != 12 || e.CoveredIntents != 3 {
		t.Fatalf("event of k: %+v, want version 12 covering 3 intents", e)
	}
	if e := events["plain"]; e.Trace != "" {
		t.Errorf("the untraced event carries %q", e.Trace)
	}
	sc, ok := telemetry.ParseTraceparent(events["k"].Trace)
	if !ok {
		t.Fatalf("event of k carries no valid traceparent: %q", events["k"].Trace)
	}
	var resolve, publish *tracetest.SpanStub
	spans := exp.GetSpans()
	for i := range spans {
		switch spans[i].Name {
		case "wail.resolve":
			resolve = &spans[i]
		case "wail.publish":
			publish = &spans[i]
		}
	}
	if resolve == nil || publish == nil {
		t.Fatalf("spans: %v", spans)
	}
	if got := resolve.Parent.TraceID().String(); got != "22222222222222222222222222222222" || resolve.Parent.SpanID().String() != "2222222222222222" {
		t.Errorf("resolve span's parent %v, want the newest traced write", resolve.Parent)
	}
	if len(resolve.Links) != 1 || resolve.Links[0].SpanContext.TraceID().String() != "11111111111111111111111111111111" {
		t.Errorf("resolve span's links %v, want the older write's trace", resolve.Links)
	}
	if publish.SpanContext.SpanID() != sc.SpanID() || publish.SpanContext.TraceID() != sc.TraceID() {
		t.Errorf("the event's traceparent %s is not the publish span %s", events["k"].Trace, publish.SpanContext.SpanID())
	}
	if len(spans) < 3 {
		t.Errorf("%d spans, want resolve, read and publish", len(spans))
	}
}
