package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/latency"
)

// stats are the run's counters.
type stats struct {
	writes, events, errors, superseded atomic.Int64

	mu      sync.Mutex
	lastErr string
}

func (s *stats) fail(n int64, msg string) {
	s.errors.Add(n)
	s.mu.Lock()
	s.lastErr = msg
	s.mu.Unlock()
}

func (s *stats) lastError() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// samples keeps the last few events for the periodic sample print.
type samples struct {
	mu   sync.Mutex
	last []*wailv1.SubscribeResponse
}

const sampleCount = 3

func (s *samples) offer(m *wailv1.SubscribeResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.last) == sampleCount {
		copy(s.last, s.last[1:])
		s.last = s.last[:sampleCount-1]
	}
	s.last = append(s.last, m)
}

func (s *samples) take() []*wailv1.SubscribeResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.last
	s.last = nil
	return out
}

const header = "writes/s  events/s  lag(intents)       p50       p99  errors"

// display prints a status line every tick and sample events every
// SampleEvery until ctx ends.
func (d *demo) display(ctx context.Context) {
	w := d.cfg.Out
	fmt.Fprintln(w, header)
	t := time.NewTicker(d.cfg.Tick)
	defer t.Stop()
	lastTick, lastSample := time.Now(), time.Now()
	var prevWrites, prevEvents int64
	for {
		select {
		case <-ctx.Done():
			if d.cfg.Terminal {
				fmt.Fprintln(w)
			}
			return
		case now := <-t.C:
			secs := now.Sub(lastTick).Seconds()
			lastTick = now
			writes, events := d.stats.writes.Load(), d.stats.events.Load()
			line := d.statusLine(ctx, float64(writes-prevWrites)/secs, float64(events-prevEvents)/secs)
			prevWrites, prevEvents = writes, events
			if now.Sub(lastSample) >= d.cfg.SampleEvery {
				lastSample = now
				d.printSamples(w)
			}
			if d.cfg.Terminal {
				fmt.Fprint(w, "\r"+line+"\x1b[K")
			} else {
				fmt.Fprintln(w, line)
			}
			d.matcher.Sweep(now)
		}
	}
}

// statusLine renders one line of the live display.
func (d *demo) statusLine(ctx context.Context, writesPerSec, eventsPerSec float64) string {
	lag := "?"
	if n, err := d.lag(ctx); err == nil {
		lag = fmt.Sprint(n)
	}
	l := d.matcher.TakeWindow()
	p50, p99 := "-", "-"
	if l.Count > 0 {
		p50, p99 = fmtDuration(ms(l.P50)), fmtDuration(ms(l.P99))
	}
	return fmt.Sprintf("%8.0f  %8.0f  %12s  %8s  %8s  %6d", writesPerSec, eventsPerSec, lag, p50, p99, d.stats.errors.Load())
}

// lag is the sum over partitions of intent end offset minus committed
// offset: intents the resolver has not committed yet.
func (d *demo) lag(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Tick/2)
	defer cancel()
	resp, err := d.cfg.Admin.DescribeTable(ctx, connect.NewRequest(&wailv1.DescribeTableRequest{Name: d.cfg.Table}))
	if err != nil {
		return 0, err
	}
	return Lag(resp.Msg), nil
}

// Lag sums intent end minus committed offsets over the partitions.
func Lag(r *wailv1.DescribeTableResponse) int64 {
	ends, committed := r.GetIntentEndOffsets(), r.GetCommittedOffsets()
	var lag int64
	for i := range min(len(ends), len(committed)) {
		lag += max(ends[i]-committed[i], 0)
	}
	return lag
}

// printSamples prints the latest few events as one line of JSON each,
// with key and value shown as text (the value as JSON when it is JSON).
func (d *demo) printSamples(w io.Writer) {
	evs := d.samples.take()
	if len(evs) == 0 {
		return
	}
	if d.cfg.Terminal {
		fmt.Fprint(w, "\r\x1b[K")
	}
	for _, m := range evs {
		if b, err := json.Marshal(readable(m)); err == nil {
			fmt.Fprintf(w, "  event %s\n", b)
		}
	}
}

// sample is an event as the demo shows it.
type sample struct {
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Op        string          `json:"op"`
	Key       string          `json:"key"`
	Version   uint64          `json:"version"`
	Value     json.RawMessage `json:"value,omitempty"`
	Covered   uint32          `json:"covered_intents"`
	EventID   string          `json:"event_id"`
}

func readable(m *wailv1.SubscribeResponse) sample {
	ev := m.GetEvent()
	s := sample{
		Partition: m.GetPartition(), Offset: m.GetOffset(), Op: strings.TrimPrefix(ev.GetOp().String(), "OP_"),
		Key: string(ev.GetKey()), Version: ev.GetVersion(), Covered: ev.GetCoveredIntents(), EventID: ev.GetEventId(),
	}
	if v := ev.GetValue(); len(v) > 0 {
		if json.Valid(v) {
			s.Value = v
		} else {
			s.Value, _ = json.Marshal(string(v))
		}
	}
	return s
}

// ms converts milliseconds (as in latency.Percentiles, whole microseconds)
// to a duration.
func ms(v float64) time.Duration {
	return time.Duration(math.Round(v*1000)) * time.Microsecond
}

func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%dµs", d.Microseconds())
}

// Summary is the outcome of a run.
type Summary struct {
	Elapsed    time.Duration       // time the writers ran
	Writes     int64               // acknowledged mutations
	Events     int64               // events received (probe excluded)
	Errors     int64               // failed mutations
	Superseded int64               // acknowledged as superseded
	Unmatched  int64               // acknowledged writes no event covered
	Latency    latency.Percentiles // write sent to first covering event
	LastError  string
}

// Coalescing is writes per event (0 without events).
func (s Summary) Coalescing() float64 {
	if s.Events == 0 {
		return 0
	}
	return float64(s.Writes) / float64(s.Events)
}

func (d *demo) summary(elapsed time.Duration) Summary {
	return Summary{
		Elapsed: elapsed, Writes: d.stats.writes.Load(), Events: d.stats.events.Load(),
		Errors: d.stats.errors.Load(), Superseded: d.stats.superseded.Load(),
		Unmatched: int64(d.matcher.Pending()), Latency: d.matcher.Total(), LastError: d.stats.lastError(),
	}
}

// Print writes the summary.
func (s Summary) Print(w io.Writer) {
	rate := func(n int64) float64 {
		if s.Elapsed <= 0 {
			return 0
		}
		return float64(n) / s.Elapsed.Seconds()
	}
	l := s.Latency
	fmt.Fprintf(w, "\nsummary (%s of writes)\n", s.Elapsed.Round(100*time.Millisecond))
	fmt.Fprintf(w, "  writes      %d acknowledged (%.0f/s), %d superseded, %d errors\n", s.Writes, rate(s.Writes), s.Superseded, s.Errors)
	fmt.Fprintf(w, "  events      %d (%.0f/s)\n", s.Events, rate(s.Events))
	fmt.Fprintf(w, "  coalescing  %.2f writes/event\n", s.Coalescing())
	fmt.Fprintf(w, "  latency     p50 %s  p99 %s  p99.9 %s  max %s  (%d writes matched)\n",
		fmtDuration(ms(l.P50)), fmtDuration(ms(l.P99)), fmtDuration(ms(l.P999)), fmtDuration(ms(l.Max)), l.Count)
	fmt.Fprintf(w, "  unmatched   %d writes without an event\n", s.Unmatched)
	if s.LastError != "" {
		fmt.Fprintf(w, "  last error  %s\n", s.LastError)
	}
}
