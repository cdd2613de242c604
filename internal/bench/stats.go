package bench

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/wail-cdc/wail/internal/latency"
)

// recorder collects what the senders and the subscriber see: ack
// latencies, counts and errors by kind. The step counters count measured
// writes only; the window ones (for the per-second samples) count all.
type recorder struct {
	mu       sync.Mutex
	ackWin   *hdrhistogram.Histogram
	ackTotal *hdrhistogram.Histogram
	// delivery: from the resolver's read (ChangeEvent.resolved_at) to the
	// event's arrival at the subscriber; one clock only (in-process, or a
	// server on this machine)
	delWin, delTotal *hdrhistogram.Histogram
	errs             map[string]int64 // measured
	errsWin          int64

	acked, superseded, sent atomic.Int64 // measured writes
	ackedWin                atomic.Int64
	events, eventsWin       atomic.Int64 // measured period / window
	inFlight                atomic.Int64 // batches sent, not answered
	delayWin, delayMax      atomic.Int64 // ns a batch started after its intended time

	// measuring is the measured period [from, to) in unix nanos; to is 0
	// while it lasts.
	from, to atomic.Int64
}

func newRecorder() *recorder {
	return &recorder{ackWin: latency.NewHistogram(), ackTotal: latency.NewHistogram(), delWin: latency.NewHistogram(), delTotal: latency.NewHistogram(), errs: map[string]int64{}}
}

// startStep resets the step counters; the measured period starts at from.
func (r *recorder) startStep(from time.Time) {
	r.mu.Lock()
	r.ackTotal.Reset()
	r.delTotal.Reset()
	r.errs = map[string]int64{}
	r.mu.Unlock()
	r.acked.Store(0)
	r.superseded.Store(0)
	r.sent.Store(0)
	r.events.Store(0)
	r.delayMax.Store(0)
	r.to.Store(0)
	r.from.Store(from.UnixNano())
}

// endMeasure ends the measured period at t.
func (r *recorder) endMeasure(t time.Time) { r.to.Store(t.UnixNano()) }

func (r *recorder) measuring(t time.Time) bool {
	n := t.UnixNano()
	to := r.to.Load()
	return n >= r.from.Load() && (to == 0 || n < to)
}

// started notes a batch of n writes starting delay after its intended time.
func (r *recorder) started(delay time.Duration, n int, measured bool) {
	r.inFlight.Add(1)
	storeMax(&r.delayWin, int64(delay))
	if measured {
		r.sent.Add(int64(n))
		storeMax(&r.delayMax, int64(delay))
	}
}

// answered records the answer of a batch: ok writes acknowledged after
// lat, superseded of them lost to a newer version.
func (r *recorder) answered(lat time.Duration, ok, superseded int, measured bool) {
	r.inFlight.Add(-1)
	if ok == 0 {
		return
	}
	r.mu.Lock()
	latency.RecordN(r.ackWin, lat, int64(ok))
	if measured {
		latency.RecordN(r.ackTotal, lat, int64(ok))
	}
	r.mu.Unlock()
	r.ackedWin.Add(int64(ok))
	if measured {
		r.acked.Add(int64(ok))
		r.superseded.Add(int64(superseded))
	}
}

// fail counts n writes that failed with kind.
func (r *recorder) fail(kind string, n int, measured bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errsWin += int64(n)
	if measured {
		r.errs[kind] += int64(n)
	}
}

// event counts an event that arrived at at, resolved at resolved (zero if
// unknown).
func (r *recorder) event(at, resolved time.Time) {
	r.eventsWin.Add(1)
	measured := r.measuring(at)
	if measured {
		r.events.Add(1)
	}
	if resolved.IsZero() {
		return
	}
	d := at.Sub(resolved)
	r.mu.Lock()
	latency.Record(r.delWin, d)
	if measured {
		latency.Record(r.delTotal, d)
	}
	r.mu.Unlock()
}

// window is what the sampler takes once a second.
type window struct {
	acked, events, errors int64
	ack, delivery         latency.Percentiles
	delayMax              time.Duration
}

func (r *recorder) takeWindow() window {
	r.mu.Lock()
	w := window{ack: latency.Summarize(r.ackWin), delivery: latency.Summarize(r.delWin), errors: r.errsWin}
	r.ackWin.Reset()
	r.delWin.Reset()
	r.errsWin = 0
	r.mu.Unlock()
	w.acked = r.ackedWin.Swap(0)
	w.events = r.eventsWin.Swap(0)
	w.delayMax = time.Duration(r.delayWin.Swap(0))
	return w
}

// totals returns the step's ack and delivery latencies and errors.
func (r *recorder) totals() (ack, delivery latency.Percentiles, errs map[string]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return latency.Summarize(r.ackTotal), latency.Summarize(r.delTotal), maps.Clone(r.errs)
}

func storeMax(a *atomic.Int64, v int64) {
	for {
		cur := a.Load()
		if v <= cur || a.CompareAndSwap(cur, v) {
			return
		}
	}
}
