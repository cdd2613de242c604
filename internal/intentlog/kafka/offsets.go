package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// A group's committed offsets are read by naming the topic and its
// partitions, never by asking for every topic of the group: wail's
// consumer groups (wail.consumer.<name>) span every table's topic, and
// from OffsetFetch v10 the broker answers with topic IDs, which the
// client turns back into names from its metadata cache. A topic whose ID
// it could not resolve then (a metadata request that failed under load,
// the IDs of deleted topics the group still lists) came back under no
// name, so a read of "every topic, then pick ours" found nothing and
// took a committed partition for one never committed: a new owner of a
// consumer group's partition started it again at the beginning,
// delivering what members had acknowledged (TestGroupAcrossProcesses on
// Cassandra caught it). Here an answer that does not name a partition
// asked for is an error (errUnanswered), retried by the callers, never
// "no offset".

// errUnanswered: the broker's answer to an offset fetch does not list a
// partition that was asked for (under the topic's name or ID).
var errUnanswered = errors.New("the answer to the offset fetch does not list the partition")

// fetchCommitted reads a group's committed offsets of partitions of topic
// (id: its topic ID, zero when unknown), each with the leader epoch
// committed with it (-1: none): absent from the map, never committed. stable: wait for no transaction (an error wrapping
// kerr.UnstableOffsetCommit while one with a partition's offset is open;
// KIP-447). A group the broker does not know has no offsets.
func (l *Log) fetchCommitted(ctx context.Context, group, topic string, id [16]byte, partitions []int32, stable bool) (map[int32]intentlog.EpochOffset, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.RequireStable = stable
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	rt := kmsg.NewOffsetFetchRequestGroupTopic()
	rt.Topic, rt.TopicID, rt.Partitions = topic, id, partitions
	rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{rt}
	req.Groups = []kmsg.OffsetFetchRequestGroup{rg}
	resp, err := req.RequestWith(ctx, l.cl)
	if err != nil {
		return nil, err
	}
	return offsetsOf(resp, group, topic, id, partitions)
}

// offsetsOf picks the offsets of topic's partitions out of the answer to
// fetchCommitted's request.
func offsetsOf(resp *kmsg.OffsetFetchResponse, group, topic string, id [16]byte, partitions []int32) (map[int32]intentlog.EpochOffset, error) {
	var g *kmsg.OffsetFetchResponseGroup
	for i := range resp.Groups {
		if resp.Groups[i].Group == group {
			g = &resp.Groups[i]
		}
	}
	if g == nil {
		return nil, fmt.Errorf("%w: no answer for group %s", errUnanswered, group)
	}
	if err := kerr.ErrorForCode(g.ErrorCode); errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]intentlog.EpochOffset{}, nil
	} else if err != nil {
		return nil, err
	}
	var t *kmsg.OffsetFetchResponseGroupTopic
	for i := range g.Topics {
		if g.Topics[i].Topic == topic || id != [16]byte{} && g.Topics[i].TopicID == id {
			t = &g.Topics[i]
		}
	}
	out := make(map[int32]intentlog.EpochOffset, len(partitions))
	for _, p := range partitions {
		var rp *kmsg.OffsetFetchResponseGroupTopicPartition
		if t != nil {
			for i := range t.Partitions {
				if t.Partitions[i].Partition == p {
					rp = &t.Partitions[i]
				}
			}
		}
		switch {
		case rp == nil:
			return nil, fmt.Errorf("%w: %s/%d (topic %s)", errUnanswered, topic, p, topicNames(g))
		case rp.ErrorCode != 0:
			return nil, fmt.Errorf("partition %d: %w", p, kerr.ErrorForCode(rp.ErrorCode))
		case rp.Offset >= 0:
			out[p] = intentlog.EpochOffset{Offset: rp.Offset, Epoch: max(rp.LeaderEpoch, -1)}
		}
	}
	return out, nil
}

// topicNames lists the topics of an answer, for an error.
func topicNames(g *kmsg.OffsetFetchResponseGroup) string {
	if len(g.Topics) == 0 {
		return "none listed"
	}
	s := ""
	for i, t := range g.Topics {
		if i > 0 {
			s += ", "
		}
		name := t.Topic
		if name == "" {
			name = fmt.Sprintf("unnamed, id %x", t.TopicID)
		}
		s += name
	}
	return "listed: " + s
}

// plainOffsets drops the epochs of committed offsets.
func plainOffsets(in map[int32]intentlog.EpochOffset) map[int32]int64 {
	if in == nil {
		return nil
	}
	out := make(map[int32]int64, len(in))
	for p, o := range in {
		out[p] = o.Offset
	}
	return out
}
