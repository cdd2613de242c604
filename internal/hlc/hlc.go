// Package hlc is the hybrid logical clock that stamps every mutation with its
// version.
//
// A version is a uint64 laid out as
//
//	bit 63      : always 0, so versions fit a signed 64-bit column (SQL bigint)
//	bits 62..20 : physical time, milliseconds since 2020-01-01 UTC (43 bits,
//	              enough until the year 2298)
//	bits 19..10 : logical counter within the millisecond (10 bits)
//	bits  9..0  : proxy id (10 bits, 0..1023)
//
// Versions from one clock strictly increase. Versions from different proxies
// never collide, because the proxy id is part of the version, and they order
// by physical time first, so last-writer-wins across proxies follows wall
// clocks as closely as the clocks agree. When the logical counter overflows
// the clock borrows the next millisecond, so a burst above ~1M stamps per
// second per proxy runs slightly ahead of the wall clock and catches up after.
package hlc

import (
	"fmt"
	"sync"
	"time"
)

const (
	proxyBits   = 10
	logicalBits = 10
	// MaxProxyID is the largest proxy id a version can carry.
	MaxProxyID = 1<<proxyBits - 1
	maxLogical = 1<<logicalBits - 1
	lowBits    = proxyBits + logicalBits
)

// Epoch is the zero of the physical part of a version.
var Epoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// Clock stamps versions. It is safe for concurrent use.
type Clock struct {
	proxyID uint64
	now     func() time.Time

	mu   sync.Mutex
	last uint64 // physical<<logicalBits | logical of the last stamp
	// lead is the most, in ms, by which versions this clock stamped or
	// observed ran ahead of its wall clock since TakeLead last read it.
	lead uint64
}

// New returns a clock for the given proxy id. now may be nil for time.Now.
func New(proxyID uint32, now func() time.Time) (*Clock, error) {
	if proxyID > MaxProxyID {
		return nil, fmt.Errorf("hlc: proxy id %d out of range 0..%d", proxyID, MaxProxyID)
	}
	if now == nil {
		now = time.Now
	}
	return &Clock{proxyID: uint64(proxyID), now: now}, nil
}

// ProxyID returns the proxy id carried in every version of this clock.
func (c *Clock) ProxyID() uint32 { return uint32(c.proxyID) }

// Now returns a new version, strictly greater than every version this clock
// returned or observed before.
func (c *Clock) Now() uint64 {
	phys := physical(c.now())
	c.mu.Lock()
	next := phys << logicalBits
	if next <= c.last {
		next = c.last + 1 // same or earlier ms: bump the logical counter (carries into ms)
		c.lead = max(c.lead, c.last>>logicalBits-phys)
	}
	c.last = next
	c.mu.Unlock()
	return next<<proxyBits | c.proxyID
}

// Observe moves the clock forward so that every later version is greater
// than v (a version seen from another proxy, a store or a log).
func (c *Clock) Observe(v uint64) {
	hl := v >> proxyBits
	phys := physical(c.now())
	c.mu.Lock()
	if hl > c.last {
		c.last = hl
	}
	if ms := hl >> logicalBits; ms > phys {
		c.lead = max(c.lead, ms-phys)
	}
	c.mu.Unlock()
}

// TakeLead returns the most by which versions this clock stamped or
// observed ran ahead of its wall clock since the last call (0 if none),
// and starts over. A lead is another proxy's clock ahead of this one, or
// this host's clock set back: last-writer-wins then follows the clock
// that is ahead, and clocks apart by more than the resolver's dedupe
// horizon can duplicate events (DESIGN.md, "Clock skew").
func (c *Clock) TakeLead() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	lead := c.lead
	c.lead = 0
	return time.Duration(lead) * time.Millisecond
}

func physical(t time.Time) uint64 {
	ms := t.Sub(Epoch).Milliseconds()
	if ms < 0 {
		return 0
	}
	return uint64(ms)
}

// Time returns the physical time of a version, to the millisecond.
func Time(v uint64) time.Time {
	return Epoch.Add(time.Duration(v>>lowBits) * time.Millisecond)
}

// ProxyOf returns the proxy id of a version.
func ProxyOf(v uint64) uint32 { return uint32(v & MaxProxyID) }

// Logical returns the logical counter of a version.
func Logical(v uint64) uint32 { return uint32(v>>proxyBits) & maxLogical }

// At returns the smallest version whose physical time is t: every version
// stamped at or after t is >= At(t).
func At(t time.Time) uint64 { return physical(t) << lowBits }
