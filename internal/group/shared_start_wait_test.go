package group

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
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

// TestSharedStartWaitSaysWhy: a join of a new shared group whose start
// cannot be written because the group's syncs fail for another reason
// than the store (a member of another process joined when the table had
// another partition count: ErrPartitions) fails, after its wait, with
// that reason, not with a guess that the store is out of reach.
func TestSharedStartWaitSaysWhy(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l := openLog(t)
	tb := table(t, l, 2, 5)
	cat := &memCatalog{m: map[string][]byte{}}
	const lease = 500 * time.Millisecond
	share := func(proc string) Sharing {
		return Sharing{Store: &memSwapper{c: cat}, Process: proc, Lease: lease, Logger: slog.New(slog.DiscardHandler)}
	}
	A := New(l, time.Minute).Share(share("A"))
	defer A.Close()
	B := New(l, time.Minute).Share(share("B"))
	defer B.Close()
	if _, err := A.Join(ctx, tb, "g", "a", true); err != nil {
		t.Fatal(err)
	}
	// B sees the table created again with three partitions (A's catalog
	// not refreshed yet).
	if err := l.CreateTopic(ctx, "ev3", 3, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	tb3 := Table{Name: tb.Name, Topic: "ev3", Partitions: 3}
	_, err := B.Join(ctx, tb3, "g", "b", true)
	if !errors.Is(err, ErrPartitions) {
		t.Fatalf("B's join: %v; want ErrPartitions (why its group's start could not be written)", err)
	}
}
