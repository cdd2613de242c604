package group

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/kafka"
)

// fenceHookedKafka runs before once, at the first fence of a partition.
type fenceHookedKafka struct {
	*kafka.Log
	once   sync.Once
	before func()
}

func (l *fenceHookedKafka) FencePartitionOf(ctx context.Context, group, topic string, p int32, id intentlog.TopicID) (intentlog.FencedCommitter, error) {
	l.once.Do(l.before)
	return l.Log.FencePartitionOf(ctx, group, topic, p, id)
}

func (l *fenceHookedKafka) FencePartition(ctx context.Context, group, topic string, p int32) (intentlog.FencedCommitter, error) {
	return l.FencePartitionOf(ctx, group, topic, p, intentlog.TopicID{})
}

// TestSharedStartAfterTopicCreatedAgain: a new group shared by processes
// starts at "latest": its join fixed the topic's end (3) as the
// partition's start; the topic was deleted and created again behind
// wail's back, with new events, before the partition's grant, which
// fenced the new topic and committed the old topic's 3 on it: the
// group's member read the new topic from 3, its events 0-2 skipped.
// Every event of the topic fenced came after the start: the partition
// starts at its start.
func TestSharedStartAfterTopicCreatedAgain(t *testing.T) {
	ctx, l, topic := kafkaTopic(t, "shstart", 1)
	if err := appendValues(ctx, l, topic, "a", "b", "c"); err != nil {
		t.Fatal(err)
	}
	other := realKafkaLog(t)
	hl := &fenceHookedKafka{Log: l, before: func() {
		recreateTopic(ctx, t, other, topic, 1)
		if err := appendValues(ctx, other, topic, "n0", "n1", "n2", "n3", "n4"); err != nil { // acknowledged writes on the new topic
			t.Error(err)
		}
	}}
	tb := Table{Name: "t", Topic: topic, Partitions: 1}
	G := New(hl, time.Minute).Share(Sharing{Store: &memSwapper{c: &memCatalog{m: map[string][]byte{}}}, Process: "P1",
		Lease: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	defer G.Close()
	a, err := G.Join(ctx, tb, "g", "a", true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Leave()
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	var got []string
	for len(got) < 5 {
		m, err := a.Next(rctx)
		if err != nil {
			t.Fatalf("a: %v after %v; want the new topic's events 0-4", err, got)
		}
		for _, r := range m.Records {
			got = append(got, fmt.Sprintf("%d:%s", r.Offset, r.Value))
		}
	}
	if want := "[0:n0 1:n1 2:n2 3:n3 4:n4]"; fmt.Sprint(got) != want {
		t.Fatalf("a got %v of the new topic; want %s (every event of a topic created again after the group's start)", got, want)
	}
}
