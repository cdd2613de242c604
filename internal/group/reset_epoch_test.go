package group

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestResetKeepsEpochsIncreasing: a member that left (its stream
// dropped) still holds events of epoch E and acknowledges them late. The
// operator reset the group meanwhile and the member joined again. Epochs
// must keep increasing while the process lives (DESIGN.md), so the late
// acknowledgement of the old epoch is refused. (Reset dropped the group's
// epoch sequence: the new grant reused epoch E and the stale
// acknowledgement was committed over events the new session had not
// acknowledged.)
func TestResetKeepsEpochsIncreasing(t *testing.T) {
	ctx := context.Background()
	l := openLog(t)
	tb := table(t, l, 1, 5)
	g := New(l, time.Minute)
	defer g.Close()
	a, err := g.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	old := next(t, a).Granted[0]
	batch := next(t, a)
	if !a.Check(batch) {
		t.Fatal("batch refused")
	}
	a.Leave() // its stream dropped; the application still holds the batch

	if err := g.Reset(ctx, tb, "g", map[int32]int64{0: 0}); err != nil {
		t.Fatal(err)
	}
	a2, err := g.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Leave()
	cur := next(t, a2).Granted[0]
	b2 := next(t, a2)
	if !a2.Check(b2) {
		t.Fatal("batch refused")
	}
	// The late acknowledgement of the first session's batch.
	refused, err := g.Ack(ctx, tb, "g", "a", []Ack{{Partition: 0, Epoch: old.Epoch, Next: batch.Next}})
	if err != nil {
		t.Fatal(err)
	}
	if cur.Epoch <= old.Epoch || !errors.Is(refused[0], ErrNotOwner) {
		c, _ := l.Committed(ctx, LogGroup("g"), tb.Topic)
		t.Fatalf("after reset the grant reuses epoch %d (before: %d); the stale ack of epoch %d was %v, committed %v "+
			"although the new session acknowledged nothing", cur.Epoch, old.Epoch, old.Epoch, refused[0], c)
	}
}
