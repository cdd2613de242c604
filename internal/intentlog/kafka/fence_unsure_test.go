package kafka

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestFencePartitionUnsureEnd: on a real broker, a committer whose last
// transaction's end has an unknown outcome (its EndTxn response was lost:
// the client still holds the producer id and epoch it sent it with)
// recovers at its next commit (KIP-360 with the id and epoch held), whether
// the end was applied (transaction version 2 bumped the epoch meanwhile)
// or never reached the coordinator (the transaction is still open; its
// end, arriving late, is fenced); and fails with ErrFenced when another
// committer fenced the partition meanwhile.
func TestFencePartitionUnsureEnd(t *testing.T) {
	t.Parallel()
	ctx, fence, committed := fenceRig(t, "fence-unsure", 2*time.Minute)
	// lost: a commit of o whose end was applied, its answer lost.
	lost := func(c *fencedCommitter, o int64) {
		t.Helper()
		pid, epoch := c.pid, c.epoch
		if err := c.Commit(ctx, o); err != nil {
			t.Fatal(err)
		}
		c.pid, c.epoch, c.unsure, c.last = pid, epoch, true, intentlog.EpochOffset{Offset: -1, Epoch: -1}
	}

	a := fence()
	e0 := a.epoch
	lost(a, 5)
	if err := a.Commit(ctx, 6); err != nil {
		t.Fatal(err)
	}
	t.Logf("epoch %d, %d after two commits (transaction version 2 bumps it at each end)", e0, a.epoch)
	if err := a.Commit(ctx, 8); err != nil {
		t.Fatalf("commit after an applied end whose answer was lost: %v", err)
	}
	committed(a, 8)

	// The end never reached the coordinator: the transaction is open with
	// 9 staged; the next commit ends it (aborted) and commits 10; the old
	// end, arriving late, is fenced.
	if _, err := a.offsets(ctx, intentlog.EpochOffset{Offset: 9, Epoch: -1}); err != nil {
		t.Fatal(err)
	}
	pid, epoch := a.pid, a.epoch
	a.unsure = true
	if err := a.Commit(ctx, 10); err != nil {
		t.Fatalf("commit after an end that never arrived: %v", err)
	}
	late := &fencedCommitter{l: a.l, txnID: a.txnID, pid: pid, epoch: epoch}
	ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := late.end(ectx, true)
	cancel()
	if err == nil {
		t.Fatal("the late end of the transaction the recovery ended succeeded")
	}
	committed(a, 10)

	// Fenced by another committer while unsure: the recovery fails.
	lost(a, 12)
	b := fence()
	if err := a.Commit(ctx, 14); !errors.Is(err, intentlog.ErrFenced) {
		t.Fatalf("commit of an unsure committer fenced meanwhile: %v, want ErrFenced", err)
	}
	committed(b, 12)
	if err := b.Commit(ctx, 16); err != nil {
		t.Fatal(err)
	}
	committed(b, 16)
}

// TestFencePartitionCoordinatorStuck: a coordinator that answers
// CONCURRENT_TRANSACTIONS forever (a previous transaction that never
// ends) makes FencePartition fail at its context's end, saying so,
// instead of retrying forever: the group does not grant the partition.
func TestFencePartitionCoordinatorStuck(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := testCtx(t, time.Minute)
	l := openLog(t, c.ListenAddrs(), nil)
	topic := topicName("fence-stuck")
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	var inits atomic.Int32
	c.ControlKey(int16(kmsg.InitProducerID), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		inits.Add(1)
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.Version = req.GetVersion()
		resp.ErrorCode = kerr.ConcurrentTransactions.Code
		return resp, nil, true
	})
	fctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err = l.FencePartition(fctx, "wail.test."+topic, topic, 0)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, kerr.ConcurrentTransactions) || inits.Load() < 2 {
		t.Fatalf("fence with a stuck coordinator: %v after %d InitProducerID; want the deadline and CONCURRENT_TRANSACTIONS after retries", err, inits.Load())
	}
}

// TestFencePartitionCancelledBeforeEnd: a commit whose context ends
// between its staged offset and its end still ends its transaction
// (EndTxn is not cancellable: a cancelled one leaves its outcome unknown)
// and reports what happened; the committer stays usable, its next commit
// not needing a recovery.
func TestFencePartitionCancelledBeforeEnd(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, time.Minute)
	l := openLog(t, realBrokers(t), nil)
	topic := topicName("fence-cancel-end")
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	fc, err := l.FencePartition(ctx, "wail.test."+topic, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := fc.(*fencedCommitter)
	cctx, cancel := context.WithCancel(ctx)
	c.afterOffsets = cancel
	if err := c.Commit(cctx, 4); err != nil {
		t.Fatalf("commit whose context ended before its end: %v", err)
	}
	c.afterOffsets = nil
	if c.unsure {
		t.Fatal("an end that answered left the committer unsure")
	}
	if o, ok, err := c.Committed(ctx); err != nil || !ok || o != 4 {
		t.Fatalf("committed %d (%v, %v), want 4", o, ok, err)
	}
	if err := c.Commit(ctx, 6); err != nil {
		t.Fatal(err)
	}
	if o, ok, err := c.Committed(ctx); err != nil || !ok || o != 6 {
		t.Fatalf("committed %d (%v, %v), want 6", o, ok, err)
	}
}

// fenceRig makes a topic of one partition (named after name) on the real
// brokers and returns the test's context, a function that fences its
// partition 0 in one group (each call a new committer), and a check of the
// offset a committer reads as committed.
func fenceRig(t *testing.T, name string, timeout time.Duration) (ctx context.Context, fence func() *fencedCommitter, committed func(*fencedCommitter, int64)) {
	t.Helper()
	ctx = testCtx(t, timeout)
	l := openLog(t, realBrokers(t), nil)
	topic := topicName(name)
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	group := "wail.test." + topic
	fence = func() *fencedCommitter {
		t.Helper()
		c, err := l.FencePartition(ctx, group, topic, 0)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*fencedCommitter)
	}
	committed = func(c *fencedCommitter, want int64) {
		t.Helper()
		if o, ok, err := c.Committed(ctx); err != nil || !ok || o != want {
			t.Fatalf("committed %d (%v, %v), want %d", o, ok, err, want)
		}
	}
	return ctx, fence, committed
}

// TestFencedRenewAfterUnsureEnd: on a real broker, a commit of 5 whose
// end's answer was lost (its outcome unknown to the committer; it was
// applied) fails its acknowledgement, so the group still holds 3 as the
// committed position; the refresh that follows renews 3. It must not move
// the offset back below 5, which the broker has and the member asked for:
// Renew commits the highest offset asked, as the next Commit does. Before,
// it committed 3, and the next owner got 3 and 4 again.
func TestFencedRenewAfterUnsureEnd(t *testing.T) {
	t.Parallel()
	ctx, fence, committed := fenceRig(t, "fence-renew-unsure", time.Minute)
	a := fence()
	if err := a.Commit(ctx, 3); err != nil {
		t.Fatal(err)
	}
	pid, epoch := a.pid, a.epoch
	if err := a.Commit(ctx, 5); err != nil {
		t.Fatal(err)
	}
	a.pid, a.epoch, a.unsure, a.last = pid, epoch, true, intentlog.EpochOffset{Offset: 3, Epoch: -1}
	if err := a.Renew(ctx, intentlog.EpochOffset{Offset: 3, Epoch: -1}); err != nil {
		t.Fatal(err)
	}
	committed(fence(), 5)
}
