package catalog

import (
	"context"
	"fmt"
)

// runReleases runs Options.Release for the tables a refresh found dropped
// (or dropped and created anew) elsewhere, and returns their failures.
func (c *Catalog) runReleases(ctx context.Context, release []Table) []error {
	if c.opts.Release == nil {
		return nil
	}
	var errs []error
	for _, t := range release {
		if err := c.release(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("catalog: table %s was dropped elsewhere; releasing it here: %w", t.Name, err))
		} else {
			c.unmade(t)
		}
	}
	return errs
}

// release runs Options.Release for t and tells Options.OnRelease how it
// ended: a release that fails is tried again (by the next refresh, or the
// next making of the name), and said meanwhile.
func (c *Catalog) release(ctx context.Context, t Table) error {
	err := c.opts.Release(ctx, t)
	if c.opts.OnRelease != nil && ctx.Err() == nil {
		c.opts.OnRelease(t, err)
	}
	return err
}

// madeFor notes that this process made t's topics (under the topic lock
// of its name): until a table of the name is made again here, the topics
// on a log of this process's own are t's (ReleaseTopics). A making for an
// earlier table of the name than the one noted (a refresh's, which read
// the table before it was dropped elsewhere, ending after a create here
// made the new table's) leaves the note: the topics, the same by name,
// are the new table's. Noted as the earlier table's, the release of the
// new one skipped them, and they stayed on the log for good.
func (c *Catalog) madeFor(t Table) {
	c.makingMu.Lock()
	defer c.makingMu.Unlock()
	if c.made == nil {
		c.made = map[string]Table{}
	}
	if m, ok := c.made[t.Name]; ok && m.CreatedAt.After(t.CreatedAt) {
		return
	}
	c.made[t.Name] = t
}

// unmade forgets that this process made t's topics: they were deleted.
func (c *Catalog) unmade(t Table) {
	c.makingMu.Lock()
	defer c.makingMu.Unlock()
	if m, ok := c.made[t.Name]; ok && m.CreatedAt.Equal(t.CreatedAt) {
		delete(c.made, t.Name)
	}
}

// releaseEarlier releases (Options.Release), before t's topics are made
// here, the topics this process made for an earlier table of the name
// that neither a drop nor a release here deleted: the earlier table was
// dropped elsewhere (t holds the name now) and this process's refresh
// did not see it yet, or its release failed. A create here within a
// refresh of the drop took them over on a log of this process's own, the
// dropped table's records included, and no refresh released them (the
// next one found t). The earlier table is released only once the store
// no longer holds it.
func (c *Catalog) releaseEarlier(ctx context.Context, t Table) error {
	if c.opts.Release == nil {
		return nil
	}
	if err := c.awaitReleases(ctx, t.Name); err != nil { // the refresh's, which may release it
		return err
	}
	c.makingMu.Lock()
	old, ok := c.made[t.Name]
	c.makingMu.Unlock()
	if !ok || old.CreatedAt.Equal(t.CreatedAt) {
		return nil
	}
	// Only while the store no longer holds it: t may be stale (a
	// refresh's making, or a create's, for a table read before its drop
	// elsewhere), and old the table of the name created since through
	// this process, live. Released, it lost its topics, records and all.
	// Gone, it does not come back.
	now, found, err := c.load(ctx, t.Name)
	switch {
	case err != nil:
		return fmt.Errorf("reading the entry of the name: %w", err)
	case found && now.bad != nil:
		return fmt.Errorf("reading the entry of the name: %w", now.bad)
	case found && now.t.CreatedAt.Equal(old.CreatedAt):
		return nil
	}
	defer c.releasesBegin([]Table{old})()
	if err := c.release(ctx, old); err != nil {
		return fmt.Errorf("releasing the topics of the table of the name dropped elsewhere: %w", err)
	}
	c.unmade(old)
	return nil
}

// ReleaseTopics lets go, with del, of the topics of t (Options.Release:
// another process dropped t, maybe created the name again): it deletes
// them on a log of this process's own, which the dropping process cannot,
// and forgets them on Kafka's (which also stops the resolver's group
// consuming them). Under the exclusive topic lock of the name, and only
// while they are still t's, no table of the name having been made here
// since. By name, without the lock, a
// create of the name through this process between the refresh's decision
// and the deletion lost the topics it had just made (a ready table that
// could not take writes, or whose acknowledged writes were lost). The
// makings of the name's topics here wait meanwhile for the release
// (awaitReleases): they make the new table's after the deletion, rather
// than take over the dropped table's topics with its records.
func (c *Catalog) ReleaseTopics(ctx context.Context, t Table, del func(context.Context) error) error {
	if err := c.topicLocks.acquire(ctx, t.Name, true); err != nil {
		return fmt.Errorf("waiting for this process's making of its topics to end: %w", err)
	}
	defer c.topicLocks.release(t.Name, true)
	c.makingMu.Lock()
	m, ok := c.made[t.Name]
	c.makingMu.Unlock()
	if !ok || !m.CreatedAt.Equal(t.CreatedAt) {
		return nil // deleted here already, or made here since for a table of the name: its topics now
	}
	if err := del(ctx); err != nil {
		return err
	}
	c.unmade(t)
	return nil
}

// releasesBegin registers the releases of ts that a refresh is about to
// run (call under opMu, as the refresh caches its outcome): a making of
// a table of their names here, begun from then on, waits for them
// (awaitReleases). end says they ended.
func (c *Catalog) releasesBegin(ts []Table) (end func()) {
	if len(ts) == 0 || c.opts.Release == nil {
		return func() {}
	}
	c.makingMu.Lock()
	if c.releasing == nil {
		c.releasing = map[string]int{}
	}
	for _, t := range ts {
		c.releasing[t.Name]++
	}
	c.makingMu.Unlock()
	return func() {
		c.makingMu.Lock()
		defer c.makingMu.Unlock()
		for _, t := range ts {
			if c.releasing[t.Name]--; c.releasing[t.Name] <= 0 {
				delete(c.releasing, t.Name)
			}
		}
		if c.released != nil {
			close(c.released)
			c.released = nil
		}
	}
}

// awaitReleases waits until no release of a table of the name runs here
// (releasesBegin), or fails with ctx's error.
func (c *Catalog) awaitReleases(ctx context.Context, name string) error {
	for {
		c.makingMu.Lock()
		if c.releasing[name] == 0 {
			c.makingMu.Unlock()
			return nil
		}
		if c.released == nil {
			c.released = make(chan struct{})
		}
		released := c.released
		c.makingMu.Unlock()
		select {
		case <-released:
		case <-ctx.Done():
			return fmt.Errorf("waiting for this process's release of the topics of a table of the name dropped elsewhere: %w", ctx.Err())
		}
	}
}

// releaseUnheld releases (Options.Release) the topics this process made
// for tables the store no longer holds that no refresh released: noted
// at Open from what the log's topics were made for (OwnedReader), the
// tables dropped elsewhere while this process was down (never served
// since), or one whose release failed. released are the tables this
// refresh released already; loaded what it read. A name the store holds
// ready or dropping under another table is left to the making of that
// table's topics here, which releases the earlier one first
// (releaseEarlier); a name whose entry cannot be read is left too.
func (c *Catalog) releaseUnheld(ctx context.Context, loaded map[string]entry, released []Table) []error {
	if c.opts.Release == nil {
		return nil
	}
	skip := make(map[string]bool, len(released))
	for _, t := range released {
		skip[t.Name] = true
	}
	c.makingMu.Lock()
	made := make([]Table, 0, len(c.made))
	for _, m := range c.made {
		made = append(made, m)
	}
	c.makingMu.Unlock()
	var unheld []Table
	c.mu.RLock() // loaded is cached (c.tables): this process's changes change it
	for _, m := range made {
		e, ok := loaded[m.Name]
		if !skip[m.Name] && (!ok || (e.bad == nil && !e.t.CreatedAt.Equal(m.CreatedAt) &&
			e.t.State != Ready && e.t.State != Dropping)) {
			unheld = append(unheld, m)
		}
	}
	c.mu.RUnlock()
	var errs []error
	for _, m := range unheld {
		if err := c.releaseGone(ctx, m); err != nil {
			errs = append(errs, fmt.Errorf("catalog: table %s was dropped elsewhere; releasing it here: %w", m.Name, err))
		}
	}
	return errs
}

// releaseGone releases m, whose topics this process made (as Catalog.made
// noted after the refresh read the store), once the store, read again,
// no longer holds it. The entry of a table is saved before its topics are
// made, and a created_at is never held again: gone now, m was dropped,
// and a table of the name made here since is not released
// (ReleaseTopics: only while made still notes m). Read before made, the
// store could miss a table created here since, live, whose topics the
// release deleted.
func (c *Catalog) releaseGone(ctx context.Context, m Table) error {
	gone, err := c.absent(ctx, m)
	if err != nil || !gone {
		return err
	}
	defer c.releasesBegin([]Table{m})()
	if err := c.release(ctx, m); err != nil {
		return err
	}
	c.unmade(m)
	return nil
}
