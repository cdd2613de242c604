package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// SyncHolder is the capability of a store under test whose durability
// point the suite can hold: Pebble's WAL sync, through a fault-injecting
// filesystem. A store that commits through a database server holds the rule
// "a read never returns a write that is not durable" by commit semantics
// (its reads see committed transactions only, and a commit is durable); the
// suite checks that part on every store, and the held sync on stores that
// offer this.
type SyncHolder interface {
	// HoldSync stops every write that reaches its durability point after
	// the call, just before it is durable. The channel receives when a
	// write is stopped.
	HoldSync() <-chan struct{}
	// ReleaseSync ends the hold: the stopped writes become durable, or,
	// with fail set, their sync fails (a fail-stop store then stops with
	// store.ErrStorage).
	ReleaseSync(fail bool)
}

// testDurableReads: a read never returns a write that is not durable.
func testDurableReads(t *testing.T, s store.Store) {
	create(t, s, "durable")
	testCancelledWrites(t, s)
	if h, ok := s.(SyncHolder); ok {
		testHeldSync(t, s, h)
	}
}

// testCancelledWrites: writes whose context is cancelled at a random moment
// race with readers of their keys. A write that is not in the store once
// Apply returned was never durable; no read may have returned it. (A store
// that read uncommitted data, or served a write before its commit was
// known, fails here.)
func testCancelledWrites(t *testing.T, s store.Store) {
	r := rand.New(rand.NewPCG(rand.Uint64(), 3))
	var absent, present int
	for round := range 30 {
		key := fmt.Sprintf("cancel%d", round)
		apply(t, s, "durable", put(key, 1, "before"))
		// A batch that takes a while: the key and many others.
		muts := []store.Mutation{put(key, 2, "during")}
		for i := range 200 {
			muts = append(muts, put(fmt.Sprintf("%s_%d", key, i), 2, "filler"))
		}
		ctx, cancel := context.WithCancel(t.Context())
		applied := make(chan error, 1)
		go func() {
			_, err := s.Apply(ctx, "durable", muts)
			applied <- err
		}()
		var seen atomic.Bool
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for reader := range 2 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					// The second reader reads with GetMany, when the
					// store has it: the same rule holds.
					row, found, err := readOne(t.Context(), s, reader == 1, "durable", []byte(key))
					if err == nil && found && row.Version == 2 {
						seen.Store(true)
					}
				}
			})
		}
		// Cancel early (an embedded store may not have started) or late (a
		// database round trip or two): both outcomes must happen.
		wait := time.Duration(r.IntN(3000)) * time.Microsecond
		if round%2 == 1 {
			wait = time.Duration(r.IntN(40)) * time.Millisecond
		}
		time.Sleep(wait)
		cancel()
		err := <-applied
		close(stop)
		wg.Wait()
		row, _ := get(t, s, "durable", []byte(key))
		switch {
		case err == nil && row.Version != 2:
			t.Errorf("key %q: Apply succeeded, the store holds version %d", key, row.Version)
		case row.Version == 2:
			present++
		case seen.Load():
			t.Errorf("key %q: a read returned version 2, whose Apply failed (%v) and which the store does not hold", key, err)
		default:
			absent++
		}
	}
	t.Logf("cancelled writes: %d landed, %d did not", present, absent)
}

// readOne reads key at the strongest level with Get or, if many is set and
// the store has it, with GetMany (with other keys around it).
func readOne(ctx context.Context, s store.Store, many bool, table string, key []byte) (store.Row, bool, error) {
	mg, ok := s.(store.MultiGetter)
	if !many || !ok {
		return s.Get(ctx, table, key, strongest(s))
	}
	reads, err := mg.GetMany(ctx, table, [][]byte{[]byte("other"), key, []byte("another")}, strongest(s))
	if err != nil {
		return store.Row{}, false, err
	}
	return reads[1].Row, reads[1].Found, reads[1].Err
}

// testHeldSync holds the durability point of a write: reads of its key
// must not return it (they may wait, or return the previous version) until
// it is durable, and never if its sync fails.
func testHeldSync(t *testing.T, s store.Store, h SyncHolder) {
	ctx := t.Context()
	apply(t, s, "durable", put("held", 1, "v1"))
	for _, fail := range []bool{false, true} { // failing stops the store: last
		v := uint64(2)
		if fail {
			v = 3
		}
		held := h.HoldSync()
		applied := make(chan error, 1)
		go func() {
			_, err := s.Apply(context.Background(), "durable", []store.Mutation{put("held", v, "held")})
			applied <- err
		}()
		select {
		case <-held:
		case err := <-applied:
			h.ReleaseSync(false)
			t.Fatalf("Apply returned (%v) although its sync was held", err)
		case <-time.After(10 * time.Second):
			h.ReleaseSync(false)
			t.Fatal("no write reached the held sync within 10s")
		}
		for _, many := range []bool{false, true} {
			rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			row, found, err := readOne(rctx, s, many, "durable", []byte("held"))
			cancel()
			if err == nil && found && row.Version == v {
				h.ReleaseSync(false)
				t.Fatalf("a read (GetMany: %v) returned version %d while its sync was held", many, v)
			}
		}
		// A read that waits across the end of the hold.
		type result struct {
			row   store.Row
			found bool
			err   error
		}
		got := make(chan result, 1)
		go func() {
			var r result
			r.row, r.found, r.err = s.Get(context.Background(), "durable", []byte("held"), strongest(s))
			got <- r
		}()
		time.Sleep(20 * time.Millisecond)
		h.ReleaseSync(fail)
		var aerr error
		var r result
		deadline := time.After(10 * time.Second)
		for range 2 {
			select {
			case aerr = <-applied:
			case r = <-got:
			case <-deadline:
				t.Fatal("Apply or a read did not return within 10s of the release")
			}
		}
		if !fail {
			if aerr != nil {
				t.Fatalf("Apply after its sync was released: %v", aerr)
			}
			if r.err == nil && r.found && r.row.Version != 1 && r.row.Version != v {
				t.Errorf("read across the hold: version %d, want 1 or %d", r.row.Version, v)
			}
			wantRow(t, s, "durable", []byte("held"), v, false, []byte("held"))
			continue
		}
		if aerr == nil {
			t.Fatalf("Apply whose sync failed succeeded")
		}
		if r.err == nil && r.found && r.row.Version == v {
			t.Errorf("a read returned version %d, whose sync failed", v)
		}
		// A store may go on working after a failed sync only if it can tell
		// the write is gone; a fail-stop store refuses every read.
		row, found, err := s.Get(ctx, "durable", []byte("held"), strongest(s))
		switch {
		case err == nil && found && row.Version == v:
			t.Errorf("after its sync failed, a read returns version %d", v)
		case err != nil && !errors.Is(err, store.ErrStorage):
			t.Errorf("read after a failed sync: %v, want store.ErrStorage or a working store", err)
		}
	}
}
