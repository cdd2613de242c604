package group

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestSnapshotEndAfterTopicCreatedAgain: a group's snapshot read the
// event topic's end (3: its cursor) and sent its rows; meanwhile the
// topic was deleted and created again behind wail's back, with new
// events. The snapshot's end committed through committers fenced at the
// commit, which took the new topic's id: the old topic's 3 was committed
// on the new topic, and the group's members never got its events 0-2.
// The end commits only on the topic the snapshot started from.
func TestSnapshotEndAfterTopicCreatedAgain(t *testing.T) {
	ctx, l, topic := kafkaTopic(t, "snapshot-recreated", 1)
	if err := appendValues(ctx, l, topic, "a", "b", "c"); err != nil {
		t.Fatal(err)
	}
	tb := Table{Name: "t", Topic: topic, Partitions: 1}
	G := New(l, time.Minute)
	defer G.Close()
	other := realKafkaLog(t)
	var commitErr error
	taken, err := G.Snapshot(ctx, tb, "g", "s", func(ctx context.Context, run *SnapshotRun) error {
		_, end, err := l.Bounds(ctx, topic, 0) // the snapshot's cursor
		if err != nil {
			return err
		}
		recreateTopic(ctx, t, other, topic, 1)
		if err := appendValues(ctx, other, topic, "n0", "n1", "n2", "n3", "n4"); err != nil { // acknowledged writes on the new topic
			return err
		}
		commitErr = run.Commit(ctx, map[int32]int64{0: end})
		return commitErr
	})
	t.Logf("the snapshot: taken %v, %v", taken, err)
	got, cerr := other.CommittedEpochs(ctx, LogGroup("g"), topic)
	if cerr != nil {
		t.Fatal(cerr)
	}
	if at, ok := got[0]; ok {
		t.Fatalf("the group's offset of the new topic is %d, the old topic's snapshot end (commit: %v); "+
			"want none (the new topic's events below it are never read)", at.Offset, commitErr)
	}
	if !errors.Is(commitErr, intentlog.ErrUnknownTopic) {
		t.Fatalf("the snapshot's end after the topic was created again: %v; want %v", commitErr, intentlog.ErrUnknownTopic)
	}
}
