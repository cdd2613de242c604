package pebble

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// TestOverlappingFlights: batch A writes a key, then batch B writes it again
// while A's WAL sync is still running; A becomes durable, B not yet. Landing
// A must leave B's flight in place: a Get must wait for B's sync rather than
// return B's version, which a crash could still take away. Once both are
// durable, no flight is left behind.
func TestOverlappingFlights(t *testing.T) {
	fs := openFaulty(t, Options{})
	mustApply(t, fs.Store, mut("k", 1))
	rk := rowKey("t", []byte("k"))
	apply := func(m store.Mutation) <-chan error {
		done := make(chan error, 1)
		go func() {
			done <- noPanic(func() error { _, err := fs.Apply(context.Background(), "t", []store.Mutation{m}); return err })
		}()
		return done
	}
	waitHeld := func(what string) {
		t.Helper()
		select {
		case <-fs.fault.held:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no WAL sync reached the gate within 10s", what)
		}
	}

	fs.fault.gateOps(both(isWAL, isSync))
	a := apply(mut("k", 2))
	waitHeld("A")
	b := apply(mut("k", 3))
	// B is applied (Pebble shows its version) while A's sync waits, so B's
	// record is not part of that sync.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if v, _, err := fs.version(rk); err == nil && v == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B was not applied within 10s")
		}
	}
	within(t, 10*time.Second, "the pass of A's sync", func() struct{} { fs.fault.pass(); return struct{}{} })
	if err := within(t, 10*time.Second, "A", func() error { return <-a }); err != nil {
		t.Fatalf("A, whose sync passed: %v", err)
	}
	waitHeld("B")
	select {
	case err := <-b:
		t.Fatalf("B returned (%v) while its sync waits", err)
	default:
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	row, found, err := fs.Get(ctx, "t", []byte("k"), 0)
	cancel()
	if err == nil && found && row.Version == 3 {
		t.Fatal("Get returned version 3 while its WAL sync waits: landing A forgot B's flight")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get while B's sync waits: %+v found=%v err=%v, want it to wait until its deadline", row, found, err)
	}

	within(t, 10*time.Second, "the pass of B's sync", func() struct{} { fs.fault.pass(); return struct{}{} })
	if err := within(t, 10*time.Second, "B", func() error { return <-b }); err != nil {
		t.Fatalf("B, whose sync passed: %v", err)
	}
	row, found, err = fs.Get(t.Context(), "t", []byte("k"), 0)
	if err != nil || !found || row.Version != 3 {
		t.Errorf("Get after B is durable: %+v found=%v err=%v, want version 3", row, found, err)
	}
	if f := fs.flightOf(rk, fs.stripeOf(rk)); f != nil {
		t.Error("a flight is left behind after both batches are durable")
	}
}

// TestCatalogReadsAreDurable: a catalog read (Tables, SwapTable) never
// returns an entry whose WAL sync is still running: it waits for the write,
// and fails with it when the sync fails (a crash would take the entry away).
func TestCatalogReadsAreDurable(t *testing.T) {
	fs := openFaulty(t, Options{})
	ctx := context.Background()
	held := fs.HoldSync()
	saved := make(chan error, 1)
	go func() {
		saved <- noPanic(func() error { return fs.SaveTable(ctx, store.Table{Name: "u", Spec: []byte("v1")}) })
	}()
	select {
	case <-held:
	case err := <-saved:
		t.Fatalf("SaveTable returned (%v) although its sync was held", err)
	case <-time.After(10 * time.Second):
		t.Fatal("SaveTable did not reach the held sync within 10s")
	}
	type result struct {
		what string
		got  string // the entry u as read
		err  error
	}
	reads := make(chan result, 2)
	go func() {
		r := result{what: "Tables"}
		r.err = noPanic(func() error {
			ts, err := fs.Tables(ctx)
			for _, tb := range ts {
				if tb.Name == "u" {
					r.got = string(tb.Spec)
				}
			}
			return err
		})
		reads <- r
	}()
	go func() {
		r := result{what: "SwapTable"}
		r.err = noPanic(func() error {
			cur, _, err := fs.SwapTable(ctx, "u", []byte("v0"), []byte("v2"))
			r.got = string(cur)
			return err
		})
		reads <- r
	}()
	select {
	case r := <-reads:
		t.Fatalf("%s returned (entry %q, %v) while the entry's sync is held", r.what, r.got, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	fs.ReleaseSync(true)
	if err := within(t, 10*time.Second, "SaveTable", func() error { return <-saved }); !errors.Is(err, store.ErrStorage) {
		t.Errorf("SaveTable whose sync failed: %v, want store.ErrStorage", err)
	}
	for range 2 {
		r := within(t, 10*time.Second, "a catalog read", func() result { return <-reads })
		if r.got != "" || !errors.Is(r.err, store.ErrStorage) {
			t.Errorf("%s after the entry's sync failed: entry %q, %v; want store.ErrStorage and no entry", r.what, r.got, r.err)
		}
	}
}
