package kafka

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestTopicIDChecksAskTheBroker: the topic id checks that keep offsets of
// a deleted topic off one created again under its name (a member's check
// before each commit, a consumer group's fence and its commits, the
// Log's topicID) ask the broker each time. Through kadm they took the
// client's cached metadata when younger than MetadataMinAge (250 ms): a
// topic deleted and created again within that time passed as the same.
func TestTopicIDChecksAskTheBroker(t *testing.T) {
	t.Parallel()
	c, l, ctx, topic := oneBrokerRecords(t, "fresh-id", 0)
	var asked int
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, rt := range req.(*kmsg.MetadataRequest).Topics {
			if rt.Topic != nil && *rt.Topic == topic {
				asked++
			}
		}
		return nil, nil, false
	})
	m := &Member{l: l, topicIDs: map[string][16]byte{}, forgotten: map[string]bool{}, unpinned: map[string]error{}}
	m.pinIDs(ctx, map[string][]int32{topic: {0}}) // sameIDs checks the id pinned
	checks := []struct {
		name string
		run  func() error
	}{
		{"Log.topicID", func() error { _, _, err := l.topicID(ctx, topic); return err }},
		{"Member.pinIDs", func() error { _, err := l.pinnedID(ctx, topic); return err }},
		{"Member.sameIDs", func() error {
			return m.sameIDs(ctx, -1, map[string]map[int32]intentlog.EpochOffset{topic: {0: {Offset: 1, Epoch: -1}}})
		}},
		{"FencePartitionOf", func() error { _, err := l.FencePartitionOf(ctx, "g", topic, 0, intentlog.TopicID{}); return err }},
	}
	for _, ch := range checks {
		for range 3 { // back to back, well within MetadataMinAge
			before := asked
			if err := ch.run(); err != nil {
				t.Fatalf("%s: %v", ch.name, err)
			}
			if asked == before {
				t.Fatalf("%s answered from the client's cached metadata; want the broker asked", ch.name)
			}
		}
	}
	// Deleted and created again right after the member pinned the id:
	// its next check sees another id (on the cache it saw the old one).
	delete(m.topicIDs, topic)
	m.pinIDs(ctx, map[string][]int32{topic: {0}})
	if _, err := m.topicID(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if _, err := l.adm.DeleteTopics(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	err := m.sameIDs(ctx, -1, map[string]map[int32]intentlog.EpochOffset{topic: {0: {Offset: 1, Epoch: -1}}})
	if !errors.Is(err, ErrTopicReplaced) {
		t.Fatalf("check right after the topic was created again: %v; want ErrTopicReplaced", err)
	}
}
