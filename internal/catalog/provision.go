package catalog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// making is the making of a table's topics that a refresh began
// (provisionBy).
type making struct {
	createdAt time.Time // of the table it makes them for
	began     time.Time
	done      chan struct{} // closed once served and err are set
	served    bool
	err       error
	// cancel ends it: a drop here of the table (remove) does not wait
	// for a making that the log does not answer.
	cancel context.CancelFunc
}

// stopMaking ends and forgets the making of name's topics, if any.
func (c *Catalog) stopMaking(name string) {
	c.makingMu.Lock()
	m := c.making[name]
	delete(c.making, name)
	c.makingMu.Unlock()
	if m != nil {
		m.cancel()
	}
}

// createMaking is the making of a table's topics by a create here
// (provisionLocked).
type createMaking struct {
	name      string
	createdAt time.Time // of the table it makes them for
	cancel    context.CancelCauseFunc
}

// errDroppedHere ends a create's making of a table's topics that a drop
// here of the table ended.
var errDroppedHere = errors.New("the table is being dropped here")

// startCreate registers the making of t's topics by a create here; done
// forgets it.
func (c *Catalog) startCreate(ctx context.Context, t Table) (_ context.Context, done func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	m := &createMaking{name: t.Name, createdAt: t.CreatedAt, cancel: cancel}
	c.makingMu.Lock()
	if c.creating == nil {
		c.creating = map[*createMaking]struct{}{}
	}
	c.creating[m] = struct{}{}
	c.makingMu.Unlock()
	return ctx, func() {
		c.makingMu.Lock()
		delete(c.creating, m)
		c.makingMu.Unlock()
		cancel(nil)
	}
}

// stopCreates ends the makings of t's topics by creates here: t is being
// dropped. Only t's (its created_at): a drop that arrives late leaves
// the making of a table created again since.
func (c *Catalog) stopCreates(t Table) {
	c.makingMu.Lock()
	defer c.makingMu.Unlock()
	for m := range c.creating {
		if m.name == t.Name && m.createdAt.Equal(t.CreatedAt) {
			m.cancel(errDroppedHere)
		}
	}
}

// droppedHere says so of err when a drop here ended ctx (stopCreates).
func droppedHere(ctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), errDroppedHere) {
		return fmt.Errorf("%w: %w", errDroppedHere, err)
	}
	return err
}

// forgetMakings ends and forgets the makings begun before a reload
// (began) that read entries whose table is not theirs to serve any more:
// gone, going or damaged, or created again since (a making of the new one
// begins then). Nothing else forgot them: no later refresh asked for them,
// and a making the log did not answer went on for good.
func (c *Catalog) forgetMakings(entries []entry, began time.Time) {
	read := make(map[string]entry, len(entries))
	for _, e := range entries {
		read[e.t.Name] = e
	}
	c.makingMu.Lock()
	defer c.makingMu.Unlock()
	for name, m := range c.making {
		e, ok := read[name]
		if m.began.Before(began) && (!ok || e.bad != nil || (e.t.State != Ready && e.t.State != Dropping) ||
			!e.t.CreatedAt.Equal(m.createdAt)) {
			delete(c.making, name)
			m.cancel()
		}
	}
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
			mctx, cancel := context.WithCancel(ctx)
			m, begun = &making{createdAt: t.CreatedAt, began: time.Now(), done: make(chan struct{}), cancel: cancel}, true
			c.making[t.Name] = m
			go func() {
				defer cancel()
				m.served, m.err = c.provision(mctx, t, seq)
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
// its topics under the exclusive topic lock of its name (topicLocks):
// after a local change, the topics are made only while the store still
// holds t's table ready or dropping, so that they do not come back after
// the drop (orphans, on which a create of the name with another partition
// count failed). A table gone or going is not served, without a problem.
func (c *Catalog) provision(ctx context.Context, t Table, seq uint64) (served bool, err error) {
	if err := c.releaseEarlier(ctx, t); err != nil {
		return false, fmt.Errorf("catalog: table %s is not served here: %w", t.Name, err)
	}
	if err := c.awaitReleases(ctx, t.Name); err != nil {
		return false, fmt.Errorf("catalog: table %s is not served here: %w", t.Name, err)
	}
	if err := c.topicLocks.acquire(ctx, t.Name, false); err != nil {
		return false, fmt.Errorf("catalog: table %s is not served here: waiting for a drop of it here: %w", t.Name, err)
	}
	defer c.topicLocks.release(t.Name, false)
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
		if errors.Is(err, intentlog.ErrOwnedElsewhere) && c.madeLater(t) {
			// t is stale: read before its drop elsewhere, a table of the
			// name created since made its topics here. Not served,
			// without a problem: reported, it stood as the later
			// table's, which is served.
			return false, nil
		}
		return false, fmt.Errorf("catalog: table %s is not served here: its topics cannot be made: %w", t.Name, err)
	}
	c.madeFor(t)
	return true, nil
}

// madeLater says whether this process made the topics of t's name for
// another table of the name, one the store held when releaseEarlier read
// it (it releases one the store no longer holds): created after t was
// read, whatever the created_at of each says. By created_at, a table
// created since on a host whose clock is behind the one that created t
// was earlier, and the making of the stale t a problem that no refresh
// cleared (catalog/<t> stood for the table served).
func (c *Catalog) madeLater(t Table) bool {
	c.makingMu.Lock()
	defer c.makingMu.Unlock()
	m, ok := c.made[t.Name]
	return ok && !m.CreatedAt.Equal(t.CreatedAt)
}

// topicLocks orders, per table name, this process's making of a table's
// topics after a read of its entry (provision: shared, makings go on
// together) and their deletion by a drop here (remove: exclusive), so
// that a making that read the table before the drop makes them first, not
// after. A wait ends with the waiter's context. A sync.RWMutex for every
// table did not: a making the log did not answer held a drop here up past
// its deadline, the drop of another table too, and every making that
// began meanwhile waited behind the drop (a waiting writer holds new
// readers). Names do not share topics, so one lock per name orders all
// that needs ordering. The zero value is ready.
type topicLocks struct {
	mu       sync.Mutex
	makers   map[string]int  // makings holding the name
	deleting map[string]bool // a deletion holds the name
	changed  chan struct{}   // closed at the next release (nil: nobody waits)
}

// acquire takes name's lock, exclusive or shared, or fails with ctx's
// error.
func (l *topicLocks) acquire(ctx context.Context, name string, exclusive bool) error {
	for {
		l.mu.Lock()
		if !l.deleting[name] && (!exclusive || l.makers[name] == 0) {
			if exclusive {
				if l.deleting == nil {
					l.deleting = map[string]bool{}
				}
				l.deleting[name] = true
			} else {
				if l.makers == nil {
					l.makers = map[string]int{}
				}
				l.makers[name]++
			}
			l.mu.Unlock()
			return nil
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release lets name's lock go (as acquired).
func (l *topicLocks) release(name string, exclusive bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if exclusive {
		delete(l.deleting, name)
	} else if l.makers[name]--; l.makers[name] <= 0 {
		delete(l.makers, name)
	}
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// provisionLocked makes t's topics under the shared topic lock of its
// name: a drop here of an earlier table of the name that deletes topics
// by name (unprovision) checks its entry and deletes them with no making
// of them between. A drop here of t itself ends the making (stopCreates),
// as it ends a refresh's: it waits for the lock, and a making the log
// does not answer held it up until its deadline.
func (c *Catalog) provisionLocked(ctx context.Context, t Table) error {
	ctx, done := c.startCreate(ctx, t)
	defer done()
	if err := c.releaseEarlier(ctx, t); err != nil {
		return droppedHere(ctx, err)
	}
	if err := c.awaitReleases(ctx, t.Name); err != nil {
		return droppedHere(ctx, err)
	}
	if err := c.topicLocks.acquire(ctx, t.Name, false); err != nil {
		return fmt.Errorf("waiting for a drop here of a table of the name: %w", droppedHere(ctx, err))
	}
	defer c.topicLocks.release(t.Name, false)
	if err := c.opts.Provisioner.Provision(ctx, t); err != nil {
		return droppedHere(ctx, err)
	}
	c.madeFor(t)
	return nil
}
