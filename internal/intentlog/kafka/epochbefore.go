package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

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
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, l.common...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{ext: want}),
		kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.FetchMaxPartitionBytes(l.opts.MaxMessageBytes),
	)...)
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

// epochKnown fails with a *intentlog.Truncation (From -1, wrapping
// intentlog.ErrEpochUnknown) when the leader of the partition has no
// record of epoch, the leader epoch of the record before offset that a
// reader starts at: OffsetForLeaderEpoch answers UNDEFINED_EPOCH_OFFSET
// (its leader-epoch history was lost, or the topic is another one of that
// name, whose epochs start again). franz-go keeps the offset then (with
// no reset offset, or nothing consumed yet), as if it had been validated;
// the Java consumer without a reset policy reports a truncation without a
// divergent offset, as this does. Any other answer (an end offset below
// offset included), or none, is left to the client's own validation.
func (l *Log) epochKnown(ctx context.Context, topic string, partition int32, offset int64, epoch int32) error {
	ctx, cancel := context.WithTimeout(ctx, l.opts.RequestTimeout)
	defer cancel()
	resp, err := l.adm.OffsetForLeaderEpoch(ctx, kadm.OffsetForLeaderEpochRequest{topic: {partition: epoch}})
	if err != nil {
		return nil
	}
	o, ok := resp[topic][partition]
	if !ok || o.Err != nil || o.EndOffset >= 0 {
		return nil
	}
	return &intentlog.Truncation{From: -1, Read: offset, Epoch: -1,
		Err: fmt.Errorf("%w: %s/%d: leader epoch %d, of the record before offset %d (OffsetForLeaderEpoch answered UNDEFINED_EPOCH_OFFSET)",
			intentlog.ErrEpochUnknown, topic, partition, epoch, offset)}
}
