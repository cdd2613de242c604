package proxy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestStampBefore: a write whose StampBefore the clock reached is refused
// unwritten (unstamped, no intent, not stored), and so are the other
// mutations of its Write call, as its client sent them together; a bound
// still ahead, or none, is written.
func TestStampBefore(t *testing.T) {
	t.Parallel()
	const past, future = 1, 2 // the proxy's ServerTime then, and a minute on
	for _, tc := range []struct {
		name    string
		bounds  []uint64 // one mutation each, keys k0, k1, ...
		refused bool
	}{
		{name: "no bound", bounds: []uint64{0}},
		{name: "bound ahead", bounds: []uint64{future}},
		{name: "bound reached", bounds: []uint64{past}, refused: true},
		{name: "one bound reached of two", bounds: []uint64{future, past}, refused: true},
		{name: "a bound reached beside none", bounds: []uint64{0, past}, refused: true},
		// the earliest bound counts, whatever the order
		{name: "one bound reached of two, first", bounds: []uint64{past, future}, refused: true},
		{name: "a bound reached, then none", bounds: []uint64{past, 0}, refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, log, p := gatedProxy(t, 0)
			close(log.gate)
			muts := make([]Mutation, len(tc.bounds))
			for i, b := range tc.bounds {
				switch b {
				case past:
					b = p.ServerTime()
				case future:
					b = p.ServerTime() + uint64(time.Minute)
				}
				muts[i] = Mutation{Table: "tx", Key: []byte{'k', byte('0' + i)}, StampBefore: b}
			}
			res := p.Write(context.Background(), muts)
			for i, r := range res {
				_, stored := w.Rows[string(muts[i].Key)]
				if !tc.refused {
					if r.Err != nil || !r.Stored || !stored {
						t.Fatalf("mutation %d: %+v (stored %v); want written", i, r, stored)
					}
					continue
				}
				if !errors.Is(r.Err, ErrUnavailable) || !strings.Contains(r.Err.Error(), "stamp_before") ||
					r.Version != 0 || r.IntentLogged || stored {
					t.Fatalf("mutation %d: %+v (stored %v); want unavailable (stamp_before), unstamped, not stored", i, r, stored)
				}
			}
			if want := map[bool]float64{true: 1, false: 0}[tc.refused]; lateWrites(t, p) != want {
				t.Errorf("late writes counted: %v, want %v", lateWrites(t, p), want)
			}
		})
	}
}

// TestStampBeforeCheckedAtStamping: the bound counts when the write is
// stamped, not when it arrives: a write that arrived in time but waited
// in its table's merge queue until its bound passed is refused.
func TestStampBeforeCheckedAtStamping(t *testing.T) {
	t.Parallel()
	w, log, p := gatedProxy(t, 0)
	go p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("first")}})
	log.waitEntered(t)
	bound := time.Now().Add(300 * time.Millisecond)
	before := p.ServerTime() + uint64(300*time.Millisecond)
	held := make(chan Result, 1)
	go func() {
		held <- p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("held"), StampBefore: before}})[0]
	}()
	waitFor(t, func() bool { m := p.mergerOf("tx"); m.mu.Lock(); defer m.mu.Unlock(); return len(m.queue) == 1 })
	time.Sleep(time.Until(bound) + 10*time.Millisecond)
	close(log.gate)
	select {
	case r := <-held:
		if !errors.Is(r.Err, ErrUnavailable) || r.Version != 0 {
			t.Fatalf("the held write: %+v; want unavailable, unstamped", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the held write was not answered")
	}
	if _, ok := w.Rows["held"]; ok {
		t.Fatal("the held write was stored")
	}
}

// TestStampBeforeBoundary: with the proxy's clock at a known time, a
// bound equal to it is reached (refused), one nanosecond later is not
// (written), and the refusal says by how much the bound had passed.
func TestStampBeforeBoundary(t *testing.T) {
	t.Parallel()
	const at = 10 * time.Second
	for _, tc := range []struct {
		name  string
		bound uint64 // as an offset from ServerTime's value, at+1
		over  string // "" for written
	}{
		{name: "a nanosecond ahead", bound: uint64(at) + 2},
		{name: "exactly the bound", bound: uint64(at) + 1, over: "stamped 0s past"},
		{name: "250 ms past", bound: uint64(at-250*time.Millisecond) + 1, over: "stamped 250ms past"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, log, p := gatedProxy(t, 0)
			close(log.gate)
			p.elapsed = func() time.Duration { return at }
			r := p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("k"), StampBefore: tc.bound}})[0]
			_, stored := w.Rows["k"]
			if tc.over == "" {
				if r.Err != nil || !stored {
					t.Fatalf("%+v (stored %v); want written", r, stored)
				}
				return
			}
			if !errors.Is(r.Err, ErrUnavailable) || !strings.Contains(r.Err.Error(), tc.over) || stored {
				t.Fatalf("%+v (stored %v); want unavailable, %q", r, stored, tc.over)
			}
		})
	}
}

// TestServerTime: the time since the proxy started, plus 1 so that it is
// never 0 (a server_time of 0 means a server that does not tell it).
func TestServerTime(t *testing.T) {
	_, _, p := gatedProxy(t, 0)
	for _, d := range []time.Duration{0, time.Nanosecond, 5 * time.Second} {
		p.elapsed = func() time.Duration { return d }
		if got := p.ServerTime(); got != uint64(d)+1 {
			t.Errorf("ServerTime at %s since the start = %d, want %d", d, got, uint64(d)+1)
		}
	}
}
