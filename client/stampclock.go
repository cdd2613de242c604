package client

import (
	"time"

	"github.com/wail-cdc/wail/internal/hlc"
)

// serverClock estimates the server's clock from the versions answered,
// for each batch's stamp_before: a version was stamped before its answer
// arrived, so at any later moment the server's time is at least the
// version's time plus the time elapsed since the answer arrived. It keeps
// the largest such estimate (the closest to the server's time; an
// estimate is low by at most the answer's round trip).
type serverClock struct {
	base   time.Time     // a monotonic reading that the local times are counted from
	offset time.Duration // the server's time since hlc.Epoch, minus the local time since base
	known  bool
}

// observe takes a version answered at local time at.
func (c *serverClock) observe(v uint64, at time.Time) {
	if v == 0 {
		return
	}
	if c.base.IsZero() {
		c.base = at
	}
	off := hlc.Time(v).Sub(hlc.Epoch) - at.Sub(c.base)
	if !c.known || off > c.offset {
		c.offset, c.known = off, true
	}
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
