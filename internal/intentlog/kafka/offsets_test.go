package kafka

import (
	"errors"
	"maps"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestOffsetsOf: the offsets of the partitions asked for are picked out of
// an OffsetFetch answer by the topic's name or its ID; a partition the
// answer does not list is an error (errUnanswered), never "not committed".
func TestOffsetsOf(t *testing.T) {
	id := [16]byte{7}
	other := [16]byte{9}
	part := func(p int32, off int64, code int16) kmsg.OffsetFetchResponseGroupTopicPartition {
		return kmsg.OffsetFetchResponseGroupTopicPartition{Partition: p, Offset: off, ErrorCode: code}
	}
	topic := func(name string, id [16]byte, ps ...kmsg.OffsetFetchResponseGroupTopicPartition) kmsg.OffsetFetchResponseGroupTopic {
		return kmsg.OffsetFetchResponseGroupTopic{Topic: name, TopicID: id, Partitions: ps}
	}
	answer := func(code int16, ts ...kmsg.OffsetFetchResponseGroupTopic) *kmsg.OffsetFetchResponse {
		return &kmsg.OffsetFetchResponse{Groups: []kmsg.OffsetFetchResponseGroup{{Group: "g", ErrorCode: code, Topics: ts}}}
	}
	for _, tc := range []struct {
		name    string
		resp    *kmsg.OffsetFetchResponse
		want    map[int32]int64
		wantErr error
	}{
		{"by name", answer(0, topic("t", [16]byte{}, part(0, 5, 0), part(1, -1, 0))), map[int32]int64{0: 5}, nil},
		{"by id, unnamed", answer(0, topic("", id, part(0, 5, 0), part(1, 3, 0))), map[int32]int64{0: 5, 1: 3}, nil},
		{"never committed", answer(0, topic("t", id, part(0, -1, 0), part(1, -1, 0))), map[int32]int64{}, nil},
		// The bug: another topic's entry (or ours unresolved to a name
		// and an unknown ID) is not an answer about ours.
		{"topic unnamed, other id", answer(0, topic("", other, part(0, 5, 0), part(1, 3, 0))), nil, errUnanswered},
		{"topic missing", answer(0, topic("u", other, part(0, 5, 0))), nil, errUnanswered},
		{"no topics", answer(0), nil, errUnanswered},
		{"partition missing", answer(0, topic("t", id, part(0, 5, 0))), nil, errUnanswered},
		{"no group", &kmsg.OffsetFetchResponse{}, nil, errUnanswered},
		{"unstable", answer(0, topic("t", id, part(0, 5, 0), part(1, -1, kerr.UnstableOffsetCommit.Code))), nil, kerr.UnstableOffsetCommit},
		{"unknown topic id", answer(0, topic("t", id, part(0, 5, 0), part(1, 3, kerr.UnknownTopicID.Code))), nil, kerr.UnknownTopicID},
		{"group unknown: none committed", answer(kerr.GroupIDNotFound.Code), map[int32]int64{}, nil},
		{"group error", answer(kerr.CoordinatorLoadInProgress.Code), nil, kerr.CoordinatorLoadInProgress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := offsetsOf(tc.resp, "g", "t", id, []int32{0, 1})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || got != nil {
					t.Fatalf("offsetsOf = %v, %v; want error %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !maps.Equal(plainOffsets(got), tc.want) {
				t.Fatalf("offsetsOf = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// TestOffsetsOfEpochsAndEdges: offset 0 is committed (not "none"), each
// offset carries its leader epoch (a negative one reads -1), and a reader
// that does not know the topic's ID takes no unnamed topic for its own
// (Kafka answers IDs from OffsetFetch v10; a zero ID is none).
func TestOffsetsOfEpochsAndEdges(t *testing.T) {
	part := func(p int32, off int64, epoch int32) kmsg.OffsetFetchResponseGroupTopicPartition {
		return kmsg.OffsetFetchResponseGroupTopicPartition{Partition: p, Offset: off, LeaderEpoch: epoch}
	}
	answer := func(name string, id [16]byte, ps ...kmsg.OffsetFetchResponseGroupTopicPartition) *kmsg.OffsetFetchResponse {
		return &kmsg.OffsetFetchResponse{Groups: []kmsg.OffsetFetchResponseGroup{{Group: "g",
			Topics: []kmsg.OffsetFetchResponseGroupTopic{{Topic: name, TopicID: id, Partitions: ps}}}}}
	}
	for _, tc := range []struct {
		name    string
		id      [16]byte // the reader's topic ID
		resp    *kmsg.OffsetFetchResponse
		want    map[int32]intentlog.EpochOffset
		wantErr error
	}{
		{name: "offset 0 with its epoch", id: [16]byte{7}, resp: answer("t", [16]byte{7}, part(0, 0, 3), part(1, 9, 4)),
			want: map[int32]intentlog.EpochOffset{0: {Offset: 0, Epoch: 3}, 1: {Offset: 9, Epoch: 4}}},
		{name: "no epoch", id: [16]byte{7}, resp: answer("t", [16]byte{7}, part(0, 5, -1), part(1, 6, -7)),
			want: map[int32]intentlog.EpochOffset{0: {Offset: 5, Epoch: -1}, 1: {Offset: 6, Epoch: -1}}},
		{name: "ID unknown: an unnamed topic is not ours", resp: answer("", [16]byte{}, part(0, 5, 1), part(1, 6, 1)),
			wantErr: errUnanswered},
		{name: "ID unknown, by name", resp: answer("t", [16]byte{}, part(0, 5, 1), part(1, 6, 1)),
			want: map[int32]intentlog.EpochOffset{0: {Offset: 5, Epoch: 1}, 1: {Offset: 6, Epoch: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := offsetsOf(tc.resp, "g", "t", tc.id, []int32{0, 1})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || got != nil {
					t.Fatalf("offsetsOf = %v, %v; want error %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !maps.Equal(got, tc.want) {
				t.Fatalf("offsetsOf = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
