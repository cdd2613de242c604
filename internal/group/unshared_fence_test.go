package group

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestLateAckCommitFenced: a group served by one process (unshared) on a
// log whose commits can land after the client gave up (Kafka with a
// store that is not shared): member a's acknowledgement times out with
// its commit stuck in the broker, a leaves, b takes the partition and
// acknowledges further; then the stuck commit reaches the bus. It must
// fail on a fence, not move the position back under b (b's
// acknowledged events would go again to the next owner, and a reset
// would be undone as well).
func TestLateAckCommitFenced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base, tb, l, G, a, batch := lateAckRig(t, 0)
	gate := stuckAck(t, G, l, tb, a, batch, 10)
	l.mu.Lock()
	l.gate = nil // b's commits reach the bus at once
	l.mu.Unlock()
	a.Leave()

	acked := joinAckLeave(t, G, tb, "b")
	if acked <= 10 {
		t.Fatalf("b acknowledged %d: the test needs more than 10", acked)
	}
	close(gate) // a's commit of 10 reaches the bus now
	if err := <-l.applied; !errors.Is(err, intentlog.ErrFenced) {
		t.Errorf("a's late commit: %v, want %v", err, intentlog.ErrFenced)
	}
	c, err := base.Committed(ctx, LogGroup("g"), tb.Topic)
	if err != nil {
		t.Fatal(err)
	}
	if c[0] != acked {
		t.Fatalf("committed %d, want %d (b's acknowledgement; a's late commit moved it back)", c[0], acked)
	}
}

// TestLateStartCommitFenced: as TestLateAckCommitFenced, for the start a
// new group's first join commits: a join whose start commit timed out
// (stuck in the broker) failed; the next join started the group, and its
// member acknowledged; then the stuck start commit reaches the bus: it
// must fail on a fence, not move the position back to the start.
func TestLateStartCommitFenced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := openLog(t)
	tb := table(t, base, 1, 5)
	l := &fencingLog{Log: base, st: &fenceState{epoch: map[string]int{}}, applied: make(chan error, 4), waiting: make(chan struct{}, 4)}
	G := New(l, time.Minute)
	defer G.Close()

	gate := make(chan struct{})
	l.mu.Lock()
	l.gate = gate
	l.mu.Unlock()
	jctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := G.Join(jctx, tb, "g", "a", false)
	cancel()
	if err == nil {
		t.Fatal("a join whose start commit did not return succeeded")
	}
	<-l.waiting
	l.mu.Lock()
	l.gate = nil
	l.mu.Unlock()

	acked := joinAckLeave(t, G, tb, "b")
	close(gate) // the first join's start commit reaches the bus now
	if err := <-l.applied; !errors.Is(err, intentlog.ErrFenced) {
		t.Errorf("the late start commit: %v, want %v", err, intentlog.ErrFenced)
	}
	c, err := base.Committed(ctx, LogGroup("g"), tb.Topic)
	if err != nil {
		t.Fatal(err)
	}
	if c[0] != acked {
		t.Fatalf("committed %d, want %d (b's acknowledgement; the late start commit moved it back)", c[0], acked)
	}
}

// TestLateAckLandsBeforeFirstCommit: as TestLateAckCommitFenced, but a's
// stuck commit of 10 reaches the bus after b took the partition (at the
// 5 a acknowledged) and before b's first commit, which is what fences
// the partition: it lands. b then acknowledges 7: its first commit must
// not move the group's position back from 10 (a processed those events;
// a restart would deliver them again, and `wail group describe` showed
// the position going back). The first commit reads the position after
// its fence and never commits below it.
func TestLateAckLandsBeforeFirstCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base, tb, l, G, a, batch := lateAckRig(t, 12)
	if r, err := G.Ack(ctx, tb, "g", "a", []Ack{{0, batch.Epoch, 5}}); err != nil || len(r) > 0 {
		t.Fatalf("a's first acknowledgement: %v %v", r, err)
	}
	gate := stuckAck(t, G, l, tb, a, batch, 10)
	l.mu.Lock()
	l.gate = nil
	l.mu.Unlock()
	a.Leave()

	b, err := G.Join(ctx, tb, "g", "b", false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Leave()
	var first Message
	until(t, b, owned{}, func(m Message) {
		if first.Records == nil && len(m.Records) > 0 && b.Check(m) {
			first = m
		}
	}, func() bool { return first.Records != nil })
	if first.Records[0].Offset != 5 {
		t.Fatalf("b starts at %d, want 5 (a's accepted acknowledgement)", first.Records[0].Offset)
	}
	close(gate) // a's commit of 10 reaches the bus before b's first commit
	if err := <-l.applied; err != nil {
		t.Fatalf("a's late commit, before any fence: %v", err)
	}
	if r, err := G.Ack(ctx, tb, "g", "b", []Ack{{0, first.Epoch, 7}}); err != nil || len(r) > 0 {
		t.Fatalf("b's acknowledgement: %v %v", r, err)
	}
	c, err := base.Committed(ctx, LogGroup("g"), tb.Topic)
	if err != nil {
		t.Fatal(err)
	}
	if c[0] < 10 {
		t.Fatalf("committed %d after b's first commit: moved back from 10", c[0])
	}
	_, parts, err := G.Describe(ctx, tb, "g")
	if err != nil || parts[0].Committed != c[0] {
		t.Fatalf("describe: %+v %v, want committed %d", parts, err, c[0])
	}
}

// lateAckRig opens a one-partition table of 5 records on a fencingLog, a
// group whose acknowledgements' commits are bounded by half a second
// (closed with the test), and member a with its first batch of records
// whose Next is at least minNext.
func lateAckRig(t *testing.T, minNext int64) (intentlog.Log, Table, *fencingLog, *Groups, *Session, Message) {
	t.Helper()
	base := openLog(t)
	tb := table(t, base, 1, 5)
	l := &fencingLog{Log: base, st: &fenceState{epoch: map[string]int{}}, applied: make(chan error, 4), waiting: make(chan struct{}, 4)}
	G := New(l, time.Second) // acknowledgements' commits bounded by half of it
	t.Cleanup(G.Close)
	a, err := G.Join(context.Background(), tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	var batch Message
	until(t, a, owned{}, func(m Message) {
		if batch.Records == nil && len(m.Records) > 0 && a.Check(m) {
			batch = m
		}
	}, func() bool { return batch.Records != nil && batch.Next >= minNext })
	return base, tb, l, G, a, batch
}

// stuckAck holds the log's commits at a gate and has a acknowledge up to
// offset: the acknowledgement must fail (its commit never returned) while
// the commit stays stuck in the log; close the returned gate to let it
// land.
func stuckAck(t *testing.T, G *Groups, l *fencingLog, tb Table, a *Session, batch Message, offset int64) chan struct{} {
	t.Helper()
	gate := make(chan struct{})
	l.mu.Lock()
	l.gate = gate
	l.mu.Unlock()
	if r, err := G.Ack(context.Background(), tb, "g", "a", []Ack{{0, batch.Epoch, offset}}); err == nil && len(r) == 0 {
		t.Fatal("an acknowledgement whose commit did not return was accepted")
	}
	<-l.waiting
	return gate
}
