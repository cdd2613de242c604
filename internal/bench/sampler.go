package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/wail-cdc/wail/internal/latency"
)

// Phases of a sample.
const (
	phaseWarmup  = "warmup"
	phaseMeasure = "measure"
	phaseDrain   = "drain"
	phaseIdle    = "idle"
)

// Sample is one second of the run.
type Sample struct {
	T               float64             `json:"t"` // seconds since the bench started, at the end of the second
	Step            int                 `json:"step"`
	Phase           string              `json:"phase"` // warmup, measure, drain or idle
	TargetRate      float64             `json:"target_rate"`
	WritesPerSec    float64             `json:"writes_per_sec"` // acknowledged
	EventsPerSec    float64             `json:"events_per_sec"` // received by the subscriber
	Ack             latency.Percentiles `json:"ack"`
	E2E             latency.Percentiles `json:"e2e"`
	Delivery        latency.Percentiles `json:"delivery"` // resolver read -> subscriber
	Lag             int64               `json:"lag"`      // resolver lag in intents, -1 if unknown
	ReadsPerEvent   float64             `json:"reads_per_event"`
	IntentsPerEvent float64             `json:"intents_per_event"`
	Errors          int64               `json:"errors"`
	InFlight        int64               `json:"in_flight"`         // batches sent, not answered
	Pending         int                 `json:"pending"`           // acknowledged writes without an event yet
	SendDelayMaxMs  float64             `json:"send_delay_max_ms"` // how late the latest batch left
}

// sampleLoop takes a sample every second until ctx ends.
func (s *session) sampleLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := time.Now()
	prev, prevErr := s.scrape(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			cur, err := s.scrape(ctx)
			smp := s.sample(now, now.Sub(last).Seconds())
			if err == nil {
				smp.Lag = int64(cur.Lag)
				if prevErr == nil {
					smp.ReadsPerEvent, smp.IntentsPerEvent = perEvent(prev, cur)
				}
			}
			prev, prevErr, last = cur, err, now
			s.mu.Lock()
			s.samples = append(s.samples, smp)
			s.mu.Unlock()
			s.progress.sample(smp)
			s.matcher.Sweep(now)
		}
	}
}

// sample takes the windows of the last secs seconds.
func (s *session) sample(now time.Time, secs float64) Sample {
	w := s.rec.takeWindow()
	s.mu.Lock()
	p := s.phase
	s.mu.Unlock()
	smp := Sample{
		T: s.since(now), Step: p.step, Phase: phaseOf(p, now), TargetRate: p.rate,
		WritesPerSec: float64(w.acked) / secs, EventsPerSec: float64(w.events) / secs,
		Ack: w.ack, E2E: s.matcher.TakeWindow(), Delivery: w.delivery, Lag: -1, Errors: w.errors,
		InFlight: s.rec.inFlight.Load(), Pending: s.matcher.Pending(),
		SendDelayMaxMs: float64(w.delayMax) / 1e6,
	}
	if smp.Phase != phaseWarmup && smp.Phase != phaseMeasure {
		smp.TargetRate = 0
	}
	return smp
}

func phaseOf(p phase, now time.Time) string {
	switch {
	case p.from.IsZero() || p.finished:
		return phaseIdle
	case now.Before(p.from):
		return phaseWarmup
	case p.end.IsZero() || now.Before(p.end):
		return phaseMeasure
	}
	return phaseDrain
}

// progress prints the live line: rewritten in place on a terminal, one
// line per second otherwise.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	open     bool // a line is being rewritten
}

func newProgress(w io.Writer, terminal bool) *progress { return &progress{w: w, terminal: terminal} }

func (p *progress) sample(smp Sample) {
	line := fmt.Sprintf("t=%3.0fs step %d %-7s target %6.0f/s | writes %6.0f/s events %6.0f/s | ack p99 %s | e2e p50 %s p99 %s | lag %s | reads/ev %.2f | errors %d",
		smp.T, smp.Step, smp.Phase, smp.TargetRate, smp.WritesPerSec, smp.EventsPerSec,
		fmtMs(smp.Ack.P99, smp.Ack.Count), fmtMs(smp.E2E.P50, smp.E2E.Count), fmtMs(smp.E2E.P99, smp.E2E.Count),
		fmtLag(smp.Lag), smp.ReadsPerEvent, smp.Errors)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.terminal {
		fmt.Fprint(p.w, "\r"+line+"\x1b[K")
		p.open = true
		return
	}
	fmt.Fprintln(p.w, line)
}

// step prints the one-line verdict of a finished step.
func (p *progress) step(st Step) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLine()
	fmt.Fprintf(p.w, "step %d at %.0f writes/s: %.0f writes/s, e2e p99 %s, %s\n",
		st.Index, st.TargetRate, st.WritesPerSec, fmtMs(st.E2E.P99, st.E2E.Count), st.Verdict)
}

// done ends a line being rewritten.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLine()
}

func (p *progress) endLine() {
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
}

// fmtMs prints a latency in ms with 3 significant digits, "-" without data.
func fmtMs(ms float64, count int64) string {
	if count == 0 {
		return "-"
	}
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%.2fs", ms/1000)
	case ms >= 100:
		return fmt.Sprintf("%.0fms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1fms", ms)
	case ms >= 1:
		return fmt.Sprintf("%.2fms", ms)
	}
	return fmt.Sprintf("%.0fµs", ms*1000)
}

func fmtLag(lag int64) string {
	if lag < 0 {
		return "?"
	}
	return fmt.Sprint(lag)
}
