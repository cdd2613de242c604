package resolver

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/telemetry"
)

// maxLinks bounds the links of an event's span to the traces of the
// other intents it covers (coalescing).
const maxLinks = 32

// eventSpans are the spans of a traced event on its way to the bus: the
// resolution (a child of the newest traced intent's write, linked to the
// others it covers), its store reads (children, recorded from the core's
// stats) and its publish.
type eventSpans struct {
	resolve, publish trace.Span
}

// traceEvents starts the spans of the traced events of a publish job
// and stamps each such event with its publish span's traceparent.
// Nothing when tracing is off or no event is traced.
func (l *loop) traceEvents(j *pubJob) {
	tr := l.r.cfg.Tracing
	if !tr.On() {
		return
	}
	now := time.Now()
	for i := range j.events {
		e := &j.events[i]
		st, ok := l.core.EventStats(e.Key)
		if !ok || len(st.Traces) == 0 {
			continue
		}
		parent, ok := telemetry.ParseTraceparent(st.Traces[0])
		if !ok {
			continue
		}
		var links []trace.Link
		for _, tp := range st.Traces[1:min(len(st.Traces), maxLinks+1)] {
			if sc, ok := telemetry.ParseTraceparent(tp); ok {
				links = append(links, trace.Link{SpanContext: sc})
			}
		}
		start := st.FirstRead
		if start.IsZero() {
			start = now
		}
		ctx, resolve := tr.Start(trace.ContextWithRemoteSpanContext(context.Background(), parent), "wail.resolve",
			trace.WithTimestamp(start), trace.WithLinks(links...), trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(attribute.String("wail.table", l.table), attribute.Int("wail.partition", int(l.partition)),
				attribute.Int64("wail.version", int64(e.Version)), attribute.Int("wail.covered_intents", int(e.CoveredIntents)),
				attribute.Int("wail.reads", st.Reads)))
		for _, rs := range st.Spans {
			_, read := tr.Start(ctx, "wail.store.read", trace.WithTimestamp(rs.Asked),
				trace.WithAttributes(attribute.Int("wail.read_level", int(rs.Level))))
			if rs.Err {
				read.SetStatus(codes.Error, "read failed")
			}
			end := rs.Answered
			if end.IsZero() {
				end = now
			}
			read.End(trace.WithTimestamp(end))
		}
		pctx, publish := tr.Start(ctx, "wail.publish", trace.WithTimestamp(now), trace.WithSpanKind(trace.SpanKindProducer))
		e.Trace = telemetry.Traceparent(trace.SpanContextFromContext(pctx))
		if j.spans == nil {
			j.spans = map[string]*eventSpans{}
		}
		j.spans[string(e.Key)] = &eventSpans{resolve: resolve, publish: publish}
	}
}

// endTraces ends the spans of a finished job: ok events succeeded, the
// others failed with their error (a retry traces again).
func (j *pubJob) endTraces(now time.Time) {
	if j.spans == nil {
		return
	}
	end := func(e *intent.Event, err error) {
		s := j.spans[string(e.Key)]
		if s == nil {
			return
		}
		delete(j.spans, string(e.Key))
		if err != nil {
			s.publish.SetStatus(codes.Error, err.Error())
			s.resolve.SetStatus(codes.Error, "publish failed")
		}
		s.publish.End(trace.WithTimestamp(now))
		s.resolve.End(trace.WithTimestamp(now))
	}
	for i := range j.ok {
		end(&j.ok[i], nil)
	}
	for i := range j.fails {
		end(&j.fails[i].Event, j.fails[i].Err)
	}
	for _, s := range j.spans { // neither (the loop stopped): unfinished
		s.publish.SetStatus(codes.Error, "not published (the resolver stopped)")
		s.publish.End(trace.WithTimestamp(now))
		s.resolve.End(trace.WithTimestamp(now))
	}
}
