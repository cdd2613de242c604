package group

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestLateAckCommitFencedWhileLoaded: as TestLateAckCommitFenced, but the
// group stays loaded (member c is in it throughout), so the committer a
// fenced the partition with is still here when the partition moves to c:
// c's first commit must fence the partition anew, at its own epoch, not
// commit through a's committer, or a's commit stuck in the broker lands
// after it, unfenced.
func TestLateAckCommitFencedWhileLoaded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base, tb, l, G, a, batch := lateAckRig(t, 0)
	c, err := G.Join(ctx, tb, "g", "c", false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Leave()
	gate := stuckAck(t, G, l, tb, a, batch, 10)
	l.mu.Lock()
	l.gate = nil // c's commits reach the bus at once
	l.mu.Unlock()
	a.Leave()

	var first Message
	until(t, c, owned{}, func(m Message) {
		if first.Records == nil && len(m.Records) > 0 && c.Check(m) {
			first = m
		}
	}, func() bool { return first.Records != nil })
	if first.Next <= 10 {
		t.Fatalf("c's batch ends at %d: the test needs more than 10", first.Next)
	}
	if r, err := G.Ack(ctx, tb, "g", "c", []Ack{{0, first.Epoch, first.Next}}); err != nil || len(r) > 0 {
		t.Fatalf("c's acknowledgement: %v %v", r, err)
	}
	close(gate) // a's commit of 10 reaches the bus now
	if err := <-l.applied; !errors.Is(err, intentlog.ErrFenced) {
		t.Errorf("a's late commit: %v, want %v (c committed through a's committer)", err, intentlog.ErrFenced)
	}
	cm, err := base.Committed(ctx, LogGroup("g"), tb.Topic)
	if err != nil {
		t.Fatal(err)
	}
	if cm[0] != first.Next {
		t.Fatalf("committed %d, want c's %d", cm[0], first.Next)
	}
}

// TestSharedAckInFlightAcrossRegrantLoaded: as
// TestSharedAckInFlightAcrossRegrant, with the group staying loaded (b2
// is a member before b leaves): the partition moves to b2 in the same
// group state, whose committer of it is b2's when b's commit comes back
// fenced. That refusal is of b's epoch: it must take neither b2's
// committer nor its grant, and b2's acknowledgement commits.
func TestSharedAckInFlightAcrossRegrantLoaded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := openLog(t)
	tb := table(t, base, 1, 20)
	l := &fencingLog{Log: base, st: &fenceState{epoch: map[string]int{}}, applied: make(chan error, 4), waiting: make(chan struct{}, 4)}
	cat := &memCatalog{m: map[string][]byte{}}
	G := New(l, time.Minute).Share(Sharing{Store: &memSwapper{c: cat}, Process: "B", Lease: time.Second, Logger: slog.New(slog.DiscardHandler)})
	defer G.Close()

	b, err := G.Join(ctx, tb, "g", "b", false)
	if err != nil {
		t.Fatal(err)
	}
	var batch Message
	until(t, b, owned{}, func(m Message) {
		if b.Check(m) {
			batch = m
		}
	}, func() bool { return batch.Next >= 12 })
	b2, err := G.Join(ctx, tb, "g", "b2", false)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Leave()
	gate := make(chan struct{})
	l.mu.Lock()
	l.gate = gate
	l.mu.Unlock()
	res := make(chan map[int32]error, 1)
	go func() {
		r, err := G.Ack(ctx, tb, "g", "b", []Ack{{0, batch.Epoch, 10}})
		if err != nil {
			r = map[int32]error{-1: err}
		}
		res <- r
	}()
	<-l.waiting // the commit of 10 is on its way
	l.mu.Lock()
	l.gate = nil
	l.mu.Unlock()
	b.Leave()

	var first Message
	until(t, b2, owned{}, func(m Message) {
		if b2.Check(m) && first.Records == nil {
			first = m
		}
	}, func() bool { return first.Records != nil })
	if first.Epoch == batch.Epoch {
		t.Fatalf("b2 reads under b's epoch %d", batch.Epoch)
	}
	close(gate) // b's commit of 10 reaches the bus now
	if err := <-l.applied; !errors.Is(err, intentlog.ErrFenced) {
		t.Fatalf("b's commit in flight: %v, want ErrFenced", err)
	}
	if r := <-res; !errors.Is(r[0], ErrNotOwner) {
		t.Fatalf("b's acknowledgement whose commit was fenced: %v, want partition 0 refused", r)
	}
	if r, err := G.Ack(ctx, tb, "g", "b2", []Ack{{0, first.Epoch, first.Next}}); err != nil || len(r) > 0 {
		t.Fatalf("b2's acknowledgement after b's fenced one: %v %v", r, err)
	}
	if c, err := base.Committed(ctx, LogGroup("g"), tb.Topic); err != nil || c[0] != first.Next {
		t.Fatalf("committed %v %v, want b2's %d", c, err, first.Next)
	}
}
