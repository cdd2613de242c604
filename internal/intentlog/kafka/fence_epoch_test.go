package kafka

import (
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestFencedCommitEpoch: a fenced committer (the event groups' commits)
// commits the leader epoch with the offset (committed_leader_epoch of
// TxnOffsetCommit) and reads it back, as do CommittedEpochs and the next
// committer after a fence; a commit without an epoch reads back -1. On
// kfake and on a real broker.
func TestFencedCommitEpoch(t *testing.T) {
	t.Parallel()
	for _, onKafka := range []bool{false, true} {
		name := "kfake"
		if onKafka {
			name = "Kafka"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			topic := topicName("fenceepoch")
			var l *Log
			if onKafka {
				brokers := realBrokers(t)
				newJanitor(t, brokers).add(topic)
				l = openLog(t, brokers, nil)
			} else {
				l = openLog(t, fakeBrokers(t), nil)
			}
			ctx := testCtx(t, time.Minute)
			if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
				t.Fatal(err)
			}
			group := "wail.test." + topic
			fence := func() intentlog.FencedEpochCommitter {
				t.Helper()
				c, err := l.FencePartition(ctx, group, topic, 0)
				if err != nil {
					t.Fatal(err)
				}
				return c.(intentlog.FencedEpochCommitter)
			}
			// readBack waits for want as the committer, the log and the
			// next committer read it (a transaction's offsets show once
			// its markers are written).
			readBack := func(c intentlog.FencedEpochCommitter, want intentlog.EpochOffset) {
				t.Helper()
				if got, ok, err := c.CommittedEpoch(ctx); err != nil || !ok || got != want {
					t.Fatalf("the committer reads %+v, %v, %v; want %+v", got, ok, err, want)
				}
				var got map[int32]intentlog.EpochOffset
				for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					var err error
					if got, err = l.CommittedEpochs(ctx, group, topic); err != nil {
						t.Fatal(err)
					}
					if got[0] == want {
						break
					}
				}
				if got[0] != want {
					t.Fatalf("the log reads %+v; want %+v", got[0], want)
				}
				if got, ok, err := fence().CommittedEpoch(ctx); err != nil || !ok || got != want {
					t.Fatalf("the next committer reads %+v, %v, %v; want %+v", got, ok, err, want)
				}
			}
			a := fence()
			if err := a.CommitEpoch(ctx, intentlog.EpochOffset{Offset: 5, Epoch: 3}); err != nil {
				t.Fatal(err)
			}
			readBack(a, intentlog.EpochOffset{Offset: 5, Epoch: 3})
			b := fence()
			if err := b.Commit(ctx, 7); err != nil {
				t.Fatal(err)
			}
			readBack(b, intentlog.EpochOffset{Offset: 7, Epoch: -1})
		})
	}
}
