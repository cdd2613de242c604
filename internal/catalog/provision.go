package catalog

import (
	"context"
	"fmt"
	"time"
)

// making is the making of a table's topics that a refresh began
// (provisionBy).
type making struct {
	createdAt time.Time // of the table it makes them for
	began     time.Time
	done      chan struct{} // closed once served and err are set
	served    bool
	err       error
}

// provisionBy is provision, waited for until deadline (zero: to the end).
// The making goes on when the wait ends, and a later call for the table
// takes its outcome; meanwhile the table is not served here (the error
// says so). A refresh that waited for it to the end held the whole copy
// of the catalog up, and writes to every table stopped once it was stale
// (Fresh): one table whose topics cannot be made must not stop the
// others. An outcome is taken only for the table it was made for (its
// CreatedAt); a failure that an earlier refresh did not take is tried
// again.
func (c *Catalog) provisionBy(ctx context.Context, t Table, seq uint64, deadline time.Time) (served bool, err error) {
	if deadline.IsZero() {
		return c.provision(ctx, t, seq)
	}
	for range 2 {
		c.makingMu.Lock()
		m, begun := c.making[t.Name], false
		if m == nil {
			m, begun = &making{createdAt: t.CreatedAt, began: time.Now(), done: make(chan struct{})}, true
			c.making[t.Name] = m
			go func() {
				m.served, m.err = c.provision(ctx, t, seq)
				close(m.done)
			}()
		}
		c.makingMu.Unlock()
		if err := c.awaitMaking(ctx, t.Name, m, deadline); err != nil {
			return false, err
		}
		c.makingMu.Lock()
		if c.making[t.Name] == m {
			delete(c.making, t.Name)
		}
		c.makingMu.Unlock()
		if m.createdAt.Equal(t.CreatedAt) && (begun || m.err == nil) {
			return m.served, m.err
		}
		// Made for a table of the name dropped since, or failed before
		// this refresh (its context may have ended): make them again.
	}
	return false, fmt.Errorf("catalog: table %s is not served here yet: its topics are being made for another table of the name", t.Name)
}

// awaitMaking waits for m until deadline. A making that finished is
// taken even once the deadline passed (a select between the two would
// pick one at random: an earlier table's making may have used the whole
// wait of the refresh).
func (c *Catalog) awaitMaking(ctx context.Context, name string, m *making, deadline time.Time) error {
	select {
	case <-m.done:
		return nil
	default:
	}
	wait := time.NewTimer(time.Until(deadline))
	defer wait.Stop()
	select {
	case <-m.done:
		return nil
	case <-wait.C:
		return fmt.Errorf("catalog: table %s is not served here yet: the making of its topics has not finished "+
			"in %s; a later refresh serves it once it has", name, time.Since(m.began).Round(time.Millisecond))
	case <-ctx.Done():
		return fmt.Errorf("catalog: table %s is not served here: making its topics: %w", name, ctx.Err())
	}
}

// provision makes sure of a ready table's topics in this process; served
// reports success. The caller tells OnProblem how it went (report) when
// it caches the outcome, under opMu: an outcome not cached (a refresh
// that raced a local change) is not told after a newer one.
//
// t was read after seq (c.seq then), maybe before a drop here, which
// marks the table deleting (a local change: seq moves) and then deletes
// its topics under provMu: after a local change, the topics are made only
// while the store still holds t's table ready or dropping, so that they
// do not come back after the drop (orphans, on which a create of the name
// with another partition count failed). A table gone or going is not
// served, without a problem.
func (c *Catalog) provision(ctx context.Context, t Table, seq uint64) (served bool, err error) {
	c.provMu.RLock()
	defer c.provMu.RUnlock()
	if c.opSeq() != seq {
		now, found, err := c.load(ctx, t.Name)
		switch {
		case err != nil:
			return false, fmt.Errorf("catalog: table %s is not served here: reading its entry: %w", t.Name, err)
		case !found || !now.t.CreatedAt.Equal(t.CreatedAt) || (now.t.State != Ready && now.t.State != Dropping):
			return false, nil
		}
	}
	if err := c.opts.Provisioner.Provision(ctx, t); err != nil {
		return false, fmt.Errorf("catalog: table %s is not served here: its topics cannot be made: %w", t.Name, err)
	}
	return true, nil
}
