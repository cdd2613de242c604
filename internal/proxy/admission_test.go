package proxy

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestAdmission: the decision on the observed backlogs: under the limit
// writes go; at or over it they are refused with a hint from the
// resolver's measured rate, clamped; below it again they go; 0 turns it
// off. Over lists the table exactly when its writes are refused.
func TestAdmission(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	type obs struct {
		intents, committed int64
		after              time.Duration
	}
	for _, tc := range []struct {
		name      string
		limit     int64
		observed  []obs
		wantOK    bool
		wantRetry time.Duration
	}{
		{name: "unknown table goes", limit: 100, wantOK: true},
		{name: "under the limit", limit: 100, observed: []obs{{99, 0, 0}}, wantOK: true},
		{name: "at the limit, rate unknown: the longest hint", limit: 100, observed: []obs{{100, 0, 0}}, wantRetry: maxRetryAfter},
		// drain 1000/s, excess over 90: 1000-900 = 100 intents: 100ms
		{name: "hint from the drain rate", limit: 1000, observed: []obs{{1000, 0, 0}, {1000, 1000, time.Second}}, wantRetry: 100 * time.Millisecond},
		{name: "hint at least the minimum", limit: 1000, observed: []obs{{1000, 0, 0}, {1000, 1000000, time.Second}}, wantRetry: minRetryAfter},
		{name: "resolver stalled: the longest hint", limit: 1000, observed: []obs{{5000, 10, 0}, {6000, 10, time.Second}}, wantRetry: maxRetryAfter},
		{name: "back under the limit", limit: 100, observed: []obs{{500, 0, 0}, {50, 450, time.Second}}, wantOK: true},
		{name: "off", limit: 0, observed: []obs{{1 << 40, 0, 0}}, wantOK: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := NewAdmission(tc.limit)
			now := t0
			for _, o := range tc.observed {
				now = now.Add(o.after)
				a.Observe("t", o.intents, o.committed, now)
			}
			wait, err := a.Admit("t")
			if tc.wantOK {
				if err != nil || wait != 0 {
					t.Fatalf("refused: %v (%s)", err, wait)
				}
				if over := a.Over(); len(over) != 0 {
					t.Fatalf("Over() = %v while writes go (overload health would say so)", over)
				}
				return
			}
			if !errors.Is(err, ErrOverloaded) || wait != tc.wantRetry {
				t.Fatalf("got %v, retry after %s; want ErrOverloaded after %s", err, wait, tc.wantRetry)
			}
			if _, over := a.Over()["t"]; !over {
				t.Fatal("Over does not list the table")
			}
		})
	}
}

// TestOverloadedWritesAreNotStamped: a refused write is neither stamped
// nor logged nor stored, carries its hint, and the other table of the same
// batch is written. (On the wire it answers resource_exhausted with the
// hint: internal/api's TestOverloadedWriteOnTheWire.)
func TestOverloadedWritesAreNotStamped(t *testing.T) {
	t.Parallel()
	w := &world{}
	p := newProxy(t, w)
	a := NewAdmission(10)
	a.Observe("tx", 10, 0, time.Now())
	p.WithAdmission(a)
	res := p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("a")}, {Table: "ind", Key: []byte("b")}})
	if r := res[0]; !errors.Is(r.Err, ErrOverloaded) || r.Version != 0 || r.IntentLogged || r.RetryAfter != maxRetryAfter {
		t.Fatalf("overloaded table: %+v", r)
	}
	if r := res[1]; r.Err != nil || !r.Stored {
		t.Fatalf("the other table: %+v", r)
	}
	if len(w.Intents) != 1 || string(w.Intents[0].Key) != "b" {
		t.Fatalf("intents logged: %v", w.Intents)
	}
}

// TestAdmissionDrain: the hint comes from the rate the committed position
// moved between two observations (not their sum, not times the interval);
// two observations at one instant, or no progress, leave no rate (the
// longest hint); a backlog of exactly the limit is over it.
func TestAdmissionDrain(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	type obs struct {
		intents, committed int64
		after              time.Duration // since t0
	}
	for _, tc := range []struct {
		name string
		obs  []obs
		want time.Duration
	}{
		// 500 intents committed in 2 s: 250/s; 1000 - 900 over 250/s.
		{"rate", []obs{{1000, 0, 0}, {1000, 500, 2 * time.Second}}, 400 * time.Millisecond},
		{"same instant", []obs{{1000, 0, 0}, {1000, 500, 0}}, maxRetryAfter},
		{"no progress", []obs{{1000, 0, 0}, {1000, 500, 2 * time.Second}, {1000, 500, 4 * time.Second}}, maxRetryAfter},
		{"went back", []obs{{1000, 500, 0}, {1000, 0, 2 * time.Second}}, maxRetryAfter},
		// The rate of the last interval, not since the first observation:
		// 500 intents in the 2 s since the last one, 250/s (not 500 in 3 s).
		{"last interval", []obs{{1000, 0, 0}, {1000, 1000, time.Second}, {1000, 1500, 3 * time.Second}}, 400 * time.Millisecond},
		// A position that went back (a truncation lowered a commit)
		// measures no rate: the last one measured stands (1000/s).
		{"went back after a rate", []obs{{1000, 0, 0}, {1000, 1000, time.Second}, {1000, 0, 2 * time.Second}}, 100 * time.Millisecond},
		// 1 intent/s leaves 100 s to wait: the hint is at most the longest.
		{"slow resolver", []obs{{1000, 0, 0}, {1000, 1, time.Second}}, maxRetryAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAdmission(1000)
			for _, o := range tc.obs {
				a.Observe("t", o.intents, o.committed, t0.Add(o.after))
			}
			if over := a.Over(); over["t"] != 1000 {
				t.Errorf("Over() = %v, want t at its limit 1000", over)
			}
			got, err := a.Admit("t")
			if !errors.Is(err, ErrOverloaded) || got != tc.want {
				t.Errorf("Admit = %v, %v; want %v, ErrOverloaded", got, err, tc.want)
			}
		})
	}
}

// TestAdmissionStalledHint: however slowly the resolver drains, the hint
// is the longest one, never the shortest: here proxy.max_backlog was
// lowered to 200000 under a backlog of 2 million, and the resolver
// committed one intent in the day its measures failed (the backlog keeps
// its last measure meanwhile). The 1.8 million intents over 90% of the
// limit take 1.6e11 s at that rate, more nanoseconds than a Duration
// holds: converted as is, the hint wrapped to a negative Duration and was
// raised to the shortest, 50 ms, and every client retried at once.
func TestAdmissionStalledHint(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	a := NewAdmission(200000)
	a.Observe("t", 2000000, 5000, t0)
	a.Observe("t", 2000000, 5001, t0.Add(24*time.Hour))
	if got, err := a.Admit("t"); !errors.Is(err, ErrOverloaded) || got != maxRetryAfter {
		t.Errorf("Admit = %v, %v; want %v, ErrOverloaded", got, err, maxRetryAfter)
	}
}

// TestAdmissionForget: a table forgotten (dropped) leaves Over, so the
// overload condition it raised clears, and a table created again under
// its name is admitted until its own backlog is measured; other tables
// keep theirs.
func TestAdmissionForget(t *testing.T) {
	t.Parallel()
	a := NewAdmission(100)
	now := time.Unix(1000, 0)
	a.Observe("t", 500, 0, now)
	a.Observe("u", 500, 0, now)
	a.Forget("t")
	if over := a.Over(); len(over) != 1 || over["u"] != 500 {
		t.Errorf("Over() = %v after t was forgotten, want only u", over)
	}
	if wait, err := a.Admit("t"); err != nil || wait != 0 {
		t.Errorf("a table forgotten is refused: %v (%s)", err, wait)
	}
	if _, err := a.Admit("u"); !errors.Is(err, ErrOverloaded) {
		t.Errorf("the other table: %v, want ErrOverloaded", err)
	}
}
