package catalog

import (
	"bytes"
	"slices"

	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wail-cdc/wail/internal/store"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// maxSwaps bounds how often a change retries after losing a swap to
// another process; more means the entry changes faster than we can look.
const maxSwaps = 16

// errLost: a swap lost to a concurrent change; look again.
var errLost = errors.New("catalog entry changed concurrently")

// tableEntries reads the catalog's table entries, skipping the entries of other
// state kept with it (store.ReservedPrefix).
func (c *Catalog) tableEntries(ctx context.Context) ([]store.Table, error) {
	rows, err := c.backend.Tables(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(rows, func(r store.Table) bool { return !store.IsTableEntry(r.Name) }), nil
}

// load reads one entry fresh from the store (found false: absent).
func (c *Catalog) load(ctx context.Context, name string) (e entry, found bool, err error) {
	rows, err := c.tableEntries(ctx)
	if err != nil {
		return entry{}, false, err
	}
	for _, r := range rows {
		if r.Name == name {
			return decodeEntry(r), true, nil // bad: the caller decides
		}
	}
	return entry{}, false, nil
}

// swap saves t in place of old (nil: absent) and caches it; deleted swaps
// old for nothing. It fails with errLost when the store holds something
// else.
func (c *Catalog) swap(ctx context.Context, old []byte, t Table, served, deleted bool) (entry, error) {
	var spec []byte
	if !deleted {
		var err error
		if spec, err = t.encodeOver(old); err != nil {
			return entry{}, err
		}
	}
	c.opMu.Lock()
	defer c.opMu.Unlock()
	_, ok, err := c.backend.SwapTable(ctx, t.Name, old, spec)
	switch {
	case err != nil:
		return entry{}, err
	case !ok:
		return entry{}, errLost
	}
	e := entry{t: t, spec: spec, served: served}
	c.install(e, deleted)
	return e, nil
}

func (c *Catalog) withDefaults(t Table) Table { return WithDefaults(t, c.opts.Defaults) }

// WithDefaults fills what t leaves zero (failure mode, window, partitions,
// retry bounds) from d.
func WithDefaults(t, d Table) Table {
	if t.FailureMode == 0 {
		t.FailureMode = d.FailureMode
	}
	if t.VisibilityWindow == 0 {
		t.VisibilityWindow = d.VisibilityWindow
	}
	if t.Partitions == 0 {
		t.Partitions = d.Partitions
	}
	if t.MaxAttempts == 0 {
		t.MaxAttempts = d.MaxAttempts
	}
	if t.MaxRetryTime == 0 {
		t.MaxRetryTime = d.MaxRetryTime
	}
	return t
}

// Create defines a table (zero fields take the defaults), makes its topics
// and store room, and saves it, atomically across every process sharing
// the store: of concurrent creates of one name, one definition wins. The
// same definition again is not an error (created is then false); another
// one is ErrConflict naming the saved definition. A create that fails
// leaves nothing behind (or says how to remove what it could not).
func (c *Catalog) Create(ctx context.Context, req Table) (_ Table, created bool, err error) {
	t := c.withDefaults(req)
	t.State, t.CreatedAt = 0, time.Time{}
	if err := Validate(t, c.opts.Limits, true); err != nil {
		return Table{}, false, err
	}
	for range maxSwaps {
		t, created, err := c.create(ctx, t)
		if !errors.Is(err, errLost) {
			return t, created, err
		}
	}
	return Table{}, false, fmt.Errorf("%w: create %s: its catalog entry kept changing; try again", ErrBusy, t.Name)
}

func (c *Catalog) create(ctx context.Context, t Table) (Table, bool, error) {
	seq := c.opSeq()
	rows, err := c.tableEntries(ctx)
	if err != nil {
		return Table{}, false, fmt.Errorf("catalog: create %s: %w", t.Name, err)
	}
	for _, r := range rows {
		if r.Name != t.Name {
			continue
		}
		ex := decodeEntry(r)
		if ex.bad != nil {
			return Table{}, false, ex.bad
		}
		return c.createExisting(ctx, t, ex, seq)
	}
	if err := c.overBudget(t, rows); err != nil {
		return Table{}, false, err
	}
	t.State, t.CreatedAt = Creating, time.Now().Truncate(time.Microsecond)
	e, err := c.swap(ctx, nil, t, false, false)
	if err != nil {
		return Table{}, false, c.wrap("create", t.Name, err)
	}
	// Another process may have reserved a table of another name since
	// the read above: of two creates that pass the budget only together,
	// the one that sees the other's reservation after its own yields
	// (maybe both; never neither).
	if rows, err = c.tableEntries(ctx); err == nil {
		err = c.overBudget(t, rows)
	}
	if err != nil {
		if _, derr := c.swap(context.WithoutCancel(ctx), e.spec, e.t, false, true); derr != nil && !errors.Is(derr, errLost) {
			err = fmt.Errorf("%w; removing its reservation failed too (%w): run `wail table drop %s --force`", err, derr, t.Name)
		}
		return Table{}, false, c.wrap("create", t.Name, err)
	}
	ready, err := c.finish(ctx, e)
	switch {
	case errors.Is(err, errLost):
		// A creator of the same definition may have finished our
		// reservation: then we created it all the same.
		seq = c.opSeq()
		now, found, lerr := c.load(ctx, t.Name)
		if lerr != nil || !found || now.t.State != Ready || !now.t.CreatedAt.Equal(t.CreatedAt) {
			return Table{}, false, errLost
		}
		ready, _, err = c.createExisting(ctx, t, now, seq)
	case err != nil:
		err = c.undoCreate(ctx, e, err)
	}
	return ready, err == nil, err
}

// overBudget checks that t (the name included in rows or not) fits
// limits.max_partitions with the other tables of rows.
func (c *Catalog) overBudget(t Table, rows []store.Table) error {
	total := int(t.Partitions)
	for _, r := range rows {
		if r.Name == t.Name {
			continue
		}
		ex := decodeEntry(r)
		if ex.bad != nil {
			if local, ok := c.lookup(r.Name); ok && local.served {
				total += int(local.t.Partitions) // what it held when it was read
			}
			continue
		}
		total += int(ex.t.Partitions)
	}
	if lim := c.opts.Limits; total > lim.MaxPartitions {
		return fmt.Errorf("%w: creating %s (%d partitions) would bring all tables to %d partitions, "+
			"over limits.max_partitions %d: drop a table or raise the limit", ErrBudget, t.Name, t.Partitions, total, lim.MaxPartitions)
	}
	return nil
}

// createExisting answers a create of a name the store already holds (ex,
// read after seq).
func (c *Catalog) createExisting(ctx context.Context, t Table, ex entry, seq uint64) (Table, bool, error) {
	if ex.t.State == Dropping || ex.t.State == Deleting {
		return Table{}, false, fmt.Errorf("%w: table %s is being dropped; create it once the drop finished "+
			"(if the drop was interrupted, finish it with `wail table drop %s --force`)", ErrBusy, t.Name, t.Name)
	}
	if !ex.t.sameDefinition(t) {
		state := ""
		if ex.t.State == Creating {
			state = ", still being created"
		}
		return ex.t, false, fmt.Errorf("%w: %s%s; drop it first to define it anew, or alter what can change",
			ErrConflict, ex.t.Describe(), state)
	}
	if ex.t.State == Creating { // its creator died, or is still at it: finish it (idempotent)
		ready, err := c.finish(ctx, ex)
		return ready, false, err
	}
	if local, ok := c.lookup(t.Name); ok && local.served && local.t.CreatedAt.Equal(ex.t.CreatedAt) {
		return local.t, false, nil
	}
	served, err := c.provision(ctx, ex.t, seq)
	if err != nil {
		c.opMu.Lock()
		if local, ok := c.lookup(t.Name); !ok || !local.served || !local.t.CreatedAt.Equal(ex.t.CreatedAt) {
			c.report(t.Name, err) // (a refresh that made the topics meanwhile serves it)
		}
		c.opMu.Unlock()
		return Table{}, false, err
	}
	// The entry read before the topics were made may be dropped (or
	// altered) since, and this process's refresh may have seen that
	// already: cache it only if the store still holds it.
	c.opMu.Lock()
	defer c.opMu.Unlock()
	now, found, err := c.load(ctx, t.Name)
	switch {
	case err != nil:
		return Table{}, false, c.wrap("create", t.Name, err)
	case !found || !bytes.Equal(now.spec, ex.spec):
		return Table{}, false, errLost
	}
	c.install(entry{t: ex.t, spec: ex.spec, served: served}, false)
	c.report(t.Name, nil)
	return ex.t, false, nil
}

// finish makes a reserved table's topics and store room and marks it
// ready.
func (c *Catalog) finish(ctx context.Context, e entry) (Table, error) {
	t := e.t
	if err := c.provisionLocked(ctx, t); err != nil {
		return Table{}, c.wrap("create", t.Name, fmt.Errorf("topics: %w", err))
	}
	if err := c.backend.CreateTable(ctx, t.Name); err != nil {
		return Table{}, c.wrap("create", t.Name, fmt.Errorf("store: %w", err))
	}
	t.State = Ready
	if _, err := c.swap(ctx, e.spec, t, true, false); err != nil {
		return Table{}, c.wrap("create", t.Name, err)
	}
	c.report(t.Name, nil)
	return t, nil
}

// undoCreate removes what a failed create made, unless another creator of
// the same definition finished it meanwhile.
func (c *Catalog) undoCreate(ctx context.Context, e entry, cause error) error {
	ctx = context.WithoutCancel(ctx) // a cancelled create must still clean up
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	t := e.t
	t.State = Deleting
	del, err := c.swap(ctx, e.spec, t, false, false)
	if errors.Is(err, errLost) {
		return cause // finished (or removed) by someone else
	}
	foreign := errors.Is(cause, intentlog.ErrPartitionMismatch) || errors.Is(cause, intentlog.ErrOwnedElsewhere)
	if err == nil && foreign {
		// Topics of this name existed before the create (the name was
		// free in the catalog), or were made for another table of the
		// name: not ours to delete.
		_, err = c.swap(ctx, del.spec, del.t, false, true)
		if errors.Is(err, errLost) {
			err = nil
		}
		if err == nil && errors.Is(cause, intentlog.ErrOwnedElsewhere) {
			return fmt.Errorf("%w: topics of that name exist, recorded as made for another table of the name "+
				"that this process does not know of (their owner cannot be read, or names another table): "+
				"not the create's to delete; if that table is gone, stop wail and remove the topics' "+
				"directories from the embedded log's directory, then create the table again", cause)
		}
		if err == nil {
			return fmt.Errorf("%w: topics of that name exist with another partition count (left by an earlier "+
				"wail, by a drop that raced another process's catalog refresh, or made by hand): create the table "+
				"with their partition count to keep them, or, to delete them, create it so, drop it "+
				"(`wail table drop %s --force`) and create it again", cause, t.Name)
		}
	} else if err == nil {
		err = c.remove(ctx, del)
	}
	if err != nil {
		return fmt.Errorf("%w; removing what it made failed too (%w): run `wail table drop %s --force`", cause, err, t.Name)
	}
	return cause
}

// remove deletes a table marked deleting: topics, rows, then the entry.
// On a log whose topics have ids (TopicIDReader), the ids the topics have
// are first saved in the entry, and on a store whose drops are pinned
// (store.PinnedDropper) the store's pin of the rows (pin); the topics are
// deleted by those ids and the rows dropped with that pin: a drop that
// reaches the log or the store late (two processes dropped the table, the
// slower one paused) leaves the topics and rows of a table created again
// under the name since. A drop that finds the table gone (removed by
// another drop, maybe created again) is done.
// The topics are deleted under the exclusive topic lock of its name
// (topicLocks): this process's provision that read the table before it
// was marked makes them first, not after. A making of them that a refresh
// began (provisionBy) is ended first: the table is going, and a log that
// does not answer held the drop up for good. One that does not end (the
// log heeds no cancellation either) fails the drop at ctx's end; run
// again, it goes on from there.
func (c *Catalog) remove(ctx context.Context, e entry) error {
	e, gone, err := c.pin(ctx, e)
	switch {
	case err != nil:
		return err
	case gone:
		return nil
	}
	gone, err = c.unprovision(ctx, e)
	switch {
	case err != nil:
		return fmt.Errorf("topics: %w", err)
	case gone:
		return nil
	}
	e, gone, err = c.dropRows(ctx, e)
	switch {
	case err != nil:
		return fmt.Errorf("store: %w", err)
	case gone:
		return nil
	}
	if _, err := c.swap(ctx, e.spec, e.t, false, true); err != nil && !errors.Is(err, errLost) {
		return fmt.Errorf("catalog entry: %w", err)
	}
	return nil
}

// dropRows drops the rows of e, an entry marked deleting. A store that
// pins its drops (store.PinnedDropper) drops those of the pin saved in e:
// a drop that reaches the store late, after another removed the table and
// it was created again under the name, leaves the new table's rows. One
// that fences them (store.FencedDropper) drops them only while the
// catalog holds e (gone: the store holds the table no more). Any other
// drops by name (DropTable), as does a store with pins on an entry without
// one (saved by a build without pins: none is read here).
func (c *Catalog) dropRows(ctx context.Context, e entry) (_ entry, gone bool, err error) {
	if p, ok := c.backend.(store.PinnedDropper); ok && e.t.StorePin != "" {
		return c.dropPinned(ctx, p, e)
	}
	f, ok := c.backend.(store.FencedDropper)
	if !ok {
		// By name: a drop that reaches the store after this check and
		// after the table was created again drops the new table's rows
		// (a store that neither pins nor fences its drops, or an entry
		// saved without a pin; the check only narrows that window).
		now, held, err := c.holds(ctx, e.t)
		if err != nil || !held {
			return e, !held, err
		}
		return now, false, c.backend.DropTable(ctx, e.t.Name)
	}
	for range maxSwaps {
		dropped, err := f.DropTableIf(ctx, e.t.Name, e.spec)
		if err != nil || dropped {
			return e, false, err
		}
		// Another drop may have changed the entry of this table (saved
		// its topics' ids): drop by that.
		now, held, err := c.holds(ctx, e.t)
		if err != nil || !held {
			return e, !held, err
		}
		e = now
	}
	return e, false, fmt.Errorf("%w: its catalog entry kept changing; try again", ErrBusy)
}

// dropPinned drops the rows of e with the store pin saved in it. A pin
// the store cannot drop with (damaged; the entry decodes) is read again
// (pin, from e without it): while the store holds e no table of the name
// can have been created since, so the pin read now is e's table's, as it
// is for an entry saved without one. A drop with the damaged pin failed
// for good, forced or not.
func (c *Catalog) dropPinned(ctx context.Context, p store.PinnedDropper, e entry) (_ entry, gone bool, err error) {
	err = p.DropTablePinned(ctx, e.t.Name, []byte(e.t.StorePin))
	if !errors.Is(err, store.ErrBadPin) {
		return e, false, err
	}
	t := e.t
	t.StorePin = ""
	cleared, serr := c.swap(ctx, e.spec, t, false, false)
	if serr != nil {
		if errors.Is(serr, errLost) {
			serr = fmt.Errorf("%w: its catalog entry changed meanwhile; try again", ErrBusy)
		}
		return e, false, fmt.Errorf("%w; removing it from the entry: %w", err, serr)
	}
	if e, gone, err = c.pin(ctx, cleared); err != nil || gone {
		return e, gone, err
	}
	return e, false, p.DropTablePinned(ctx, e.t.Name, []byte(e.t.StorePin))
}

// pin saves in e, an entry marked deleting, what identifies the table's
// topics and rows being dropped, unless it holds them already: the ids
// its topics have (those that exist), on a log whose topics have ids
// (TopicIDReader), and the store's pin of its rows, on a store whose
// drops are pinned (store.PinnedDropper). The swap from e succeeds only
// while the store still holds e, and no table of the name can be created
// while it does: the ids and the pin are the dropped table's, never a
// table's created again. A swap lost to another drop that saved them
// takes theirs; gone: the store holds the table no more (another drop
// removed it, maybe it was created again).
func (c *Catalog) pin(ctx context.Context, e entry) (_ entry, gone bool, err error) {
	r, readsIDs := c.opts.Provisioner.(TopicIDReader)
	p, pins := c.backend.(store.PinnedDropper)
	for range maxSwaps {
		t := e.t
		if readsIDs && t.TopicIDs == nil {
			ids, err := r.TopicIDs(ctx, t)
			if err != nil {
				return e, false, fmt.Errorf("topic ids: %w", err)
			}
			if ids != nil {
				t.TopicIDs = &ids
			}
		}
		if pins && t.StorePin == "" {
			pin, err := p.DropPin(ctx, t.Name)
			if err != nil {
				return e, false, fmt.Errorf("store: %w", err)
			}
			t.StorePin = string(pin)
		}
		if t == e.t {
			return e, false, nil
		}
		saved, err := c.swap(ctx, e.spec, t, false, false)
		if err == nil {
			return saved, false, nil
		}
		if !errors.Is(err, errLost) {
			return e, false, fmt.Errorf("saving the topic ids and store pin: %w", err)
		}
		now, held, err := c.holds(ctx, e.t)
		if err != nil || !held {
			return e, !held, err
		}
		e = now
	}
	return e, false, fmt.Errorf("%w: its catalog entry kept changing; try again", ErrBusy)
}

// holds reads whether the store still holds the entry of t, a table
// marked deleting (the same created_at, still deleting): while it does,
// no table of the name can be created again. now is the entry it holds
// (another drop may have saved the topics' ids in it).
func (c *Catalog) holds(ctx context.Context, t Table) (now entry, held bool, err error) {
	now, found, err := c.load(ctx, t.Name)
	switch {
	case err != nil || !found:
		return entry{}, false, err
	case now.bad != nil:
		// A forced drop of a damaged entry saved t in its place, which
		// need not decode (its partitions unknown): t's bytes.
		spec, err := t.encodeOver(now.spec)
		if err != nil || !bytes.Equal(spec, now.spec) {
			return entry{}, false, nil
		}
		return entry{t: t, spec: now.spec}, true, nil
	case now.t.State != Deleting || !now.t.CreatedAt.Equal(t.CreatedAt):
		return entry{}, false, nil
	}
	return now, true, nil
}

// StillDeleting reports whether the store still holds the entry of t, a
// table marked deleting: while it does, no table of the name can have
// been created again, and what a drop of t removes by the name is t's.
func (c *Catalog) StillDeleting(ctx context.Context, t Table) (bool, error) {
	_, held, err := c.holds(ctx, t)
	if err != nil {
		return false, fmt.Errorf("catalog: reading %s: %w", t.Name, err)
	}
	return held, nil
}

// unprovision deletes the topics of e, an entry marked deleting, under
// the exclusive topic lock of its name, let go even if the Provisioner
// panics (net/http recovers an admin call's panic: a lock kept held every
// later drop and making of the name up). Topics deleted by name (no ids
// saved: the embedded log, Kafka before 2.8) are deleted only while the
// store holds e (gone: it does not; another drop removed the table, which
// may be created again since): under the lock, this process makes no
// topics of the name between that check and the deletion (provision,
// provisionLocked), so on a log of this process's own (embedded) a drop
// that arrives late leaves the topics of a table created again.
func (c *Catalog) unprovision(ctx context.Context, e entry) (gone bool, err error) {
	c.stopMaking(e.t.Name)
	c.stopCreates(e.t)
	if err := c.topicLocks.acquire(ctx, e.t.Name, true); err != nil {
		return false, fmt.Errorf("waiting for this process's making of them to end (a catalog refresh or a create "+
			"began it before the drop, and the log has not answered it): %w", err)
	}
	defer c.topicLocks.release(e.t.Name, true)
	if e.t.TopicIDs == nil {
		_, held, err := c.holds(ctx, e.t)
		if err != nil || !held {
			return !held, err
		}
	}
	if err := c.opts.Provisioner.Unprovision(ctx, e.t); err != nil {
		return false, err
	}
	c.unmade(e.t)
	return false, nil
}

func (c *Catalog) wrap(op, name string, err error) error {
	if errors.Is(err, errLost) {
		return err
	}
	return fmt.Errorf("catalog: %s %s: %w", op, name, err)
}

// Alter says what to change on a live table; nil fields stay.
type Alter struct {
	FailureMode      *FailureMode
	VisibilityWindow *time.Duration
	MaxAttempts      *int32
	MaxRetryTime     *time.Duration
	SkipValidation   *bool
}

func (a Alter) apply(t Table) Table {
	if a.SkipValidation != nil {
		t.SkipValidation = *a.SkipValidation
	}
	if a.FailureMode != nil {
		t.FailureMode = *a.FailureMode
	}
	if a.VisibilityWindow != nil {
		t.VisibilityWindow = *a.VisibilityWindow
	}
	if a.MaxAttempts != nil {
		t.MaxAttempts = *a.MaxAttempts
	}
	if a.MaxRetryTime != nil {
		t.MaxRetryTime = *a.MaxRetryTime
	}
	return t
}

// AlterTo returns the alter that brings saved to the settings want names
// (its non-zero alterable ones) and a description of each change (none:
// nothing to change). Partitions are not alterable: the caller compares
// them.
func AlterTo(saved, want Table) (a Alter, changes []string) {
	a.FailureMode = changed(want.FailureMode, saved.FailureMode, "failure_mode", &changes)
	a.VisibilityWindow = changed(want.VisibilityWindow, saved.VisibilityWindow, "visibility_window", &changes)
	a.MaxAttempts = changed(want.MaxAttempts, saved.MaxAttempts, "max_attempts", &changes)
	a.MaxRetryTime = changed(want.MaxRetryTime, saved.MaxRetryTime, "max_retry_time", &changes)
	return a, changes
}

// changed returns &want when want is set and differs from saved, noting
// the change.
func changed[T comparable](want, saved T, name string, changes *[]string) *T {
	var zero T
	if want == zero || want == saved {
		return nil
	}
	*changes = append(*changes, fmt.Sprintf("%s %v -> %v", name, saved, want))
	return &want
}

// Alter changes what can change safely on a ready table and saves it; every
// process sharing the store takes it up at its next Refresh (this one at
// once). changed is false when the table already had these settings.
func (c *Catalog) Alter(ctx context.Context, name string, a Alter) (_ Table, changed bool, err error) {
	for range maxSwaps {
		t, changed, err := c.alter(ctx, name, a)
		if !errors.Is(err, errLost) {
			return t, changed, err
		}
	}
	return Table{}, false, fmt.Errorf("%w: alter %s: its catalog entry kept changing; try again", ErrBusy, name)
}

func (c *Catalog) alter(ctx context.Context, name string, a Alter) (Table, bool, error) {
	e, found, err := c.load(ctx, name)
	switch {
	case err != nil:
		return Table{}, false, c.wrap("alter", name, err)
	case !found:
		return Table{}, false, fmt.Errorf("%w: %s", ErrNotFound, name)
	case e.bad != nil:
		return Table{}, false, e.bad
	case e.t.State == Creating:
		return Table{}, false, fmt.Errorf("%w: table %s is still being created; try again when `wail table ls` shows it ready", ErrBusy, name)
	case e.t.State != Ready:
		return Table{}, false, fmt.Errorf("%w: table %s is being dropped (%s)", ErrBusy, name, e.t.State)
	}
	t := a.apply(e.t)
	if err := Validate(t, c.opts.Limits, true); err != nil {
		return Table{}, false, err
	}
	local, ok := c.lookup(name)
	served := ok && local.served && local.t.CreatedAt.Equal(t.CreatedAt)
	if t == e.t {
		return t, false, nil
	}
	if t.VisibilityWindow != e.t.VisibilityWindow {
		now := time.Now()
		t = t.windowAltered(e.t, now, c.opts.Refresh).windowGrown(e.t, now, c.windowHold())
	}
	if _, err := c.swap(ctx, e.spec, t, served, false); err != nil {
		return Table{}, false, c.wrap("alter", name, err)
	}
	return t, true, nil
}

// DropHooks are what a drop needs from the process around the catalog.
type DropHooks struct {
	// Progress returns, per partition, the end offset of the table's
	// intent log and the offset the resolvers committed (below it: resolved).
	Progress func(ctx context.Context, t Table) (ends, committed []int64, err error)
	// Stopped returns once this process resolves no partition of the table
	// or of a table of its name created before it (each drained what it had
	// in flight and stopped); those of a table of the name created after it
	// are not waited for.
	Stopped func(ctx context.Context, t Table) error
}

// Drop removes a table: its rows, its topics (and their committed offsets)
// and its entry. Unless forced it refuses (ErrBusy) while intents of the
// table are unresolved, and it first stops the table's writes everywhere,
// waits until no write can still be in flight (SeenWithin(Refresh) plus the
// table's visibility window, which bounds a write; after an alter that
// shortened the window, at least until the writes admitted under the old
// one ended: WideUntil), and refuses, putting the table back, when intents
// arrived meanwhile. Then no process resolves the table any more (after
// another refresh) and it is removed. A drop that
// stopped half way (a crash) is finished by running it again; the table
// takes no writes meanwhile.
func (c *Catalog) Drop(ctx context.Context, name string, force bool, h DropHooks) error {
	for range maxSwaps {
		err := c.drop(ctx, name, force, h)
		if !errors.Is(err, errLost) {
			return err
		}
	}
	return fmt.Errorf("%w: drop %s: its catalog entry kept changing; try again", ErrBusy, name)
}

func (c *Catalog) drop(ctx context.Context, name string, force bool, h DropHooks) error {
	e, found, err := c.load(ctx, name)
	switch {
	case err != nil:
		return c.wrap("drop", name, err)
	case !found:
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	case e.bad != nil && !force:
		return e.bad // its intents cannot be counted without its partitions
	case e.bad != nil:
		// Deleted as the definition this process served, when it did
		// (its topics, and other processes release theirs).
		t := Table{Name: name, CreatedAt: time.Now().Truncate(time.Microsecond)}
		if local, ok := c.lookup(name); ok && local.served {
			t = local.t
		}
		t.State = Deleting
		if e, err = c.swap(ctx, e.spec, t, false, false); err != nil {
			return c.wrap("drop", name, err)
		}
	}
	if !force && (e.t.State == Ready || e.t.State == Dropping) {
		if e, err = c.quiesce(ctx, e, h); err != nil {
			return err
		}
	}
	if e.t.State != Deleting {
		t := e.t
		t.State = Deleting
		if e, err = c.swap(ctx, e.spec, t, false, false); err != nil {
			return c.wrap("drop", name, err)
		}
	}
	// Every process stops resolving the table at its next refresh; this
	// one has stopped already (Resolving says no).
	if err := sleep(ctx, c.opts.Refresh); err != nil {
		return c.wrap("drop", name, err)
	}
	if err := h.Stopped(ctx, e.t); err != nil {
		return c.wrap("drop", name, fmt.Errorf("stopping its resolver partitions: %w", err))
	}
	if err := c.remove(ctx, e); err != nil {
		return fmt.Errorf("catalog: drop %s: %w; the table takes no writes: run the drop again to finish it", name, err)
	}
	return nil
}

// quiesce stops the table's writes (dropping), waits until no write can be
// in flight, and checks that every intent is resolved; on unresolved
// intents it puts the table back (ready) and fails with ErrBusy.
func (c *Catalog) quiesce(ctx context.Context, e entry, h DropHooks) (entry, error) {
	name := e.t.Name
	ends, committed, err := h.Progress(ctx, e.t)
	if err != nil {
		return entry{}, c.wrap("drop", name, fmt.Errorf("reading the resolver's progress: %w", err))
	}
	if n, parts := unresolved(ends, committed); n > 0 {
		return entry{}, fmt.Errorf("%w: table %s has %d unresolved intents (partitions %v): wait until "+
			"`wail table describe %s` shows lag 0 (a resolver must be running), or drop it with force "+
			"(`wail table drop %s --force`; their events are lost)", ErrBusy, name, n, parts, name, name)
	}
	if e.t.State == Ready {
		t := e.t
		t.State = Dropping
		// Served here only if this process made its topics: a table of
		// the name it served may be one dropped elsewhere since, and the
		// table read the one created again there (the resolver here took
		// it up on topics never made for it: on a log of this process's
		// own, the dropped table's).
		local, ok := c.lookup(name)
		served := ok && local.served && local.t.CreatedAt.Equal(t.CreatedAt)
		if e, err = c.swap(ctx, e.spec, t, served, false); err != nil {
			return entry{}, c.wrap("drop", name, err)
		}
	}
	// Writes admitted before every process saw "dropping" log their intent
	// and write the store within the visibility window; those admitted
	// under a longer window an alter shortened, until its WideUntil.
	if err := sleep(ctx, e.t.DrainWait(time.Now(), c.opts.Refresh)); err != nil {
		return entry{}, c.wrap("drop", name, err)
	}
	ends2, committed2, err := h.Progress(ctx, e.t)
	if err == nil {
		n, parts := unresolved(ends2, committed2)
		if moved := logged(ends, ends2); moved > 0 || n > 0 {
			err = fmt.Errorf("%w: table %s had writes in flight: %d intents were logged while the drop waited "+
				"and %d are unresolved (partitions %v); the table takes writes again: stop its writers and drop "+
				"it again, or drop it with force (`wail table drop %s --force`)", ErrBusy, name, moved, n, parts, name)
		}
	} else {
		err = c.wrap("drop", name, fmt.Errorf("reading the resolver's progress: %w", err))
	}
	if err != nil {
		t := e.t
		t.State = Ready
		if _, serr := c.swap(context.WithoutCancel(ctx), e.spec, t, e.served, false); serr != nil {
			err = fmt.Errorf("%w; putting it back to ready failed too (%w): drop it with force or run the drop again", err, serr)
		}
		return entry{}, err
	}
	return e, nil
}

// unresolved counts the intents at or above the committed offsets.
func unresolved(ends, committed []int64) (n int64, parts []int) {
	for p, end := range ends {
		var c int64
		if p < len(committed) {
			c = committed[p]
		}
		if end > c {
			n += end - c
			parts = append(parts, p)
		}
	}
	return n, parts
}

// logged counts the records appended between two readings of the ends.
func logged(before, after []int64) (n int64) {
	for p, end := range after {
		if p < len(before) {
			n += end - before[p]
		}
	}
	return n
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
