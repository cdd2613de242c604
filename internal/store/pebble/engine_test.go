package pebble

import (
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// TestEngineShowsAWriteStall: while Pebble cannot write sstables (the
// flushes hang on the disk), the memtables fill and Pebble stalls the
// writes; Engine shows the stall (and its time growing) while it lasts,
// and the level 0 files, compactions and disk use once the flushes go
// through.
func TestEngineShowsAWriteStall(t *testing.T) {
	t.Parallel()
	fs := openFaulty(t, Options{})
	if e := fs.Engine(); e.Stalls != 0 || e.StallTime != 0 {
		t.Fatalf("a new store reports stalls: %+v", e)
	}
	fs.fault.holdOps(both(isTable, isWrite))
	value := make([]byte, 64<<10)
	_, _ = rand.Read(value) // incompressible: 25 MiB on disk
	done := make(chan error, 1)
	go func() {
		for v := uint64(1); v <= 400; v++ {
			if _, err := fs.Apply(t.Context(), "t", []store.Mutation{{Key: fmt.Appendf(nil, "k%d", v), Value: value, Version: v}}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var stalled Engine
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if stalled = fs.Engine(); stalled.Stalls > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("25 MiB written without a stall while flushes hang (err %v): %+v", err, fs.Engine())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write stall while flushes hang: %+v", fs.Engine())
		}
	}
	if stalled.MemtableBytes == 0 {
		t.Errorf("stalled on full memtables but MemtableBytes is 0: %+v", stalled)
	}
	time.Sleep(20 * time.Millisecond)
	if later := fs.Engine(); later.StallTime <= stalled.StallTime {
		t.Errorf("the running stall's time does not grow: %v, then %v", stalled.StallTime, later.StallTime)
	}
	fs.fault.release(nil)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("writes did not go on once the flushes did")
	}
	if err := fs.db.Flush(); err != nil {
		t.Fatal(err)
	}
	e := fs.Engine()
	if e.Stalls < 1 || e.L0Files+e.Compactions == 0 || e.DiskBytes < 25<<20 || e.ReadAmp < 1 {
		t.Fatalf("after the flushes: %+v, want a stall, sstables in L0 or compacted, 25 MiB on disk, read amplification", e)
	}
	if again := fs.Engine(); again.StallTime != e.StallTime {
		t.Fatalf("the stall's time still grows after it ended: %v, then %v", e.StallTime, again.StallTime)
	}
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	if closed := fs.Engine(); closed.Stalls != e.Stalls || closed.L0Files != 0 {
		t.Fatalf("a closed store reports %+v, want its stalls and nothing of the engine", closed)
	}
}

// TestStallClock: stalls count once however many begin events Pebble
// sends, and their time includes the running one.
func TestStallClock(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	now := t0
	c := newStallClock()
	c.now = func() time.Time { return now }
	steps := []struct {
		at    time.Duration
		event string // begin, end, or "" (only read)
		count int64
		spent time.Duration
	}{
		{0, "end", 0, 0}, // an end without a begin changes nothing
		{0, "begin", 1, 0},
		{time.Second, "", 1, time.Second},
		{time.Second, "begin", 1, time.Second}, // the same stall
		{2 * time.Second, "end", 1, 2 * time.Second},
		{5 * time.Second, "", 1, 2 * time.Second},
		{5 * time.Second, "begin", 2, 2 * time.Second},
		{6 * time.Second, "end", 2, 3 * time.Second},
	}
	for i, s := range steps {
		now = t0.Add(s.at)
		switch s.event {
		case "begin":
			c.begin()
		case "end":
			c.end()
		}
		if n, d := c.total(now); n != s.count || d != s.spent {
			t.Fatalf("step %d (%s at %v): %d stalls, %v; want %d, %v", i, s.event, s.at, n, d, s.count, s.spent)
		}
	}
}
