package catalog

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestDropAfterShortenedWindow: a drop soon after an alter shortened the
// visibility window waits for the writes admitted under the old window
// (by a process whose catalog still had it, up to a refresh after the
// alter) until they can no longer land, not only the new window: its
// second look at the log must come after the alter plus a refresh plus
// the old window. It did after the new one only, and removed the topics
// and rows under writes still in flight. Whichever process drops (the
// one that altered, another that refreshed since, one that opened the
// catalog after the alter), and a window lengthened again ends the wait
// for the old one. Once the old window no longer applies, the drop waits
// the new one only.
func TestDropAfterShortenedWindow(t *testing.T) {
	t.Parallel()
	const (
		refresh = 50 * time.Millisecond
		long    = 600 * time.Millisecond
		short   = 10 * time.Millisecond
	)
	withRefresh := func(o *Options) { o.Refresh = refresh }
	for _, tc := range []struct {
		name    string
		windows []time.Duration // the alters, in order
		dropper string          // "altering", "other" (refreshed), "new" (opened after the alter)
		wait    time.Duration   // the least time from the first alter to the drop's second look
	}{
		{"dropped where altered", []time.Duration{short}, "altering", SeenWithin(refresh) + long},
		{"dropped by another process", []time.Duration{short}, "other", SeenWithin(refresh) + long},
		{"dropped by a process opened after the alter", []time.Duration{short}, "new", SeenWithin(refresh) + long},
		{"shortened twice", []time.Duration{long / 2, short}, "altering", SeenWithin(refresh) + long},
		{"lengthened again", []time.Duration{short, 2 * long}, "altering", SeenWithin(refresh) + 2*long},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			st := openStore(t)
			a := openCatalog(t, st, newTopics(), withRefresh)
			other := openCatalog(t, st, newTopics(), withRefresh)
			if _, _, err := a.Create(ctx, Table{Name: "t", Partitions: 1, VisibilityWindow: long}); err != nil {
				t.Fatal(err)
			}
			if err := other.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			altered := time.Now()
			for _, w := range tc.windows {
				if _, _, err := a.Alter(ctx, "t", Alter{VisibilityWindow: ptr(w)}); err != nil {
					t.Fatal(err)
				}
			}
			dropper := a
			switch tc.dropper {
			case "other":
				if err := other.Refresh(ctx); err != nil {
					t.Fatal(err)
				}
				dropper = other
			case "new":
				dropper = openCatalog(t, st, newTopics(), withRefresh)
			}
			var mu sync.Mutex
			var looks []time.Time
			h := DropHooks{
				Progress: func(context.Context, Table) ([]int64, []int64, error) {
					mu.Lock()
					defer mu.Unlock()
					looks = append(looks, time.Now())
					return []int64{3}, []int64{3}, nil
				},
				Stopped: func(context.Context, Table) error { return nil },
			}
			if err := dropper.Drop(ctx, "t", false, h); err != nil {
				t.Fatal(err)
			}
			if len(looks) != 2 {
				t.Fatalf("the drop looked at the log %d times, want 2", len(looks))
			}
			if got := looks[1].Sub(altered); got < tc.wait {
				t.Errorf("the drop looked again %s after the alter, before writes under the old window (%s) ended: want %s at least",
					got.Round(time.Millisecond), long, tc.wait)
			}
		})
	}

	// Long after the alter the old window no longer applies: the drop
	// waits SeenWithin and the new window.
	t.Run("old window over", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		st := openStore(t)
		c := openCatalog(t, st, newTopics(), withRefresh)
		if _, _, err := c.Create(ctx, Table{Name: "t", Partitions: 1, VisibilityWindow: 100 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Alter(ctx, "t", Alter{VisibilityWindow: ptr(short)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(SeenWithin(refresh) + 100*time.Millisecond)
		began := time.Now()
		if err := c.Drop(ctx, "t", false, DropHooks{
			Progress: func(context.Context, Table) ([]int64, []int64, error) { return []int64{3}, []int64{3}, nil },
			Stopped:  func(context.Context, Table) error { return nil },
		}); err != nil {
			t.Fatal(err)
		}
		// quiesce (SeenWithin + short) and the wait before removing (refresh).
		if took := time.Since(began); took >= SeenWithin(refresh)+refresh+100*time.Millisecond {
			t.Errorf("the drop took %s: it waited for a window that no longer applies", took)
		}
	})
}

// TestWriteWindowAfterGrowth: once this process sees an alter lengthen a
// table's window, writes keep the window before (the shortest one still
// held) until the hold passed from when it saw it; a window unchanged
// since keeps the hold, a shortened one applies at once, a table created
// anew starts with its own.
func TestWriteWindowAfterGrowth(t *testing.T) {
	t.Parallel()
	const hold = time.Second
	t0 := time.Unix(1_000_000, 0)
	mid, end := t0.Add(hold/2), t0.Add(hold)
	created := t0.Add(-time.Hour)
	def := func(w time.Duration) entry {
		return entry{t: Table{Name: "t", VisibilityWindow: w, CreatedAt: created}}
	}
	grown := def(10*time.Second).followWindow(def(time.Second), t0, hold)
	reloaded := def(10*time.Second).followWindow(grown, mid, hold)
	again := def(20*time.Second).followWindow(grown, mid, hold)
	anew := entry{t: Table{Name: "t", VisibilityWindow: 10 * time.Second, CreatedAt: t0}}
	heldLonger := def(20 * time.Second)
	heldLonger.t.NarrowWindow, heldLonger.t.NarrowUntil = time.Second, t0.Add(time.Hour)
	heldLonger.narrow, heldLonger.narrowUntil = 5*time.Second, t0.Add(time.Hour)
	restored := def(10 * time.Second)
	restored.t.NarrowWindow, restored.t.NarrowUntil = time.Second, mid.Add(-time.Nanosecond)
	damaged := restored
	damaged.bad = errors.New("damaged")
	restored = restored.followWindow(damaged, t0, hold)
	for _, tc := range []struct {
		name string
		e    entry
		at   time.Time
		want time.Duration
	}{
		{"grown", grown, t0, time.Second},
		{"grown, just before the hold ends", grown, end.Add(-time.Nanosecond), time.Second},
		{"grown, once the hold ended", grown, end, 10 * time.Second},
		{"unchanged at a reload", reloaded, mid, time.Second},
		{"unchanged at a reload, once the first hold ended", reloaded, end, 10 * time.Second},
		{"grown again while held", again, mid, time.Second},
		{"grown again while held, past the first hold", again, end, time.Second},
		{"grown again while held, past its own hold", again, mid.Add(hold), 20 * time.Second},
		{"shortened while held", def(500*time.Millisecond).followWindow(grown, mid, hold), mid, 500 * time.Millisecond},
		{"shortened", def(time.Second).followWindow(def(10*time.Second), t0, hold), t0, time.Second},
		{"created anew", anew.followWindow(def(time.Second), t0, hold), t0, 10 * time.Second},
		// The shortest of the entry's and the one held here: the entry's
		// hold counts on the altering process's clock, which may be
		// behind (the window this process held was longer then).
		{"held here longer than the entry holds", heldLonger, t0, time.Second},
		// An entry damaged and restored while held: the cached damaged
		// one says nothing of this process's hold, so the restored one is
		// first seen, held for a hold from then.
		{"restored while held", restored, t0, time.Second},
		{"restored while held, once the entry's hold ended", restored, mid, time.Second},
		{"restored while held, once this process's ended", restored, end, 10 * time.Second},
	} {
		if got := tc.e.writeWindow(tc.at); got != tc.want {
			t.Errorf("%s: write window %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestWindowAltered: what an alter of the window saves as the window
// writes in flight may have been admitted under: the longer one writes
// were admitted under at the alter (the old window, or a longer one an
// earlier shortening left in force while it applies), when the new one is
// shorter, until a refresh plus the old window from the alter (or the
// earlier one's end, when later), rounded up to the microsecond. Once an
// earlier shortening's window ended, only the old window counts.
func TestWindowAltered(t *testing.T) {
	t.Parallel()
	const refresh = time.Second
	grace := SeenWithin(refresh)
	t0 := time.Unix(1_000_000, 0)
	def := func(w time.Duration) Table { return Table{Name: "t", VisibilityWindow: w} }
	wide := func(w, wider time.Duration, until time.Time) Table {
		t := def(w)
		t.WideWindow, t.WideUntil = wider, until
		return t
	}
	for _, tc := range []struct {
		name      string
		old       Table
		window    time.Duration
		at        time.Time
		wide      time.Duration
		wideUntil time.Time
	}{
		{"shortened", def(10 * time.Second), time.Second, t0, 10 * time.Second, t0.Add(grace + 10*time.Second)},
		{"lengthened", def(time.Second), 10 * time.Second, t0, 0, time.Time{}},
		{"unchanged", def(time.Second), time.Second, t0, 0, time.Time{}},
		{"shortened between microseconds: rounded up", def(10 * time.Second), time.Second, t0.Add(1500 * time.Nanosecond),
			10 * time.Second, t0.Add(grace + 10*time.Second + 2*time.Microsecond)},
		{"shortened again while the wider one applies, ending later", wide(5*time.Second, 10*time.Second, t0.Add(time.Hour)), time.Second, t0,
			10 * time.Second, t0.Add(time.Hour)},
		{"shortened again while the wider one applies, ending sooner", wide(5*time.Second, 10*time.Second, t0.Add(time.Second)), time.Second, t0,
			10 * time.Second, t0.Add(grace + 5*time.Second)},
		{"shortened again once the wider one ended", wide(5*time.Second, 10*time.Second, t0), time.Second, t0,
			5 * time.Second, t0.Add(grace + 5*time.Second)},
		{"shortened again once a wider one ending late ended", wide(5*time.Second, 10*time.Second, t0.Add(-time.Nanosecond)), time.Second, t0,
			5 * time.Second, t0.Add(grace + 5*time.Second)},
		{"lengthened while the wider one applies, below it", wide(5*time.Second, 10*time.Second, t0.Add(time.Hour)), 7 * time.Second, t0,
			10 * time.Second, t0.Add(time.Hour)},
		{"lengthened to the wider one", wide(5*time.Second, 10*time.Second, t0.Add(time.Hour)), 10 * time.Second, t0, 0, time.Time{}},
		{"lengthened past the wider one", wide(5*time.Second, 10*time.Second, t0.Add(time.Hour)), 20 * time.Second, t0, 0, time.Time{}},
	} {
		// As Alter makes it: the old definition with the new window.
		n := tc.old
		n.VisibilityWindow = tc.window
		got := n.windowAltered(tc.old, tc.at, refresh)
		if got.VisibilityWindow != tc.window || got.WideWindow != tc.wide || !got.WideUntil.Equal(tc.wideUntil) {
			t.Errorf("%s: window %s, wide %s until %v; want %s, wide %s until %v", tc.name,
				got.VisibilityWindow, got.WideWindow, got.WideUntil, tc.window, tc.wide, tc.wideUntil)
		}
	}
}
