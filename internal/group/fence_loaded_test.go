package group

import (
	"context"
	"errors"
	"testing"

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
