package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// fenceState is a bus's fencing of group partitions, shared by the
// processes' logs: per partition, the newest committer.
type fenceState struct {
	mu    sync.Mutex
	epoch map[string]int
}

// fencingLog is one process's access to a log that fences partition
// commits (as Kafka does with a transactional id per group partition).
// While gate is set, its commits reach the bus only once gate is closed
// (a paused process whose requests the bus applies late); Commit returns
// when its context ends, as a client that gave up, and each late apply's
// result goes to applied.
type fencingLog struct {
	intentlog.Log
	st      *fenceState
	mu      sync.Mutex
	gate    chan struct{}
	applied chan error
	waiting chan struct{} // if set, told of each commit held at the gate
	// failFence: per partition, how many fences fail (under mu).
	failFence map[int32]int
}

func (l *fencingLog) FencePartition(_ context.Context, group, topic string, p int32) (intentlog.FencedCommitter, error) {
	l.mu.Lock()
	if l.failFence[p] > 0 {
		l.failFence[p]--
		l.mu.Unlock()
		return nil, errors.New("fence: injected failure")
	}
	l.mu.Unlock()
	k := fmt.Sprint(group, "/", topic, "/", p)
	l.st.mu.Lock()
	defer l.st.mu.Unlock()
	l.st.epoch[k]++
	return &fakeCommitter{l: l, k: k, epoch: l.st.epoch[k], group: group, topic: topic, p: p}, nil
}

type fakeCommitter struct {
	l            *fencingLog
	k            string
	epoch        int
	group, topic string
	p            int32
	hi           int64 // the highest offset committed; under l.st.mu
}

func (c *fakeCommitter) Commit(ctx context.Context, o int64) error {
	return c.l.reach(ctx, func() error {
		c.l.st.mu.Lock()
		defer c.l.st.mu.Unlock()
		if c.l.st.epoch[c.k] != c.epoch {
			return intentlog.ErrFenced
		}
		o = max(o, c.hi) // never back (FencedCommitter's contract)
		if err := c.l.Log.Commit(context.Background(), c.group, c.topic, map[int32]int64{c.p: o}); err != nil {
			return err
		}
		c.hi = o
		return nil
	})
}

// Renew commits at again (or what this committer committed, if higher),
// as Kafka's committer does (intentlog.CommitRenewer).
func (c *fakeCommitter) Renew(ctx context.Context, at intentlog.EpochOffset) error {
	return c.l.reach(ctx, func() error {
		c.l.st.mu.Lock()
		defer c.l.st.mu.Unlock()
		if c.l.st.epoch[c.k] != c.epoch {
			return intentlog.ErrFenced
		}
		o := max(at.Offset, c.hi)
		if err := c.l.Log.Commit(context.Background(), c.group, c.topic, map[int32]int64{c.p: o}); err != nil {
			return err
		}
		c.hi = o
		return nil
	})
}

func (c *fakeCommitter) Committed(ctx context.Context) (int64, bool, error) {
	m, err := c.l.Log.Committed(ctx, c.group, c.topic)
	o, ok := m[c.p]
	return o, ok, err
}

// Commit is the unfenced commit (a log that cannot fence), gated too.
func (l *fencingLog) Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error {
	return l.reach(ctx, func() error { return l.Log.Commit(context.Background(), group, topic, offsets) })
}

// reach applies a commit on the bus: at once, or once the gate opens.
func (l *fencingLog) reach(ctx context.Context, apply func() error) error {
	l.mu.Lock()
	gate := l.gate
	l.mu.Unlock()
	if gate == nil {
		return apply()
	}
	if l.waiting != nil {
		l.waiting <- struct{}{}
	}
	done := make(chan error, 1)
	go func() {
		<-gate
		err := apply()
		done <- err
		l.applied <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestSharedLateCommitFenced: process B's acknowledgement is committed
// late (its commit returned with the client's deadline, the bus applies
// it after the partition moved to process A and A's member acknowledged
// further): the late commit is refused by the fence A put on the
// partition when it took it, and the position stays where A's member
// acknowledged. Without fencing it moved back, and the next owner got the
// acknowledged events again (TestGroupAcrossProcesses in CI).
func TestSharedLateCommitFenced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const lease = time.Second
	base := openLog(t)
	tb := table(t, base, 1, 5)
	st := &fenceState{epoch: map[string]int{}}
	la, lb := &fencingLog{Log: base, st: st}, &fencingLog{Log: base, st: st, applied: make(chan error, 4)}
	cat := &memCatalog{m: map[string][]byte{}}
	share := func(proc string) Sharing {
		return Sharing{Store: &memSwapper{c: cat}, Process: proc, Lease: lease, Logger: slog.New(slog.DiscardHandler)}
	}
	A := New(la, time.Minute).Share(share("A"))
	B := New(lb, time.Minute).Share(share("B"))
	defer A.Close()
	defer B.Close()

	b, err := B.Join(ctx, tb, "g", "b", false)
	if err != nil {
		t.Fatal(err)
	}
	var batch Message // the last one delivered
	until(t, b, owned{}, func(m Message) {
		if b.Check(m) {
			batch = m
		}
	}, func() bool { return batch.Next >= 12 })
	if r, err := B.Ack(ctx, tb, "g", "b", []Ack{{0, batch.Epoch, 5}}); err != nil || len(r) > 0 {
		t.Fatalf("first acknowledgement: %v %v", r, err)
	}
	gate := make(chan struct{})
	lb.mu.Lock()
	lb.gate = gate
	lb.mu.Unlock()
	if r, err := B.Ack(ctx, tb, "g", "b", []Ack{{0, batch.Epoch, 10}}); err == nil && len(r) == 0 {
		t.Fatal("an acknowledgement whose commit did not return was accepted")
	}
	b.Leave()

	a, err := A.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	o := owned{}
	var first Message
	var last Message
	until(t, a, o, func(m Message) {
		if a.Check(m) {
			if first.Records == nil {
				first = m
			}
			last = m
		}
	}, func() bool { return last.Next >= 15 })
	if first.Records[0].Offset != 5 {
		t.Fatalf("process A's member starts at %d, want 5 (the accepted acknowledgement)", first.Records[0].Offset)
	}
	if r, err := A.Ack(ctx, tb, "g", "a", []Ack{{0, first.Epoch, 15}}); err != nil || len(r) > 0 {
		t.Fatalf("acknowledgement of process A's member: %v %v", r, err)
	}
	close(gate) // B's commit of 10 reaches the bus now
	if err := <-lb.applied; !errors.Is(err, intentlog.ErrFenced) {
		t.Fatalf("the late commit: %v, want ErrFenced", err)
	}
	c, err := base.Committed(ctx, LogGroup("g"), tb.Topic)
	if err != nil {
		t.Fatal(err)
	}
	if c[0] != 15 {
		t.Fatalf("committed %d, want 15 (acknowledged by process A's member; the late commit of 10 moved it back)", c[0])
	}
}
