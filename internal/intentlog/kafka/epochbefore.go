package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

var _ intentlog.EpochFinder = (*Log)(nil)

// EpochsBefore implements intentlog.EpochFinder: each offset with the
// leader epoch of the record before it, read from the log without
// isolation (the epoch of its batch: transaction markers and records of
// open or aborted transactions count, as they do for a reader's
// EpochBefore and for the broker's OffsetForLeaderEpoch). The epoch is -1
// where there is no record before the offset to read: an offset at or
// below the log's start, or past its end; a record removed meanwhile
// (retention, compaction); a batch without an epoch.
func (l *Log) EpochsBefore(ctx context.Context, topic string, offsets map[int32]int64) (map[int32]intentlog.EpochOffset, error) {
	out := make(map[int32]intentlog.EpochOffset, len(offsets))
	want := map[int32]kgo.Offset{}
	ext := l.names.external(topic)
	// The bounds of every partition in one listing each; a partition
	// missing from them, or with an error, is asked alone (retried).
	starts, serr := l.adm.ListStartOffsets(ctx, ext)
	ends, eerr := l.adm.ListEndOffsets(ctx, ext)
	for p, o := range offsets {
		out[p] = intentlog.EpochOffset{Offset: o, Epoch: -1}
		if o <= 0 {
			continue
		}
		start, err := listed(starts, ext, p)
		end, err2 := listed(ends, ext, p)
		if serr != nil || eerr != nil || err != nil || err2 != nil {
			if start, end, err = l.Bounds(ctx, topic, p); err != nil {
				return nil, fmt.Errorf("kafka: the leader epoch before offset %d of partition %d: %w", o, p, err)
			}
		}
		if o > start && o <= end {
			want[p] = kgo.NewOffset().At(o - 1)
		}
	}
	if len(want) == 0 {
		return out, nil
	}
	cl, err := l.rawClient(ext, want)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, l.opts.RequestTimeout)
	defer cancel()
	for len(want) > 0 {
		fs := cl.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			return nil, fmt.Errorf("kafka: the leader epochs before offsets of %s: %w", ext, err)
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) {
			if errors.Is(err, kerr.OffsetOutOfRange) { // removed meanwhile: none to read
				delete(want, p)
				return
			}
			ferr = errors.Join(ferr, fmt.Errorf("partition %d: %w", p, mapErr(err)))
		})
		if ferr != nil {
			return nil, fmt.Errorf("kafka: the leader epochs before offsets of %s: %w", ext, ferr)
		}
		fs.EachRecord(func(kr *kgo.Record) {
			if _, ok := want[kr.Partition]; !ok || kr.Topic != ext {
				return
			}
			before := offsets[kr.Partition] - 1
			switch {
			case kr.Offset == before:
				out[kr.Partition] = intentlog.EpochOffset{Offset: before + 1, Epoch: max(kr.LeaderEpoch, -1)}
			case kr.Offset < before:
				return // (a batch's records below the offset asked)
			}
			delete(want, kr.Partition)
		})
	}
	return out, nil
}

// staleMetadataTries bounds the metadata reads of epochKnown while their
// leader epoch is older than the committed one, staleMetadataWait apart.
const (
	staleMetadataTries = 3
	staleMetadataWait  = 250 * time.Millisecond
)

// epochKnown fails with a *intentlog.Truncation (From -1, wrapping
// intentlog.ErrEpochUnknown) when the leader of the partition has no
// record of epoch, the leader epoch of the record before offset that a
// reader starts at: OffsetForLeaderEpoch answers UNDEFINED_EPOCH_OFFSET
// (its leader-epoch history was lost, or the topic is another one of that
// name, whose epochs start again). franz-go keeps the offset then (with
// no reset offset, or nothing consumed yet), as if it had been validated;
// the Java consumer without a reset policy reports a truncation without a
// divergent offset, as this does.
//
// The question carries the current leader epoch of fresh metadata, as the
// Java consumer's does: a broker that still thinks it leads (cut off, its
// metadata stale) and knows no epoch as new as the committed one answers
// UNDEFINED to a question without it, but UNKNOWN_LEADER_EPOCH to this
// one. Metadata whose leader epoch is older than epoch is stale itself.
// Any answer but UNDEFINED from the leader at that epoch (an end offset
// below offset included), or none, is left to the client's own
// validation.
func (l *Log) epochKnown(ctx context.Context, topic string, partition int32, offset int64, epoch int32) error {
	ctx, cancel := context.WithTimeout(ctx, l.opts.RequestTimeout)
	defer cancel()
	var pd kadm.PartitionDetail
	for try := 0; ; try++ {
		md, err := l.adm.Metadata(ctx, topic)
		if err != nil {
			return nil
		}
		var ok bool
		if pd, ok = md.Topics[topic].Partitions[partition]; !ok || pd.Err != nil {
			return nil
		}
		if pd.LeaderEpoch >= epoch || try == staleMetadataTries-1 {
			break
		}
		// Older than the committed epoch: the broker that answered is
		// behind, or the topic is another one of the name (its epochs
		// start again), or the history was lost. Asked again, a broker
		// that is not behind tells.
		select {
		case <-time.After(staleMetadataWait):
		case <-ctx.Done():
			return nil
		}
	}
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = partition, pd.LeaderEpoch, epoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, l.cl.Broker(int(pd.Leader)))
	if err != nil || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return nil
	}
	o := resp.Topics[0].Partitions[0]
	if o.ErrorCode != 0 || o.EndOffset >= 0 {
		return nil
	}
	return &intentlog.Truncation{From: -1, Read: offset, Epoch: -1,
		Err: fmt.Errorf("%w: %s/%d: leader epoch %d, of the record before offset %d (OffsetForLeaderEpoch answered UNDEFINED_EPOCH_OFFSET at leader epoch %d)",
			intentlog.ErrEpochUnknown, topic, partition, epoch, offset, pd.LeaderEpoch)}
}

// rawClient returns a client that reads partitions of topic from offsets
// as they are stored: without isolation (records of open and aborted
// transactions), with transaction markers, and no reset (an offset out of
// range is an error).
func (l *Log) rawClient(topic string, offsets map[int32]kgo.Offset) (*kgo.Client, error) {
	opts := append(append([]kgo.Opt{}, l.common...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.FetchMaxPartitionBytes(l.opts.MaxMessageBytes),
	)
	return kgo.NewClient(append(opts, l.opts.ExtraClientOpts...)...)
}
