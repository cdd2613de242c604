package client

import (
	"time"

	"github.com/wail-cdc/wail/internal/hlc"
)

// serverClock estimates a stream's server's clock from the server_time of
// its answers, for each batch's stamp_before: the server read its clock
// as it sent the answer, so at any later moment its time is at least that
// plus the time elapsed since the answer arrived. The last answer counts
// (low by its one-way trip, which only brings the bound earlier), so the
// estimate follows a server's clock that steps either way, and a batch
// refused for a bound set too early is answered with the time to correct
// it.
type serverClock struct {
	base   time.Time     // a monotonic reading that the local times are counted from
	offset time.Duration // the server's time since hlc.Epoch, minus the local time since base
	known  bool
}

// observe takes a server_time answered at local time at (0: the server
// did not tell it).
func (c *serverClock) observe(v uint64, at time.Time) {
	if v == 0 {
		return
	}
	if c.base.IsZero() {
		c.base = at
	}
	c.offset, c.known = hlc.Time(v).Sub(hlc.Epoch)-at.Sub(c.base), true
}

// stampBefore is the stamp_before of a batch sent at local time at: the
// server's time then plus window, as a version; 0 (no bound) until a
// version was answered, or with no window.
func (c *serverClock) stampBefore(at time.Time, window time.Duration) uint64 {
	if !c.known || window <= 0 {
		return 0
	}
	return hlc.At(hlc.Epoch.Add(c.offset + at.Sub(c.base) + window))
}
