package group

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// fencedProcess is process A of a shared group of one partition on a log
// that fences.
func fencedProcess(t *testing.T) (intentlog.Log, Table, *fencingLog, *Groups) {
	t.Helper()
	base := openLog(t)
	tb := table(t, base, 1, 5)
	l := &fencingLog{Log: base, st: &fenceState{epoch: map[string]int{}}, applied: make(chan error, 4)}
	G := New(l, time.Minute).Share(Sharing{Store: &memSwapper{c: &memCatalog{m: map[string][]byte{}}}, Process: "A",
		Lease: time.Second, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(G.Close)
	return base, tb, l, G
}

// lateCommitFenced: another process's member takes partition 0 (fencing
// it) and acknowledges up to 4; then the commit held at gate reaches the
// bus: it must fail on the fence and leave the position at 4.
func lateCommitFenced(t *testing.T, base intentlog.Log, tb Table, l *fencingLog, gate chan struct{}, what string) {
	t.Helper()
	ctx := context.Background()
	other := &fencingLog{Log: base, st: l.st}
	fc, err := other.FencePartition(ctx, LogGroup("g"), tb.Topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := fc.Commit(ctx, 4); err != nil {
		t.Fatal(err)
	}
	close(gate) // the late commit reaches the bus now
	if err := <-l.applied; !errors.Is(err, intentlog.ErrFenced) {
		t.Fatalf("the late %s commit: %v, want ErrFenced", what, err)
	}
	c, err := base.Committed(ctx, LogGroup("g"), tb.Topic)
	if err != nil {
		t.Fatal(err)
	}
	if c[0] != 4 {
		t.Fatalf("committed %d, want 4 (acknowledged by the other process's member; the late %s moved it back)", c[0], what)
	}
}

// TestSharedLateResetFenced: a Reset whose commit the bus applies late
// (its client gave up; the request was stuck in the broker) while a
// member of another process took the partition and acknowledged further
// must not move the position back under that member: the reset commits
// through the committers it fenced the partitions with, so the member's
// fence makes the late commit fail. Before, Reset committed unfenced and
// the late commit landed.
func TestSharedLateResetFenced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base, tb, l, G := fencedProcess(t)

	gate := make(chan struct{})
	l.mu.Lock()
	l.gate = gate
	l.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err := G.Reset(rctx, tb, "g", map[int32]int64{0: 0})
	cancel()
	if err == nil {
		t.Fatal("a reset whose commit did not return succeeded")
	}

	lateCommitFenced(t, base, tb, l, gate, "reset")
}

// TestSharedLateSnapshotEndFenced: the end of a shared snapshot whose
// commit the bus applies late (the commit returned at the lease's end,
// the request stuck in the broker) while a member of another process
// took the partition and acknowledged further must not move the position
// back: the end commits through committers fenced first.
func TestSharedLateSnapshotEndFenced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base, tb, l, G := fencedProcess(t)

	gate := make(chan struct{})
	var commitErr error
	_, err := G.Snapshot(ctx, tb, "g", "a", func(ctx context.Context, run *SnapshotRun) error {
		l.mu.Lock()
		l.gate = gate
		l.mu.Unlock()
		commitErr = run.Commit(ctx, map[int32]int64{0: 2})
		return commitErr
	})
	if commitErr == nil {
		t.Fatalf("a snapshot end whose commit did not return was accepted (%v)", err)
	}

	lateCommitFenced(t, base, tb, l, gate, "snapshot end")
}

// TestSharedAckInFlightAcrossRegrant: an acknowledgement's commit is in
// flight (without the group's lock) while its partition moves to another
// member of the same process: the new grant fences the partition and
// starts at what was committed before; the commit, reaching the bus
// after, fails on the fence and the acknowledgement is refused, so the
// events it covered, delivered again under the new epoch, were never
// acknowledged as accepted.
func TestSharedAckInFlightAcrossRegrant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := openLog(t)
	tb := table(t, base, 1, 20)
	st := &fenceState{epoch: map[string]int{}}
	l := &fencingLog{Log: base, st: st, applied: make(chan error, 4), waiting: make(chan struct{}, 4)}
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
	if r, err := G.Ack(ctx, tb, "g", "b", []Ack{{0, batch.Epoch, 5}}); err != nil || len(r) > 0 {
		t.Fatalf("first acknowledgement: %v %v", r, err)
	}
	gate := make(chan struct{})
	l.mu.Lock()
	l.gate = gate
	l.mu.Unlock()
	type ackResult struct {
		refused map[int32]error
		err     error
	}
	res := make(chan ackResult, 1)
	go func() {
		r, err := G.Ack(ctx, tb, "g", "b", []Ack{{0, batch.Epoch, 10}})
		res <- ackResult{r, err}
	}()
	<-l.waiting // the commit of 10 is on its way
	l.mu.Lock()
	l.gate = nil // later commits (the new owner's) reach the bus at once
	l.mu.Unlock()
	b.Leave()

	b2, err := G.Join(ctx, tb, "g", "b2", false)
	if err != nil {
		t.Fatal(err)
	}
	var first Message
	until(t, b2, owned{}, func(m Message) {
		if b2.Check(m) && first.Records == nil {
			first = m
		}
	}, func() bool { return first.Records != nil })
	if first.Records[0].Offset != 5 || first.Epoch == batch.Epoch {
		t.Fatalf("the new owner starts at %d under epoch %d, want 5 under an epoch after %d", first.Records[0].Offset, first.Epoch, batch.Epoch)
	}
	close(gate) // the commit of 10 reaches the bus now
	if err := <-l.applied; !errors.Is(err, intentlog.ErrFenced) {
		t.Fatalf("the commit in flight: %v, want ErrFenced", err)
	}
	r := <-res
	if r.err != nil || !errors.Is(r.refused[0], ErrNotOwner) {
		t.Fatalf("the acknowledgement whose commit was fenced: %v %v, want partition 0 refused", r.refused, r.err)
	}
	c, err := base.Committed(ctx, LogGroup("g"), tb.Topic)
	if err != nil {
		t.Fatal(err)
	}
	if c[0] != 5 {
		t.Fatalf("committed %d, want 5", c[0])
	}
}

// TestSharedGrantFenceFails: a claimed partition whose fence fails is not
// granted (no batch of it is delivered) and is released; a later sync
// claims it again and grants it once its fence succeeds. The partitions
// fenced in the same grant are granted at once.
func TestSharedGrantFenceFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := openLog(t)
	tb := table(t, base, 2, 5)
	st := &fenceState{epoch: map[string]int{}}
	l := &fencingLog{Log: base, st: st, failFence: map[int32]int{1: 2}}
	cat := &memCatalog{m: map[string][]byte{}}
	G := New(l, time.Minute).Share(Sharing{Store: &memSwapper{c: cat}, Process: "A", Lease: time.Second, Logger: slog.New(slog.DiscardHandler)})
	defer G.Close()

	a, err := G.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	o := owned{}
	var order []int32 // partitions granted, in order
	until(t, a, o, func(m Message) {
		if _, ok := o[m.Partition]; !ok {
			t.Fatalf("a batch of partition %d, not granted", m.Partition)
		}
	}, func() bool {
		for p := range o {
			if !slices.Contains(order, p) {
				order = append(order, p)
			}
		}
		return len(o) == 2
	})
	if order[0] != 0 {
		t.Fatalf("partitions granted in order %v; want 0 first (1's fence failed)", order)
	}
	l.mu.Lock()
	left := l.failFence[1]
	l.mu.Unlock()
	if left != 0 {
		t.Fatalf("partition 1 granted with %d injected fence failures left", left)
	}
}
