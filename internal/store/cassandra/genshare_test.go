package cassandra

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestGenerationReadBeforeANewEntryNotCachedOverIt: a read of a table's
// generation begun before its catalog entry was seen to change (Tables:
// the table was dropped and created again by another process) must not
// be cached over the read of a request that knew the new entry. Both
// were in flight when Tables forgot the table's generations; the second
// read replaced the first as the table's read in flight, so the forget
// saw only it (begun at the new seq) and let the first be cached when it
// ended last: every request then used the generation read before the
// new entry (a dropped table's), until the next listing of the catalog.
// Needs no cluster: the reads are held by the fault hook.
func TestGenerationReadBeforeANewEntryNotCachedOverIt(t *testing.T) {
	s := &Store{gensReady: true}
	var mu sync.Mutex
	held := map[int]chan struct{}{}
	started := 0
	s.fault = func(op string, run func() error) error {
		if op != "generation" {
			return nil
		}
		mu.Lock()
		started++
		c := make(chan struct{})
		held[started] = c
		mu.Unlock()
		<-c
		return nil // no session: the generation read is 0 either way
	}
	startedNow := func() int {
		mu.Lock()
		defer mu.Unlock()
		return started
	}
	release := func(n int) {
		mu.Lock()
		c := held[n]
		mu.Unlock()
		close(c)
	}
	waitStarted := func(n int) {
		deadline := time.Now().Add(5 * time.Second)
		for startedNow() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d generation reads began, want %d", startedNow(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	s.seqs.set("t", 1)
	var wg sync.WaitGroup
	read := func() {
		wg.Go(func() {
			if _, err := s.currentGen(t.Context(), "t"); err != nil {
				t.Error(err)
			}
		})
	}
	read() // A: as of seq 1
	waitStarted(1)
	s.seqs.raise("t", 2) // Tables: the table's entry is a new one ...
	read()               // B, knowing seq 2, does not share A's read
	waitStarted(2)
	s.forgetGen("t", 2) // ... and Tables forgets what was read before it
	release(2)          // B ends first and caches its read, as of seq 2
	for {
		s.gens.mu.Lock()
		_, ok := s.gens.m["t"]
		s.gens.mu.Unlock()
		if ok {
			break
		}
		time.Sleep(time.Millisecond)
	}
	release(1) // then A
	wg.Wait()
	s.gens.mu.Lock()
	c, ok := s.gens.m["t"]
	s.gens.mu.Unlock()
	if ok && c.asOf < 2 {
		t.Fatalf("cached: the generation read as of catalog seq %d, while seq 2 is known; want none read before seq 2", c.asOf)
	}
}

// TestGenerationReadPanickedIsNotWaitedFor: a request whose generation
// read panics (recovered above it: net/http recovers a handler's panic)
// must not leave its read in flight for good: every later request of the
// table waited for it until its own deadline.
func TestGenerationReadPanickedIsNotWaitedFor(t *testing.T) {
	s := &Store{gensReady: true}
	first := true
	s.fault = func(op string, run func() error) error {
		if op == "generation" && first {
			first = false
			panic("a read that panics")
		}
		return nil
	}
	func() {
		defer func() { _ = recover() }()
		_, _ = s.currentGen(t.Context(), "t")
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.currentGen(ctx, "t"); err != nil {
		t.Fatalf("the read after one that panicked: %v; want it read", err)
	}
}
