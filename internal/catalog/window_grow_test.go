package catalog

import (
	"testing"
	"time"
)

// TestWriteWindowOfAProcessStartedDuringTheHold: after an alter lengthened
// a table's window, a process that opens the catalog before every
// resolver took the longer window up makes its writes under the old one
// too, until the hold the entry names ended. It knew only the new window
// (the hold was in the memory of the processes that had seen the old
// one) and wrote under it at once: a store write longer than the old
// window landed after a resolver elsewhere still on the old one had
// resolved its intent as not stored, an acknowledged write without an
// event. An alter of something else keeps the hold; one that shortens
// the window below the held one ends it.
func TestWriteWindowOfAProcessStartedDuringTheHold(t *testing.T) {
	t.Parallel()
	const (
		refresh = 50 * time.Millisecond
		takeUp  = 50 * time.Millisecond
		short   = 100 * time.Millisecond
		long    = 2 * time.Second
	)
	hold := SeenWithin(refresh) + takeUp
	opts := func(o *Options) { o.Refresh, o.TakeUp = refresh, takeUp }
	for _, tc := range []struct {
		name  string
		then  *Alter // a second alter, before the process starts
		want  time.Duration
		holds bool // the entry holds a shorter window
	}{
		{"lengthened", nil, short, true},
		{"then another setting altered", &Alter{FailureMode: ptr(Independent)}, short, true},
		{"then lengthened again", &Alter{VisibilityWindow: ptr(2 * long)}, short, true},
		{"then shortened below the old window", &Alter{VisibilityWindow: ptr(short / 2)}, short / 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			st := openStore(t)
			altering := openCatalog(t, st, newTopics(), opts)
			if _, _, err := altering.Create(ctx, Table{Name: "t", Partitions: 1, VisibilityWindow: short}); err != nil {
				t.Fatal(err)
			}
			altered := time.Now()
			if _, _, err := altering.Alter(ctx, "t", Alter{VisibilityWindow: ptr(long)}); err != nil {
				t.Fatal(err)
			}
			if tc.then != nil {
				if _, _, err := altering.Alter(ctx, "t", *tc.then); err != nil {
					t.Fatal(err)
				}
			}
			if e, _ := saved(t, st, "t"); tc.holds && (e.NarrowWindow != short || e.NarrowUntil.Before(altered.Add(hold))) {
				t.Errorf("the entry holds %s until %s after the alter, want %s until %s at least",
					e.NarrowWindow, e.NarrowUntil.Sub(altered), short, hold)
			}
			started := openCatalog(t, st, newTopics(), opts)
			now := time.Now()
			tb, ok := started.Get("t")
			if !ok {
				t.Fatal("the started process does not serve the table")
			}
			if got := started.WriteWindow(tb, now); got != tc.want {
				t.Errorf("a process started %s after the alter writes under a %s window, want %s (resolvers elsewhere may still apply it)",
					now.Sub(altered).Round(time.Millisecond), got, tc.want)
			}
			if got := started.WriteWindow(tb, now.Add(2*hold)); got != tb.VisibilityWindow {
				t.Errorf("once the hold ended, the write window is %s, want the table's %s", got, tb.VisibilityWindow)
			}
			// A definition of an earlier table of the name (one that Get
			// returned before a drop and create) keeps its own window.
			earlier := tb
			earlier.CreatedAt = earlier.CreatedAt.Add(-time.Hour)
			if got := started.WriteWindow(earlier, now); got != earlier.VisibilityWindow {
				t.Errorf("a definition of an earlier table of the name writes under a %s window, want its own %s", got, earlier.VisibilityWindow)
			}
		})
	}
}

// TestWindowGrown: what an alter of the window saves as the window writes
// keep: the one writes were made under at the alter, when the new one is
// longer, until the hold from the alter (or the earlier hold's end, when
// later).
func TestWindowGrown(t *testing.T) {
	t.Parallel()
	const hold = time.Second
	t0 := time.Unix(1_000_000, 0)
	def := func(w time.Duration) Table { return Table{Name: "t", VisibilityWindow: w} }
	held := func(w, narrow time.Duration, until time.Time) Table {
		t := def(w)
		t.NarrowWindow, t.NarrowUntil = narrow, until
		return t
	}
	for _, tc := range []struct {
		name        string
		old         Table
		window      time.Duration
		at          time.Time
		narrow      time.Duration
		narrowUntil time.Time
	}{
		{"lengthened", def(time.Second), 10 * time.Second, t0, time.Second, t0.Add(hold)},
		{"lengthened between microseconds: rounded up", def(time.Second), 10 * time.Second, t0.Add(1500 * time.Nanosecond), time.Second, t0.Add(hold + 2*time.Microsecond)},
		{"shortened", def(10 * time.Second), time.Second, t0, 0, time.Time{}},
		{"lengthened again while held", held(10*time.Second, time.Second, t0.Add(hold)), 20 * time.Second, t0.Add(hold / 2), time.Second, t0.Add(hold * 3 / 2)},
		{"lengthened again once the hold ended", held(10*time.Second, time.Second, t0.Add(hold)), 20 * time.Second, t0.Add(hold), 10 * time.Second, t0.Add(2 * hold)},
		{"shortened while held, above the held one", held(10*time.Second, time.Second, t0.Add(hold)), 5 * time.Second, t0.Add(hold / 2), time.Second, t0.Add(hold * 3 / 2)},
		{"shortened while held, to the held one", held(10*time.Second, time.Second, t0.Add(hold)), time.Second, t0.Add(hold / 2), 0, time.Time{}},
		{"an entry's hold of no window", held(10*time.Second, 0, t0.Add(hold)), 20 * time.Second, t0, 10 * time.Second, t0.Add(hold)},
		{"lengthened again while an earlier, longer hold lasts", held(10*time.Second, time.Second, t0.Add(3*hold)), 20 * time.Second, t0.Add(hold / 2), time.Second, t0.Add(3 * hold)},
	} {
		// As Alter makes it: the old definition with the new window.
		n := tc.old
		n.VisibilityWindow = tc.window
		got := n.windowGrown(tc.old, tc.at, hold)
		if got.NarrowWindow != tc.narrow || !got.NarrowUntil.Equal(tc.narrowUntil) {
			t.Errorf("%s: holds %s until %v, want %s until %v", tc.name, got.NarrowWindow, got.NarrowUntil, tc.narrow, tc.narrowUntil)
		}
	}
}

// TestWriteWindowOfATableCreatedAgainDuringTheHold: a process that cached
// a table, which was dropped, created again and its window lengthened
// elsewhere before it refreshed, first sees the new table held: it holds
// the shorter window for its own hold from then, as a process that
// starts then does. It took the new table as one it knew (another
// CreatedAt: nothing followed) and held only until the entry's
// narrow_until_us, on the altering process's clock.
func TestWriteWindowOfATableCreatedAgainDuringTheHold(t *testing.T) {
	t.Parallel()
	const (
		short = 100 * time.Millisecond
		long  = 10 * time.Second
	)
	ctx := t.Context()
	st := openStore(t)
	// The altering process's hold is short; this one's is long.
	altering := openCatalog(t, st, newTopics(), func(o *Options) { o.Refresh, o.TakeUp = 10*time.Millisecond, 10*time.Millisecond })
	if _, _, err := altering.Create(ctx, Table{Name: "t", Partitions: 1, VisibilityWindow: short}); err != nil {
		t.Fatal(err)
	}
	c := openCatalog(t, st, newTopics(), func(o *Options) { o.Refresh, o.TakeUp = time.Second, time.Second })
	if _, ok := c.Get("t"); !ok {
		t.Fatal("the table is not served")
	}
	if err := altering.Drop(ctx, "t", true, (&dropHooks{ends: [][]int64{{0}}}).hooks()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := altering.Create(ctx, Table{Name: "t", Partitions: 1, VisibilityWindow: short}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := altering.Alter(ctx, "t", Alter{VisibilityWindow: ptr(long)}); err != nil {
		t.Fatal(err)
	}
	var tb Table
	for ok := false; !ok; {
		_ = c.Refresh(ctx) // the first releases the old table, the next serves the new one
		tb, ok = c.Get("t")
	}
	read := time.Now()
	e, _ := saved(t, st, "t")
	if !e.NarrowUntil.After(read) {
		t.Fatalf("the entry's hold ended before this process read it (%s)", read.Sub(e.NarrowUntil))
	}
	at := e.NarrowUntil.Add(time.Millisecond) // the entry's hold ended; this process's, from its read, not
	if got := c.WriteWindow(tb, at); got != short {
		t.Errorf("%s after it first read the table, a process writes under a %s window, want %s until its own hold (%s) ended",
			at.Sub(read).Round(time.Millisecond), got, short, c.windowHold())
	}
}

// TestWriteWindowFirstSeen: a process that caches a table for the first
// time while its entry holds a shorter window (an alter lengthened it
// elsewhere, less than a hold ago) writes under the shorter one until the
// entry's hold ends, or until a hold from when it saw it, when later: the
// entry's hold counts from the alter, on the altering process's clock.
// An entry whose hold ended, or that holds no window, holds nothing here.
func TestWriteWindowFirstSeen(t *testing.T) {
	t.Parallel()
	const (
		hold          = time.Second
		short, window = time.Second, 10 * time.Second
	)
	t0 := time.Unix(1_000_000, 0)
	seen := func(narrow time.Duration, until time.Time) entry {
		e := entry{t: Table{Name: "t", VisibilityWindow: window, NarrowWindow: narrow, NarrowUntil: until}}
		return e.firstSeen(t0, hold)
	}
	for _, tc := range []struct {
		name string
		e    entry
		at   time.Time
		want time.Duration
	}{
		{"held by the entry", seen(short, t0.Add(time.Hour)), t0, short},
		{"held by the entry past this process's hold", seen(short, t0.Add(time.Hour)), t0.Add(2 * hold), short},
		{"held by the entry, once its hold ended", seen(short, t0.Add(time.Hour)), t0.Add(time.Hour), window},
		{"the entry's hold ending sooner", seen(short, t0.Add(hold/2)), t0, short},
		{"the entry's hold ending sooner, once it ended", seen(short, t0.Add(hold/2)), t0.Add(hold / 2), short},
		{"the entry's hold ending sooner, just before this process's ends", seen(short, t0.Add(hold/2)), t0.Add(hold - time.Nanosecond), short},
		{"the entry's hold ending sooner, once this process's ended", seen(short, t0.Add(hold/2)), t0.Add(hold), window},
		{"the entry's hold ended before", seen(short, t0.Add(-time.Nanosecond)), t0, window},
		{"the entry's hold ending as it is seen", seen(short, t0), t0, window},
		{"an entry's hold of no window", seen(0, t0.Add(hold/2)), t0, window},
		{"no hold", seen(0, time.Time{}), t0, window},
	} {
		if got := tc.e.writeWindow(tc.at); got != tc.want {
			t.Errorf("%s: write window %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestWriteWindowOfAnEarlierDefinition: a write to a table as Get returned
// it before an alter lengthened its window is made under that definition's
// window, the hold ended or not: only a definition read since (or a
// shorter window held) may say otherwise.
func TestWriteWindowOfAnEarlierDefinition(t *testing.T) {
	t.Parallel()
	const short, long = 100 * time.Millisecond, 2 * time.Second
	ctx := t.Context()
	c := openCatalog(t, openStore(t), newTopics())
	if _, _, err := c.Create(ctx, Table{Name: "t", Partitions: 1, VisibilityWindow: short}); err != nil {
		t.Fatal(err)
	}
	earlier, ok := c.Get("t")
	if !ok {
		t.Fatal("the table is not served")
	}
	if _, _, err := c.Alter(ctx, "t", Alter{VisibilityWindow: ptr(long)}); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * c.windowHold())
	if got := c.WriteWindow(earlier, later); got != short {
		t.Errorf("once the hold ended, a definition read before the alter writes under a %s window, want its own %s", got, short)
	}
	if tb, _ := c.Get("t"); c.WriteWindow(tb, later) != long {
		t.Errorf("once the hold ended, the definition read since writes under a %s window, want %s", c.WriteWindow(tb, later), long)
	}
}
