package resolver

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
)

// Following the catalog. With Config.Tables set, each partition loop asks
// on every commit tick whether its table is still one to resolve: a table
// that is being dropped, is gone or was created again since (another
// CreatedAt) stops the loop (drained and committed, not restarted); an
// altered visibility window applies to the intents the loop reads from then
// on, a shortened one only once the writes admitted under the old one
// ended (Core.SetWindow). Stopped tells a drop when this process resolves none of a table's
// partitions any more.

// runs counts the partitions of each table that run in this process.
type runs struct {
	mu    sync.Mutex
	n     map[tableID]int
	idle  map[tableID]chan struct{} // closed when n drops to 0
	parts map[string]int            // "table/partition" -> runs
}

// tableID tells a table from one of the same name created again after it
// was dropped: the partitions of the new one may run while those of the
// old one drain.
type tableID struct {
	name    string
	created int64 // CreatedAt, in Unix nanoseconds
}

func idOf(t catalog.Table) tableID { return tableID{t.Name, t.CreatedAt.UnixNano()} }

// enter records a running partition; the func it returns ends it.
func (r *runs) enter(t catalog.Table, p int32) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n, r.idle, r.parts = map[tableID]int{}, map[tableID]chan struct{}{}, map[string]int{}
	}
	id := idOf(t)
	if r.n[id] == 0 {
		r.idle[id] = make(chan struct{})
	}
	r.n[id]++
	part := fmt.Sprintf("%s/%d", t.Name, p)
	r.parts[part]++
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.n[id]--; r.n[id] == 0 {
			close(r.idle[id])
			delete(r.n, id)
			delete(r.idle, id)
		}
		if r.parts[part]--; r.parts[part] == 0 {
			delete(r.parts, part)
		}
	}
}

// Running names the partitions that run in this process ("table/p"),
// sorted: after a cancellation, those still draining.
func (r *Resolver) Running() []string {
	r.runs.mu.Lock()
	defer r.runs.mu.Unlock()
	out := make([]string, 0, len(r.runs.parts))
	for p := range r.runs.parts {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Stopped returns once no partition of table t, or of a table of its name
// created before it, runs in this process, or when ctx ends. The loops of
// a table that Config.Tables no longer reports stop within a commit
// interval plus their drain. Those of a table of the name created after
// t (created again once t was dropped) are not waited for: a release of
// t (dropped elsewhere) waited for them, for ever, by name. Those of an
// earlier one are (a drop here of a table created again elsewhere, before
// this process's refresh took the old one's partitions away: they read
// the topics of the name that the drop deletes).
func (r *Resolver) Stopped(ctx context.Context, t catalog.Table) error {
	r.runs.mu.Lock()
	var idle []chan struct{}
	for id, ch := range r.runs.idle {
		if id.name == t.Name && id.created <= idOf(t).created {
			idle = append(idle, ch)
		}
	}
	r.runs.mu.Unlock()
	for _, ch := range idle {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// current reports whether t is still to be resolved, as the catalog has
// it now (always, without Config.Tables).
func (r *Resolver) current(t catalog.Table) (catalog.Table, bool) {
	if r.cfg.Tables == nil {
		return t, true
	}
	now, ok := r.cfg.Tables(t.Name)
	if !ok || !now.CreatedAt.Equal(t.CreatedAt) {
		return catalog.Table{}, false
	}
	return now, true
}

// follow applies the catalog's current definition to the loop; stop is
// true when the table must no longer be resolved.
func (l *loop) follow() (stop bool) {
	t, ok := l.r.current(l.def)
	if !ok {
		l.r.cfg.Logger.Info("resolver stops a partition: its table was dropped", "table", l.table, "partition", l.partition)
		return true
	}
	if t.VisibilityWindow != l.def.VisibilityWindow {
		l.core.SetWindow(time.Now(), t.VisibilityWindow, catalog.SeenWithin(l.r.cfg.CatalogRefresh))
	}
	if t.MaxAttempts != l.def.MaxAttempts || t.MaxRetryTime != l.def.MaxRetryTime {
		l.core.SetRetryBounds(int(t.MaxAttempts), t.MaxRetryTime)
	}
	l.def = t
	l.holdIfStale()
	return false
}

// holdIfStale holds expiry while this process's catalog copy is stale
// (Config.CatalogFresh), from the loop's start and at each commit tick.
func (l *loop) holdIfStale() {
	if fresh := l.r.cfg.CatalogFresh; fresh != nil {
		l.core.HoldExpiry(fresh() != nil)
	}
}

// SetWindow changes the visibility window at now (the table was
// altered). Writes admitted under the old window may still be in flight,
// or be admitted by processes whose catalog is stale for up to grace
// (catalog.SeenWithin of catalog_refresh), their store write landing up to 3/4 of the old
// window after they began. So a longer window also moves the deadlines of
// the pending intents (they may be of writes admitted under it already),
// and a shorter one applies only to the intents ingested once no write
// admitted under the old one can land any more (grace plus the old
// window); until then they keep the old window.
func (c *Core) SetWindow(now time.Time, d, grace time.Duration) {
	old := c.window(now)
	switch {
	case d > old:
		for _, ks := range c.keys {
			for i := range ks.pending {
				ks.pending[i].deadline = ks.pending[i].deadline.Add(d - old)
			}
		}
		c.wide, c.wideUntil = 0, time.Time{}
	case d < old:
		c.wide, c.wideUntil = old, now.Add(grace+old)
	}
	c.p.Window = d
}

// window is the visibility window of an intent ingested at now.
func (c *Core) window(now time.Time) time.Duration {
	if now.Before(c.wideUntil) {
		return max(c.wide, c.p.Window)
	}
	return c.p.Window
}

// HoldExpiry stops (held) or lets again intents expire: while held, an
// intent whose window ended and whose write is not found is read again
// (with the read backoff) instead of being given up. The loop holds while
// its copy of the catalog is stale (Config.CatalogFresh): another process
// may have lengthened the table's window, and a write admitted there
// under the longer window may still land. Once the copy is read again,
// SetWindow moves the deadlines if the window grew, and HoldExpiry(false)
// lets those past them expire.
func (c *Core) HoldExpiry(held bool) { c.held = held }

// SetRetryBounds changes the table's retry bounds (altered); they apply to
// the next failure of each key.
func (c *Core) SetRetryBounds(attempts int, d time.Duration) {
	c.p.MaxAttempts, c.p.MaxRetryTime = attempts, d
}
