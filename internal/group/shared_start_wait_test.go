package group

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

// TestSharedStartWaitEndsWithMember: a join of a new shared group waits
// for the group's start to be in its entry (the store is out of reach:
// it cannot be). The table is dropped meanwhile, which ends the member:
// the join fails at once with why (ErrTableDropped, which clients are
// told as not found), not two process leases later with a store error
// to retry.
func TestSharedStartWaitEndsWithMember(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l := openLog(t)
	tb := table(t, l, 2, 5)
	sw := &memSwapper{c: &memCatalog{m: map[string][]byte{}}}
	sw.cut.Store(true)
	const lease = 2 * time.Second
	A := New(l, time.Minute).Share(Sharing{Store: sw, Process: "A", Lease: lease, Logger: slog.New(slog.DiscardHandler)})
	defer A.Close()
	type result struct {
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	go func() {
		s, err := A.Join(ctx, tb, "g", "a", true)
		if s != nil {
			s.Leave()
		}
		done <- result{err, time.Now()}
	}()
	time.Sleep(200 * time.Millisecond) // the member is in, its join waits
	dropped := time.Now()
	A.TableDropped(tb.Name, tb.Created, nil)
	r := <-done
	if !errors.Is(r.err, ErrTableDropped) || r.at.Sub(dropped) > lease/2 {
		t.Fatalf("the join ended %s after the drop with %v; want ErrTableDropped at once", r.at.Sub(dropped).Round(time.Millisecond), r.err)
	}
}
