package client

import (
	"time"
)

// Late deliveries (DESIGN.md, "The producer client"). A batch that the
// network holds (a connection the producer found dead and gave up, still
// open on the server's side) reaches the server whenever it comes; were
// it stamped then, after the producer wrote its keys again, it would
// overwrite those newer writes. So each batch carries stamp_before, a
// time of its server's monotonic clock past which the server refuses to
// stamp it, and the keys of a batch lost with its stream are fenced until
// that time has surely passed on the server.

// serverClock estimates a stream's server's monotonic clock (server_time,
// nanoseconds from an origin of that process) from its answers: the
// server read its clock as it sent the answer, so at any later moment its
// time is at least that plus the time elapsed since the answer arrived,
// less what the two clocks' rates may differ by (driftAllowance). The
// last answer counts: an estimate from an old one would carry that drift
// for longer. The estimate is low by the answer's one-way trip, which
// only brings the bound earlier; a batch refused for a bound set too
// early is answered with the time to correct it.
type serverClock struct {
	at    time.Time // when the last answer with a server_time arrived (monotonic)
	v     uint64    // its server_time
	known bool
}

// driftAllowance is the most the local clock's rate is taken to exceed
// the server's, as a fraction of elapsed time (1/5000: 200 ppm, twice a
// common crystal's tolerance; clocks kept by NTP differ far less).
const driftAllowance = 5000

// observe takes a server_time answered at local time at (0: the server
// did not tell it).
func (c *serverClock) observe(v uint64, at time.Time) {
	if v == 0 {
		return
	}
	c.at, c.v, c.known = at, v, true
}

// stampBefore is the stamp_before of a batch sent at local time at: the
// server's time then, as low as it can be, plus window; 0 (no bound)
// until a server_time was answered, or with no window.
func (c *serverClock) stampBefore(at time.Time, window time.Duration) uint64 {
	if !c.known || window <= 0 {
		return 0
	}
	since := max(at.Sub(c.at), 0)
	return c.v + uint64(since-since/driftAllowance) + uint64(window)
}

// stampWindow is how long after it sent a batch the producer lets the
// server stamp it: at least base, 5/6 of the fence (5 s of
// FenceAfterBreak), so that the 1 s left covers the proxies' clocks
// differing (a retry may go to another proxy) and the time from the
// server's check to its stamp; more after batches were refused for
// reaching their stamp too late, twice the slowest recent send-to-answer
// time of such a refusal (a batch that waits behind the bytes of the
// batches before it, or in its table's merge queue, would otherwise be
// refused again and again), at most maxWindowFactor times base.
type stampWindow struct {
	base time.Duration
	slow time.Duration // the slowest recent send-to-answer time of a refusal, less 1/8 at each answer
}

// newStampWindow returns the window of a producer whose fence is fence.
// A fence shortened below 120 ms (tests) leaves no room for a bound (an
// estimate of the server's clock is low by up to a round trip): none.
func newStampWindow(fence time.Duration) stampWindow {
	base := fence - fence/6
	if base < minStampWindow {
		base = 0
	}
	return stampWindow{base: base}
}

// minStampWindow is the least base window that bounds stamping.
const minStampWindow = 100 * time.Millisecond

// maxWindowFactor bounds the window at that many times its base (1 min
// with FenceAfterBreak): a lost batch's keys wait up to that long.
const maxWindowFactor = 12

// answered counts an answer, that came took after its batch was sent,
// refusing a write unstamped (its bound passed, or the server's).
func (w *stampWindow) answered(took time.Duration) {
	w.slow = max(took, w.slow-w.slow/8)
}

// settled counts an answer that says nothing of the window (its batch
// was stamped in time): the slowest time decays.
func (w *stampWindow) settled() {
	w.slow -= w.slow / 8
}

// get is the window of a batch sent now (0: none).
func (w *stampWindow) get() time.Duration {
	if w.base == 0 {
		return 0
	}
	return min(max(w.base, 2*w.slow), maxWindowFactor*w.base)
}
