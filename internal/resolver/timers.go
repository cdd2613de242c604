package resolver

import (
	"container/heap"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
)

// The core's timers: a key waiting to be read again (backoff, the first
// read delay, a retry after a failed publish) has one timer of its
// current generation; Tick fires those that are due.

// firstRead returns when the first read of a new intent is due.
func (c *Core) firstRead(now time.Time, in *intent.Intent) time.Time {
	delay := c.p.FirstReadDelay
	if c.p.LocalLanding && in.ProxyID == c.p.LocalProxy {
		delay = 0 // the loop holds the read until the write returned
	}
	// Never wait longer than the delay itself, even if the proxy's clock
	// runs ahead of ours.
	at := in.CreatedAt.Add(delay)
	if limit := now.Add(delay); at.After(limit) {
		at = limit
	}
	return at
}

func (c *Core) wait(ks *keyState, at time.Time) {
	ks.phase = waiting
	ks.again = false
	c.timer(ks, at)
}

func (c *Core) timer(ks *keyState, at time.Time) {
	c.bump(ks)
	heap.Push(&c.timers, timer{at: at, key: ks.name, gen: ks.gen})
}

// bump gives a key a new timer generation, which makes its earlier timers
// stale. Generations are unique in the core, so that a timer of a key
// that was resolved and forgotten never fires for its next intents.
func (c *Core) bump(ks *keyState) {
	c.gen++
	ks.gen = c.gen
}

// Tick fires the timers due at now.
func (c *Core) Tick(now time.Time) {
	for len(c.timers) > 0 && !now.Before(c.timers[0].at) {
		t := heap.Pop(&c.timers).(timer)
		ks := c.keys[t.key]
		if ks == nil || ks.gen != t.gen {
			continue
		}
		switch ks.phase {
		case waiting:
			level := 0
			if !ks.needsCoverage() || rechecking(ks) {
				level = c.p.Levels - 1
			}
			if ks.again {
				c.reread(now, ks, level) // a failed read's retry
			} else {
				c.read(now, ks, level)
			}
		case retrying:
			c.resend(ks)
		}
	}
}

type timer struct {
	at  time.Time
	key string
	gen uint64
}

type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
