package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/logbuf"
	"github.com/wail-cdc/wail/internal/telemetry"
)

// eventRecord waits for the event record of key at version in table t.
func eventRecord(ctx context.Context, t *testing.T, s *Server, key string, version uint64) intentlog.Record {
	t.Helper()
	tb, _ := s.catalog.Get("t")
	for ctx.Err() == nil {
		for p := int32(0); p < tb.Partitions; p++ {
			rd, err := s.log.NewReader(eventbus.Topic("t"), p, 0)
			if err != nil {
				t.Fatal(err)
			}
			for {
				rctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
				recs, err := rd.Next(rctx)
				cancel()
				if err != nil {
					break
				}
				for _, r := range recs {
					if string(r.Key) != key || r.Value == nil {
						continue
					}
					if e, err := intent.UnmarshalEvent(r.Value); err == nil && e.Version >= version {
						rd.Close()
						return r
					}
				}
			}
			rd.Close()
		}
	}
	t.Fatalf("no event of %s at version %d", key, version)
	return intentlog.Record{}
}

// TestTraceOfAWrite: a write whose caller sends a sampled W3C
// traceparent is one trace from the caller's span to the event: the
// proxy's write span (a child of the caller's), its intent append and
// store write, the resolver's resolution, store read and publish; the
// event carries the publish span's traceparent, in its ChangeEvent and in
// its record's header. A write without a traceparent, at sample ratio 0,
// is not traced and its event carries none.
func TestTraceOfAWrite(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	cfg := testConfig(t)
	cfg.Log.NoSync, cfg.Store.NoSync = true, true
	r := runServer(t, cfg, seams{tracing: telemetry.NewTracingWith(tp)})

	const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req := connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("traced"), Value: []byte("v")})
	req.Header().Set("traceparent", caller)
	resp, err := r.producer.Put(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	rec := eventRecord(ctx, t, r.srv, "traced", resp.Msg.Result.Version)
	ev, err := intent.UnmarshalEvent(rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	var header string
	for _, h := range rec.Headers {
		if h.Key == eventbus.HeaderTrace {
			header = string(h.Value)
		}
	}
	if ev.Trace == "" || header != ev.Trace {
		t.Fatalf("event trace %q, header %q: want the same traceparent in both", ev.Trace, header)
	}
	sc, ok := telemetry.ParseTraceparent(ev.Trace)
	if !ok || sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("the event's traceparent %q is not in the caller's trace", ev.Trace)
	}

	spans := map[string]tracetest.SpanStub{}
	waitFor(ctx, t, "the publish span exported", func() bool {
		for _, s := range exp.GetSpans() {
			spans[s.Name] = s
		}
		_, ok := spans["wail.publish"]
		return ok
	})
	parentOf := map[string]string{
		"wail.write": "", "wail.intent.append": "wail.write", "wail.store.write": "wail.write",
		"wail.resolve": "wail.write", "wail.store.read": "wail.resolve", "wail.publish": "wail.resolve",
	}
	for name, parent := range parentOf {
		s, ok := spans[name]
		if !ok {
			t.Errorf("no span %s", name)
			continue
		}
		if s.SpanContext.TraceID() != sc.TraceID() {
			t.Errorf("span %s in trace %s, want the caller's", name, s.SpanContext.TraceID())
		}
		want := "00f067aa0ba902b7" // the caller's span
		if parent != "" {
			want = spans[parent].SpanContext.SpanID().String()
		}
		if got := s.Parent.SpanID().String(); got != want {
			t.Errorf("span %s: parent %s, want %s (%s)", name, got, want, parent)
		}
	}
	if got := spans["wail.publish"].SpanContext.SpanID(); got != sc.SpanID() {
		t.Errorf("the event's traceparent names span %s, want the publish span %s", sc.SpanID(), got)
	}
	if s := spans["wail.write"]; s.SpanKind != trace.SpanKindServer || s.EndTime.Before(s.StartTime) {
		t.Errorf("write span: %+v", s)
	}
	// The read that found the write was answered after the write began.
	// It may have been asked before: a read waits for a store write in
	// flight (landing), and the intent is appended before the store write.
	if r, w := spans["wail.store.read"], spans["wail.store.write"]; r.EndTime.Before(w.StartTime) {
		t.Errorf("the resolver's last read was answered at %v, before the store write began at %v", r.EndTime, w.StartTime)
	}

	// Untraced: no traceparent, nothing sampled.
	exp.Reset()
	resp, err = r.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("plain"), Value: []byte("v")}))
	if err != nil {
		t.Fatal(err)
	}
	rec = eventRecord(ctx, t, r.srv, "plain", resp.Msg.Result.Version)
	if ev, err := intent.UnmarshalEvent(rec.Value); err != nil || ev.Trace != "" || len(rec.Headers) != 3 {
		t.Errorf("untraced event: %+v, %d headers, %v", ev, len(rec.Headers), err)
	}
	for _, s := range exp.GetSpans() {
		if s.SpanContext.IsSampled() {
			t.Errorf("span %s of an untraced write exported", s.Name)
		}
	}
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTracingCollectorDown: with tracing on and every write sampled but
// no collector listening, writes succeed and their events come; the lost
// spans are logged as a warning that says what to check.
func TestTracingCollectorDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/v1/traces"
	ln.Close() // nothing listens there now
	cfg := testConfig(t)
	cfg.Log.NoSync, cfg.Store.NoSync = true, true
	cfg.Tracing.Enabled, cfg.Tracing.Endpoint, cfg.Tracing.SampleRatio = true, down, 1
	var logs logbuf.Buffer
	srv, err := newServer(cfg, slog.New(slog.NewTextHandler(&logs, nil)), seams{})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	addr, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- srv.Run(sctx, func(a string) { addr <- a }) }()
	url := "http://" + <-addr
	producer := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	resp, err := producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")}))
	if err != nil {
		t.Fatal(err)
	}
	rec := eventRecord(ctx, t, srv, "k", resp.Msg.Result.Version)
	if ev, err := intent.UnmarshalEvent(rec.Value); err != nil || ev.Trace == "" {
		t.Fatalf("event %+v (%v): want it traced (sample ratio 1)", ev, err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "tracing.endpoint") {
		t.Fatalf("no warning about the lost spans:\n%s", logs.String())
	}
}
