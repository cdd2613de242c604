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
