package resolver

import (
	"testing"
	"time"
)

// TestCoreWindowShrink: a window shortened by an alter does not expire the
// intent of a write admitted under the old one (by a proxy whose catalog
// was not refreshed yet, or before the alter): its store write may land up
// to 3/4 of the old window after it began, and must get its event. An
// intent ingested once no such write can be in flight any more gets the
// new window. So for a core that saw the alter (SetWindow) and for one
// started after it (a restart, a partition moved to another resolver),
// which knows the old window from the catalog (Params.Wide, WideUntil):
// such a core applied the new window at once.
func TestCoreWindowShrink(t *testing.T) {
	t.Parallel()
	const (
		old, shorter = 10 * time.Second, 100 * time.Millisecond
		refresh      = 2 * time.Second // catalog_refresh: other processes admit under the old window until then
	)
	params := Params{Table: "t", Levels: 1, BackoffMin: 10 * time.Millisecond, BackoffMax: 10 * time.Millisecond}
	for _, tc := range []struct {
		name string
		core func() *Core
	}{
		{"altered while it runs", func() *Core {
			p := params
			p.Window = old
			c := NewCore(p, 0, nil)
			c.SetWindow(t0, shorter, refresh)
			return c
		}},
		{"started after the alter", func() *Core {
			p := params
			// As catalog.Table.windowAltered saves them.
			p.Window, p.Wide, p.WideUntil = shorter, old, t0.Add(refresh+old)
			return NewCore(p, 0, nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tc.core()
			drive := func(off int64, key string, start time.Time, found time.Duration) (bool, time.Duration) {
				return driveKey(t, c, off, key, start, found)
			}
			// A write admitted under the old window at the alter (another
			// process had not refreshed yet): its store write lands 5s
			// later, within 3/4 of the old window.
			if unmat, at := drive(0, "a", t0.Add(time.Millisecond), 5*time.Second); unmat {
				t.Fatalf("the intent of a write admitted under the old window expired after %s, before its store write (5s)", at)
			}
			// Long after every write admitted under the old window ended,
			// the new window applies.
			late := t0.Add(refresh + old + time.Second)
			if unmat, at := drive(1, "b", late, time.Hour); !unmat || at > time.Second {
				t.Fatalf("an intent ingested long after the alter: unmaterialized %v after %s, want after the new window %s", unmat, at, shorter)
			}
		})
	}
}

// TestCoreWindowGrow: a window lengthened by an alter applies to the
// intents pending when the resolver takes it up: a proxy that took it up
// first admits writes under it, whose store write may land up to 3/4 of
// the new window after it began, later than the old window.
func TestCoreWindowGrow(t *testing.T) {
	t.Parallel()
	c := NewCore(Params{Table: "t", Window: 100 * time.Millisecond, Levels: 1, BackoffMin: 10 * time.Millisecond, BackoffMax: 10 * time.Millisecond}, 0, nil)
	v := ver(0, 0)
	c.Ingest(t0, []Entry{put(0, "a", v)})
	for d := time.Duration(0); d <= 2*time.Second; d += 10 * time.Millisecond {
		now := t0.Add(d)
		if d == 50*time.Millisecond {
			c.SetWindow(now, 10*time.Second, 2*time.Second)
		}
		c.Tick(now)
		r := c.Ready()
		for _, rq := range r.Reads {
			res := ReadResult{Key: rq.Key, Seq: rq.Seq, Level: rq.Level}
			if d >= time.Second { // the store write lands
				res.Found, res.Row = true, *row(v, "x")
			}
			c.ReadDone(now, res)
		}
		r = c.Ready()
		if len(r.Unmaterialized) > 0 {
			t.Fatalf("expired after %s, before its store write (1s) that the longer window allows", d)
		}
		if len(r.Events) > 0 {
			return
		}
	}
	t.Fatal("no event")
}

// TestCoreHoldExpiry: while held (the process's catalog copy is stale: a
// window lengthened elsewhere would not be seen), an intent whose window
// ended and whose write is not found is read again, not given up; its
// write landing late gets its event. Once the hold ends, an intent past
// its window expires again.
func TestCoreHoldExpiry(t *testing.T) {
	t.Parallel()
	const window = 100 * time.Millisecond
	c := NewCore(Params{Table: "t", Levels: 1, Window: window, BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}, 0, nil)
	drive := func(off int64, key string, start time.Time, found time.Duration) (bool, time.Duration) {
		return driveKey(t, c, off, key, start, found)
	}
	c.HoldExpiry(true)
	if unmat, at := drive(0, "a", t0, 3*time.Second); unmat {
		t.Fatalf("held: the intent expired after %s, before its write landed (3s)", at)
	}
	c.HoldExpiry(false)
	if unmat, at := drive(1, "b", t0.Add(time.Minute), time.Hour); !unmat || at > 5*window {
		t.Fatalf("hold ended: unmaterialized %v after %s; want after the window %s", unmat, at, window)
	}
}

// driveKey ingests an intent of key at off and reads it every 10ms from
// start, finding it absent until found (then it answers with its row),
// for at most 20s: it returns whether the intent was given up
// (unmaterialized) or got its event, and when.
func driveKey(t *testing.T, c *Core, off int64, key string, start time.Time, found time.Duration) (unmaterialized bool, at time.Duration) {
	t.Helper()
	v := ver(int(start.Sub(t0).Milliseconds()), 0)
	c.Ingest(start, []Entry{put(off, key, v)})
	for d := time.Duration(0); d <= 20*time.Second; d += 10 * time.Millisecond {
		now := start.Add(d)
		c.Tick(now)
		for range 2 { // before and after this step's reads
			r := c.Ready()
			if len(r.Unmaterialized) > 0 {
				return true, d
			}
			if len(r.Events) > 0 {
				c.Published(now, r.Events)
				return false, d
			}
			for _, rq := range r.Reads {
				res := ReadResult{Key: rq.Key, Seq: rq.Seq, Level: rq.Level}
				if d >= found {
					res.Found, res.Row = true, *row(v, "x")
				}
				c.ReadDone(now, res)
			}
		}
	}
	t.Fatalf("%s: neither an event nor unmaterialized", key)
	return false, 0
}
