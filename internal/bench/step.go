package bench

import (
	"context"
	"errors"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/latency"
)

// Step is the result of one constant-rate period.
type Step struct {
	Index      int     `json:"index"`
	TargetRate float64 `json:"target_rate"`
	// StartT and MeasureT are when the warm-up and the measured period
	// began, in seconds since the bench started (as Sample.T).
	StartT   float64 `json:"start_t"`
	MeasureT float64 `json:"measure_t"`
	// Seconds is the measured period: from the end of the warm-up until the
	// last measured write was answered (longer than --duration when the
	// target fell behind).
	Seconds      float64             `json:"seconds"`
	Sent         int64               `json:"sent"`
	Acked        int64               `json:"acked"`
	Superseded   int64               `json:"superseded"`
	WritesPerSec float64             `json:"writes_per_sec"`
	Events       int64               `json:"events"`
	EventsPerSec float64             `json:"events_per_sec"`
	Ack          latency.Percentiles `json:"ack"`
	E2E          latency.Percentiles `json:"e2e"`
	// Delivery is from the resolver's read of an event's state to its
	// arrival at the subscriber (meaningful on one clock only).
	Delivery        latency.Percentiles `json:"delivery"`
	Unmatched       int64               `json:"unmatched"`
	Untracked       int64               `json:"untracked"`
	ReadsPerEvent   float64             `json:"reads_per_event"`
	IntentsPerEvent float64             `json:"intents_per_event"`
	MaxLag          int64               `json:"max_lag"`
	LagSlope        float64             `json:"lag_slope_per_sec"`
	LagGrowing      bool                `json:"lag_growing"`
	MaxSendDelayMs  float64             `json:"max_send_delay_ms"`
	Errors          int64               `json:"errors"`
	ErrorsByKind    map[string]int64    `json:"errors_by_kind"`
	Sustainable     bool                `json:"sustainable"`
	Verdict         string              `json:"verdict"`
	Interrupted     bool                `json:"interrupted"`
}

// runStep sends at rate for the warm-up and then dur, drains, and returns
// the step's result.
func (s *session) runStep(ctx context.Context, idx int, rate float64, dur time.Duration) Step {
	start := time.Now().Add(5 * time.Millisecond)
	from := start.Add(s.o.Warmup)
	s.matcher.ResetTotal()
	s.rec.startStep(from)
	s.setPhase(phase{step: idx, rate: rate, from: from})
	bg := context.WithoutCancel(ctx)
	before := make(chan serverCounters, 1)
	timer := time.AfterFunc(time.Until(from), func() { c, _ := s.scrape(bg); before <- c })
	sched := Schedule{Start: start, Rate: rate, Batch: s.o.Batch, Duration: s.o.Warmup + dur}
	Dispatch(ctx, sched, s.o.Concurrency, func(w int, d Due) { s.send(ctx, w, d, !d.At.Before(from)) })
	end := time.Now()
	s.rec.endMeasure(end)
	s.setPhase(phase{step: idx, rate: rate, from: from, end: end})
	after, _ := s.scrape(bg)
	var b serverCounters
	if timer.Stop() {
		b = after // interrupted during the warm-up
	} else {
		b = <-before
	}
	st := Step{Index: idx, TargetRate: rate, StartT: s.since(start), MeasureT: s.since(from),
		Seconds: max(end.Sub(from).Seconds(), 0), Interrupted: ctx.Err() != nil}
	st.ReadsPerEvent, st.IntentsPerEvent = perEvent(b, after)
	st.Unmatched = s.drain(ctx, s.o.FindMax)
	s.setPhase(phase{step: idx, rate: rate, from: from, end: end, finished: true})
	s.fillStep(&st)
	judge(&st, s.o.MaxP99)
	s.progress.step(st)
	return st
}

// fillStep adds the counters and latencies of the step.
func (s *session) fillStep(st *Step) {
	st.Sent, st.Acked, st.Superseded = s.rec.sent.Load(), s.rec.acked.Load(), s.rec.superseded.Load()
	st.Events = s.rec.events.Load()
	if st.Seconds > 0 {
		st.WritesPerSec = float64(st.Acked) / st.Seconds
		st.EventsPerSec = float64(st.Events) / st.Seconds
	}
	st.Ack, st.Delivery, st.ErrorsByKind = s.rec.totals()
	for _, n := range st.ErrorsByKind {
		st.Errors += n
	}
	st.E2E = s.matcher.Total()
	st.Untracked = s.matcher.Untracked()
	st.MaxSendDelayMs = float64(s.rec.delayMax.Load()) / 1e6
	var lags []float64
	for _, smp := range s.stepSamples(st.Index) {
		if smp.Phase == phaseMeasure && smp.Lag >= 0 {
			lags = append(lags, float64(smp.Lag))
			st.MaxLag = max(st.MaxLag, smp.Lag)
		}
	}
	st.LagSlope, st.LagGrowing = lagGrowth(lags, st.TargetRate, s.o.Batch)
}

// send writes one batch and records its answer.
func (s *session) send(ctx context.Context, worker int, d Due, measured bool) {
	muts := s.work.Next(s.rngs[worker], s.o.Batch)
	s.rec.started(time.Since(d.At), len(muts), measured)
	if s.tgt.batcher != nil {
		s.sendOne(ctx, muts[0], d, measured)
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.RequestTimeout)
	resp, err := s.tgt.producer.Write(rctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: muts}))
	cancel()
	lat := time.Since(d.At)
	kind := ""
	switch {
	case err != nil:
		kind = connect.CodeOf(err).String()
	case len(resp.Msg.GetResults()) != len(muts):
		kind = "wrong_result_count"
	}
	if kind != "" {
		s.rec.fail(kind, len(muts), measured)
		s.rec.answered(lat, 0, 0, measured)
		return
	}
	ok, superseded := 0, 0
	for i, r := range resp.Msg.GetResults() {
		switch {
		case r.GetError() != nil:
			s.rec.fail(r.GetError().GetCode(), 1, measured)
		case !r.GetIntentLogged():
			s.rec.fail("intent_not_logged", 1, measured)
		default:
			ok++
			if r.GetSuperseded() {
				superseded++
			}
			s.matcher.Acked(muts[i].GetTable(), muts[i].GetKey(), r.GetVersion(), d.At, measured)
		}
	}
	s.rec.answered(lat, ok, superseded, measured)
}

// sendOne writes one mutation through the producer client (--producer)
// and records its answer.
func (s *session) sendOne(ctx context.Context, m *wailv1.Mutation, d Due, measured bool) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.RequestTimeout)
	res, err := s.tgt.batcher.Write(rctx, m)
	cancel()
	lat := time.Since(d.At)
	if err != nil {
		kind := connect.CodeOf(err).String()
		var werr *client.WriteError
		if errors.As(err, &werr) {
			kind = werr.Code.String()
		}
		s.rec.fail(kind, 1, measured)
		s.rec.answered(lat, 0, 0, measured)
		return
	}
	superseded := 0
	if res.Superseded {
		superseded = 1
	}
	s.matcher.Acked(m.GetTable(), m.GetKey(), res.Version, d.At, measured)
	s.rec.answered(lat, 1, superseded, measured)
}

// drain waits until every acknowledged write is matched (and, with
// waitLag, the resolver has caught up), the drain time passes or the run
// fails; then it gives up on what is left and returns how many measured
// writes were unmatched. After an interruption it waits 2 s at most.
func (s *session) drain(ctx context.Context, waitLag bool) int64 {
	limit := s.o.Drain
	if ctx.Err() != nil {
		limit = min(limit, 2*time.Second)
	}
	deadline := time.Now().Add(limit)
	bg := context.WithoutCancel(ctx)
	for time.Now().Before(deadline) && s.failed() == nil {
		if s.matcher.Pending() == 0 {
			if !waitLag {
				break
			}
			if c, err := s.scrape(bg); err == nil && c.Lag == 0 {
				break
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	return s.matcher.GiveUp(time.Now())
}

func (s *session) scrape(ctx context.Context) (serverCounters, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return s.scr.scrape(ctx)
}

func (s *session) since(t time.Time) float64 { return t.Sub(s.start).Seconds() }

func (s *session) setPhase(p phase) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

func (s *session) stepSamples(step int) []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Sample
	for _, smp := range s.samples {
		if smp.Step == step {
			out = append(out, smp)
		}
	}
	return out
}
