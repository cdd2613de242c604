package pebble

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// TestStripeWaitOutlivesDeadline: a write queued behind another batch
// that holds its stripe (in production: that batch's memtable insert in a
// Pebble write stall) past its ctx's deadline is refused unapplied once it
// gets the stripe. (ctx was checked only when Apply began: the write was
// committed after its deadline and answered applied. The proxy gives the
// store write until t0+3W/4 and the resolver reads the key at
// t_ingest+W: a read there finds nothing, the intent is declared
// unmaterialized, and the proxy then acknowledged the write Stored: an
// acknowledged write without an event. The PostgreSQL analogue, a write
// queued behind a row lock, is bounded by lock_timeout; DESIGN.md
// "Ambiguous store writes".)
func TestStripeWaitOutlivesDeadline(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	defer s.Close()
	if err := s.CreateTable(t.Context(), "t"); err != nil {
		t.Fatal(err)
	}
	// two keys in one stripe
	k1 := []byte("k1")
	var k2 []byte
	for i := 0; ; i++ {
		c := fmt.Appendf(nil, "other%d", i)
		if s.stripeOf(rowKey("t", c)) == s.stripeOf(rowKey("t", k1)) {
			k2 = c
			break
		}
	}
	var armed atomic.Bool
	entered, gate := make(chan struct{}), make(chan struct{})
	armed.Store(true)
	s.testHookCheck = func() {
		if armed.CompareAndSwap(true, false) {
			close(entered)
			<-gate // batch A holds the stripe (a stalled memtable insert)
		}
	}
	aDone := make(chan error, 1)
	go func() {
		_, err := s.Apply(context.Background(), "t", []store.Mutation{{Key: k1, Value: []byte("a"), Version: 10}})
		aDone <- err
	}()
	<-entered

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	type res struct {
		out []store.Outcome
		err error
		at  time.Time
	}
	bDone := make(chan res, 1)
	go func() {
		out, err := s.Apply(ctx, "t", []store.Mutation{{Key: k2, Value: []byte("b"), Version: 20}})
		bDone <- res{out, err, time.Now()}
	}()
	<-ctx.Done()
	time.Sleep(50 * time.Millisecond)
	// The resolver's last read, after the deadline: nothing there.
	if _, found, err := s.Get(t.Context(), "t", k2, 0); err != nil || found {
		t.Fatalf("read after the deadline: found %v, %v", found, err)
	}
	close(gate)
	if err := <-aDone; err != nil {
		t.Fatal(err)
	}
	b := <-bDone
	deadline, _ := ctx.Deadline()
	if b.err == nil && b.out[0].Applied {
		row, _, _ := s.Get(t.Context(), "t", k2, 0)
		t.Fatalf("a write whose ctx ended while it waited for its stripe was applied %s after its deadline (row version %d), "+
			"after a read past the deadline found nothing; want store.ErrNotApplied", b.at.Sub(deadline).Round(time.Millisecond), row.Version)
	}
	if !errors.Is(b.err, store.ErrNotApplied) {
		t.Fatalf("err %v, want ErrNotApplied", b.err)
	}
}
