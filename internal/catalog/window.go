package catalog

// The visibility windows an alter leaves in force for a while: the longer
// one writes in flight may have been admitted under after a shortening
// (WideWindow), the shorter one writes keep after a lengthening until
// every resolver took it up (NarrowWindow, WriteWindow).

import "time"

// narrowAt is the window writes admitted at now are made under, as the
// entry says: VisibilityWindow, or NarrowWindow until NarrowUntil.
func (t Table) narrowAt(now time.Time) time.Duration {
	if t.NarrowWindow > 0 && now.Before(t.NarrowUntil) {
		return min(t.VisibilityWindow, t.NarrowWindow)
	}
	return t.VisibilityWindow
}

// WindowAt is the longest visibility window a write in flight at now may
// have been admitted under: VisibilityWindow, or WideWindow until
// WideUntil.
func (t Table) WindowAt(now time.Time) time.Duration {
	if now.Before(t.WideUntil) {
		return max(t.VisibilityWindow, t.WideWindow)
	}
	return t.VisibilityWindow
}

// DrainWait is how long a drop at now waits, after it marked the table
// dropping, for the writes in flight to land: until every process saw it
// and stopped taking writes (SeenWithin), plus the window; or until
// WideUntil when that is later (writes admitted under a window an alter
// shortened).
func (t Table) DrainWait(now time.Time, refresh time.Duration) time.Duration {
	return max(SeenWithin(refresh)+t.VisibilityWindow, t.WideUntil.Sub(now))
}

// windowAltered returns t, whose window an alter of old changed at now,
// with the window writes may still be in flight under: when t's is shorter
// than old's (or than one an earlier alter shortened, while it applies),
// the longer one applies until no write admitted under it can land any
// more: SeenWithin (processes that have not seen the alter admit writes
// under it until then) plus that window from now.
func (t Table) windowAltered(old Table, now time.Time, refresh time.Duration) Table {
	wide := old.WindowAt(now)
	t.WideWindow, t.WideUntil = 0, time.Time{}
	if t.VisibilityWindow >= wide {
		return t
	}
	until := now.Add(SeenWithin(refresh) + old.VisibilityWindow)
	if now.Before(old.WideUntil) && old.WideUntil.After(until) {
		until = old.WideUntil
	}
	// Saved to the microsecond: rounded up.
	t.WideWindow, t.WideUntil = wide, until.Add(time.Microsecond-1).Truncate(time.Microsecond)
	return t
}

// windowGrown returns t, whose window an alter of old changed at now,
// with the window writes are made under: when t's is longer than the one
// writes were made under at now (old's, or a shorter one an earlier alter
// lengthened, while it holds), that one holds until hold from now, when
// every resolver took the longer one up (the altering process's hold:
// SeenWithin plus a commit tick; at least the earlier hold). A window no
// longer than that needs no hold.
func (t Table) windowGrown(old Table, now time.Time, hold time.Duration) Table {
	prev := old.narrowAt(now)
	t.NarrowWindow, t.NarrowUntil = 0, time.Time{}
	if t.VisibilityWindow <= prev {
		return t
	}
	until := now.Add(hold)
	if now.Before(old.NarrowUntil) && old.NarrowUntil.After(until) {
		until = old.NarrowUntil
	}
	t.NarrowWindow, t.NarrowUntil = prev, until.Add(time.Microsecond-1).Truncate(time.Microsecond)
	return t
}

// writeWindow is WriteWindow of the cached entry e: the shortest of the
// entry's (Table.narrowAt) and the one this process holds.
func (e entry) writeWindow(now time.Time) time.Duration {
	w := e.t.narrowAt(now)
	if now.Before(e.narrowUntil) {
		w = min(w, e.narrow)
	}
	return w
}

// firstSeen returns e, which this process caches at now without having
// cached the table before, holding the shorter window the entry names
// (NarrowWindow) until hold from now too: the entry's NarrowUntil counts
// from before the alter was saved, on the altering process's clock.
func (e entry) firstSeen(now time.Time, hold time.Duration) entry {
	if e.bad == nil && e.t.NarrowWindow > 0 && now.Before(e.t.NarrowUntil) {
		e.narrow, e.narrowUntil = e.t.NarrowWindow, now.Add(hold)
	}
	return e
}

// followWindow returns e, which this process caches at now in place of
// old (the entry it cached before), with the window writes are made
// under: when e's window is longer than old's write window, that one
// applies until hold from now (every process's resolver took the longer
// one up by then); an unchanged window keeps old's hold. Another table of
// the name (dropped and created again), or one whose window old does not
// say (damaged), is first seen here (firstSeen).
func (e entry) followWindow(old entry, now time.Time, hold time.Duration) entry {
	if e.bad != nil || old.bad != nil || !old.t.CreatedAt.Equal(e.t.CreatedAt) {
		return e.firstSeen(now, hold)
	}
	switch prev := old.writeWindow(now); {
	case e.t.VisibilityWindow == old.t.VisibilityWindow:
		e.narrow, e.narrowUntil = old.narrow, old.narrowUntil
	case e.t.VisibilityWindow > prev:
		e.narrow, e.narrowUntil = prev, now.Add(hold)
	}
	return e
}

// windowHold is how long after this process saw an alter lengthen a
// table's window writes keep the old one: every process loads the alter
// within SeenWithin, and its resolver applies it at its next commit
// tick.
func (c *Catalog) windowHold() time.Duration { return SeenWithin(c.opts.Refresh) + c.opts.TakeUp }

// WriteWindow is the visibility window a write to t (as Get returned it)
// admitted at now is made under (the proxy's deadlines): its
// VisibilityWindow, or, for a while after this process saw an alter
// lengthen it, the shorter window before. The resolvers of other
// processes take a longer window up only at their next catalog refresh
// and commit tick, and until then give up on an intent once the old
// window (and its recheck) passed: a write made under the new window at
// once could land after its intent was resolved as not stored, an
// acknowledged write without an event.
func (c *Catalog) WriteWindow(t Table, now time.Time) time.Duration {
	e, ok := c.lookup(t.Name)
	if !ok || !e.t.CreatedAt.Equal(t.CreatedAt) {
		return t.VisibilityWindow
	}
	return min(t.VisibilityWindow, e.writeWindow(now))
}
