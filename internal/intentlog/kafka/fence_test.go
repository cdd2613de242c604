package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestFencePartition: on a real broker, a partition's committer commits
// until the next FencePartition of the partition; then its commits fail
// with ErrFenced, including one whose offsets were staged before the fence
// and whose end comes after it (a paused process): the offset read after
// the fence stays what was committed before it.
func TestFencePartition(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 2*time.Minute)
	l := openLog(t, realBrokers(t), nil)
	topic := topicName("fence")
	if err := l.CreateTopic(ctx, topic, 2, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	group := "wail.test." + topic
	// committed waits for the partition's committed offset to be want: a
	// transaction's offsets show once its markers are written, shortly
	// after its end returned.
	committed := func(p int32, want int64) {
		t.Helper()
		var got map[int32]int64
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			var err error
			if got, err = l.Committed(ctx, group, topic); err != nil {
				t.Fatal(err)
			}
			if o, ok := got[p]; ok && o == want {
				return
			}
		}
		t.Fatalf("partition %d: committed %v, want %d", p, got, want)
	}
	fence := func(p int32) *fencedCommitter {
		t.Helper()
		c, err := l.FencePartition(ctx, group, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*fencedCommitter)
	}
	a := fence(0)
	for _, o := range []int64{3, 5} { // each its own transaction
		if err := a.Commit(ctx, o); err != nil {
			t.Fatalf("commit %d: %v", o, err)
		}
	}
	committed(0, 5)

	// b takes the partition: a's commits fail from now on.
	b := fence(0)
	if err := a.Commit(ctx, 9); !errors.Is(err, intentlog.ErrFenced) {
		t.Fatalf("commit of the fenced committer: %v, want ErrFenced", err)
	}
	committed(0, 5)
	if err := b.Commit(ctx, 7); err != nil {
		t.Fatal(err)
	}

	// b stages 11 and pauses before the end; c fences meanwhile and reads
	// 7: b's end fails and its offset never lands.
	var once sync.Once
	staged, resume := make(chan struct{}), make(chan struct{})
	b.afterOffsets = func() {
		once.Do(func() {
			close(staged)
			<-resume
		})
	}
	done := make(chan error, 1)
	go func() { done <- b.Commit(ctx, 11) }()
	<-staged
	c := fence(0)
	committed(0, 7) // the fence aborted the old committer's staged offset
	close(resume)
	if err := <-done; !errors.Is(err, intentlog.ErrFenced) {
		t.Fatalf("end of the fenced committer's transaction: %v, want ErrFenced", err)
	}
	committed(0, 7)
	if err := c.Commit(ctx, 13); err != nil {
		t.Fatal(err)
	}

	// Another partition's committers are independent.
	d := fence(1)
	if err := d.Commit(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(ctx, 15); err != nil {
		t.Fatalf("partition 0's committer after partition 1 was fenced: %v", err)
	}
	committed(0, 15)
	committed(1, 2)
}

// TestFencePartitionCancelled: a commit whose context ends before it is
// sent fails and leaves the committer usable.
func TestFencePartitionCancelled(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, time.Minute)
	l := openLog(t, realBrokers(t), nil)
	topic := topicName("fence-cancel")
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	group := "wail.test." + topic
	c, err := l.FencePartition(ctx, group, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Commit(cctx, 4); err == nil {
		t.Fatal("commit with a cancelled context succeeded")
	}
	if err := c.Commit(ctx, 6); err != nil {
		t.Fatalf("commit after a cancelled one: %v", err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, err := l.Committed(ctx, group, topic)
		if err != nil {
			t.Fatal(err)
		}
		if got[0] == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed %v, want 6", got)
		}
	}
}

// TestFencePartitionConcurrent: commits of one committer at once are
// covered by transactions that commit the highest offset asked; the
// offset ends at the highest, never moved back by a lower one finishing
// last.
func TestFencePartitionConcurrent(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, time.Minute)
	l := openLog(t, realBrokers(t), nil)
	topic := topicName("fence-conc")
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	group := "wail.test." + topic
	c, err := l.FencePartition(ctx, group, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for o := range int64(20) {
		wg.Go(func() {
			if err := c.Commit(ctx, 20-o); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if o, ok, err := c.Committed(ctx); err != nil || !ok || o != 20 {
		t.Fatalf("committed %d (%v, %v), want 20", o, ok, err)
	}
}

// BenchmarkGroupCommit: one partition's offset committed on the real
// broker as a plain OffsetCommit (a group in one process) and through a
// fenced committer (shared groups: a transaction per commit), with
// RunParallel at parallelism 1 and 16 (GOMAXPROCS goroutines each;
// concurrent fenced commits are covered by one transaction). b.N counts
// Commit calls.
func BenchmarkGroupCommit(b *testing.B) {
	brokers := realBrokers(b)
	j := newJanitor(b, brokers)
	l := openLog(b, brokers, nil)
	ctx := context.Background()
	topic := topicName("bench-commit")
	j.add(topic)
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		b.Fatal(err)
	}
	for _, conc := range []int{1, 16} {
		b.Run(fmt.Sprintf("plain/par=%d", conc), func(b *testing.B) {
			group := "wail.bench." + topicName("plain")
			var next atomic.Int64
			b.SetParallelism(conc)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := l.Commit(ctx, group, topic, map[int32]int64{0: next.Add(1)}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run(fmt.Sprintf("fenced/par=%d", conc), func(b *testing.B) {
			group := "wail.bench." + topicName("fenced")
			c, err := l.FencePartition(ctx, group, topic, 0)
			if err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			b.SetParallelism(conc)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := c.Commit(ctx, next.Add(1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestFencedRenew: on a real broker, Renew commits the offset again in a
// transaction of its own even when it is what the committer committed
// (Commit skips it), so that the broker's offsets.retention.minutes counts
// from then; it never moves the offset back below what the committer
// committed, commits an offset read after the fence by a committer that
// committed nothing yet, and fails with ErrFenced once fenced.
func TestFencedRenew(t *testing.T) {
	t.Parallel()
	ctx, fence, committed := fenceRig(t, "fence-renew", time.Minute)
	var sent atomic.Int32 // transactions that staged an offset
	a := fence()
	a.afterOffsets = func() { sent.Add(1) }
	if err := a.Commit(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(ctx, 5); err != nil || sent.Load() != 1 {
		t.Fatalf("commit of the same offset: %v, %d transactions, want 1 (skipped)", err, sent.Load())
	}
	if err := a.Renew(ctx, intentlog.EpochOffset{Offset: 5, Epoch: -1}); err != nil || sent.Load() != 2 {
		t.Fatalf("renew: %v, %d transactions, want 2", err, sent.Load())
	}
	if err := a.Renew(ctx, intentlog.EpochOffset{Offset: 3, Epoch: -1}); err != nil || sent.Load() != 3 {
		t.Fatalf("renew below what was committed: %v, %d transactions, want 3 (5 again)", err, sent.Load())
	}
	committed(a, 5)

	b := fence()
	if err := a.Renew(ctx, intentlog.EpochOffset{Offset: 5, Epoch: -1}); !errors.Is(err, intentlog.ErrFenced) {
		t.Fatalf("renew of the fenced committer: %v, want ErrFenced", err)
	}
	at, ok, err := intentlog.CommittedFenced(ctx, b)
	if err != nil || !ok || at.Offset != 5 {
		t.Fatalf("committed after the fence: %v %v %v, want 5", at, ok, err)
	}
	b.afterOffsets = func() { sent.Add(1) }
	if err := b.Renew(ctx, at); err != nil || sent.Load() != 4 {
		t.Fatalf("renew of the offset read after the fence: %v, %d transactions, want 4", err, sent.Load())
	}
	committed(b, 5)
}

// TestFencedNothingCommittedYet: a new committer asked to renew nothing
// (offset -1: none committed, none asked) runs no transaction; and one
// whose commit landed reads it back even while the broker answers no
// offset (right after a group's first transaction, before its markers
// are written, the broker knows no group): here committed offsets set by
// hand (0 too) on a group the broker never saw.
func TestFencedNothingCommittedYet(t *testing.T) {
	t.Parallel()
	ctx, fence, _ := fenceRig(t, "fence-nothing", time.Minute)
	var sent atomic.Int32
	a := fence()
	a.afterOffsets = func() { sent.Add(1) }
	if err := a.Renew(ctx, intentlog.EpochOffset{Offset: -1, Epoch: -1}); err != nil || sent.Load() != 0 {
		t.Fatalf("renew of nothing: %v, %d transactions, want none", err, sent.Load())
	}
	if at, ok, err := a.CommittedEpoch(ctx); err != nil || ok {
		t.Fatalf("committed before any commit: %v %v %v, want none", at, ok, err)
	}
	for _, last := range []intentlog.EpochOffset{{Offset: 0, Epoch: 2}, {Offset: 7, Epoch: 2}} {
		a.last = last
		if at, ok, err := a.CommittedEpoch(ctx); err != nil || !ok || at != last {
			t.Fatalf("committed while the broker answers none: %v %v %v, want %v", at, ok, err, last)
		}
	}
}
