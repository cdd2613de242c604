package resolver

import (
	"context"
	"fmt"
	"strings"
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

// TestEventTraceLinks: the resolve span of an event that covers many
// traced intents is a child of the newest one's trace and links to the
// next newest others, at most maxLinks of them.
func TestEventTraceLinks(t *testing.T) {
	t.Parallel()
	tp := func(i int) string { return fmt.Sprintf("00-%032x-%016x-01", i+1, i+1) }
	for _, n := range []int{1, 2, maxLinks + 1, maxLinks + 2} {
		t.Run(fmt.Sprint(n, " traced intents"), func(t *testing.T) {
			t.Parallel()
			exp := tracetest.NewInMemoryExporter()
			prov := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
			l := testLoop(t, Config{Tracing: telemetry.NewTracingWith(prov)}, nil)
			var ents []Entry
			for i := range n {
				e := put(int64(i), "k", ver(0, uint64(i)))
				e.Intent.Trace = tp(i)
				ents = append(ents, e)
			}
			l.core.Ingest(t0, ents)
			rd := l.core.Ready()
			l.core.ReadDone(t0, ReadResult{Key: []byte("k"), Seq: rd.Reads[0].Seq, Found: true, Row: *row(ver(0, uint64(n-1)), "v")})
			j := &pubJob{events: l.core.Ready().Events}
			if len(j.events) != 1 {
				t.Fatalf("events %+v, want one", j.events)
			}
			l.traceEvents(j)
			j.ok = j.events
			j.endTraces(t0)
			var resolve *tracetest.SpanStub
			for _, s := range exp.GetSpans() {
				if s.Name == "wail.resolve" {
					resolve = &s
				}
			}
			if resolve == nil {
				t.Fatal("no resolve span")
			}
			if got, want := resolve.Parent.TraceID().String(), fmt.Sprintf("%032x", n); got != want {
				t.Fatalf("resolve span's parent trace %s, want %s (the newest intent's)", got, want)
			}
			var got, want []string // the intents' numbers (trace IDs)
			for _, lk := range resolve.Links {
				got = append(got, strings.TrimLeft(lk.SpanContext.TraceID().String(), "0"))
			}
			for i := n - 1; i > 0 && len(want) < maxLinks; i-- {
				want = append(want, fmt.Sprintf("%x", i))
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%d links, to the traces %v; want %d, to %v", len(got), got, len(want), want)
			}
		})
	}
}
