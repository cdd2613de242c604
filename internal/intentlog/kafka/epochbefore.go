package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

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
// leader epoch is older than the committed one, staleMetadataWait apart
// (counted apart from the retries of other errors).
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
//
// A retriable error (no leader, the leader moving, a broker behind the
// metadata, a broker unreachable) is asked again, with fresh metadata,
// until ctx ends: such errors come with what loses a history (an unclean
// election, a topic created again), and franz-go's own validation, to
// which the check left them, lets UNDEFINED pass. The reader waits
// meanwhile, as its fetch waits for a partition without a leader (a group
// member whose start failed each Options.RequestTimeout ended, its client
// joined again, and the partition went to the next member, in turn); past
// RequestTimeout a warning says so, once. The log closed meanwhile, it fails with intentlog.ErrClosed;
// the topic deleted (the metadata does not know it), with
// intentlog.ErrUnknownTopic, and its partition count is forgotten: asking
// again brings neither back. Any other answer but UNDEFINED from the leader at that
// epoch (an end offset below offset included) is left to the client's
// own validation.
func (l *Log) epochKnown(ctx context.Context, topic string, partition int32, offset int64, epoch int32) error {
	var last error // the last retriable error
	stale := 0     // metadata reads older than epoch, counted apart from other retries
	warnAt := time.Now().Add(l.opts.RequestTimeout)
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 250*time.Millisecond) {
		qctx, cancel := context.WithTimeout(ctx, l.opts.RequestTimeout) // one question
		leaderEpoch, end, err := l.askEpoch(qctx, topic, partition, epoch, stale >= staleMetadataTries-1)
		cancel()
		switch {
		case err == nil && end >= 0:
			return nil
		case err == nil:
			return &intentlog.Truncation{From: -1, Read: offset, Epoch: -1,
				Err: fmt.Errorf("%w: %s/%d: leader epoch %d, of the record before offset %d (OffsetForLeaderEpoch answered UNDEFINED_EPOCH_OFFSET at leader epoch %d)",
					intentlog.ErrEpochUnknown, topic, partition, epoch, offset, leaderEpoch)}
		case ctx.Err() != nil:
			return fmt.Errorf("checking leader epoch %d: %w (retrying %w)", epoch, ctx.Err(), cmp.Or(last, err))
		case l.checkOpen() != nil: // its client closed: every question fails at once
			return fmt.Errorf("checking leader epoch %d: %w (retrying %w)", epoch, intentlog.ErrClosed, err)
		case errors.Is(err, errTopicGone): // deleted: the next start asks the metadata
			l.forget(topic)
			return fmt.Errorf("checking leader epoch %d: %w", epoch, mapErr(err))
		case !retriableCheck(err):
			return nil // the client's validation meets it too, and says
		}
		last = err
		if !warnAt.IsZero() && time.Now().After(warnAt) {
			// It waits on, as a fetch from a partition without a leader
			// does: said once, for the operator.
			l.opts.Logger.Warn("kafka: a reader waits to check the leader epoch of its start offset; it starts once the partition answers",
				"topic", topic, "partition", partition, "offset", offset, "epoch", epoch,
				"err", l.unavailable(topic, partition, err))
			warnAt = time.Time{}
		}
		wait := delay
		if errors.Is(err, errStaleMetadata) {
			stale++
			wait = staleMetadataWait // for the brokers to catch up
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// errStaleMetadata: the metadata's leader epoch is older than the one
// asked about (the broker that answered is behind, or the topic is
// another one of the name, or the history was lost).
var errStaleMetadata = errors.New("metadata older than the leader epoch asked about")

// errTopicGone wraps the metadata's error for a topic it does not know
// (deleted): Kafka calls it retriable (a broker may learn of a new topic
// late), but the reader's start checked the topic's partitions first,
// from a count cached while it existed.
var errTopicGone = errors.New("the metadata does not know the topic")

// retriableCheck reports whether an error of askEpoch is asked again: a
// retriable Kafka error, stale metadata, or no answer at all (a broker
// unreachable, a request timed out).
func retriableCheck(err error) bool {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	return true
}

// askEpoch asks the partition's leader, as fresh metadata names it, where
// epoch ends: the leader epoch the question carried and the end offset
// (-1: UNDEFINED_EPOCH_OFFSET). Metadata older than epoch is
// errStaleMetadata unless useStale (epochKnown reads it again up to
// staleMetadataTries times, counting only such reads: the retries of
// other errors before it, a leader being elected, must not use them up,
// or a broker behind that still thinks it leads is asked, and its
// UNDEFINED believed).
func (l *Log) askEpoch(ctx context.Context, topic string, partition int32, epoch int32, useStale bool) (leaderEpoch int32, end int64, err error) {
	md, err := l.adm.Metadata(ctx, topic)
	if err != nil {
		return 0, 0, err
	}
	mt := md.Topics[topic]
	switch {
	case errors.Is(mt.Err, kerr.UnknownTopicOrPartition), errors.Is(mt.Err, kerr.UnknownTopicID):
		return 0, 0, fmt.Errorf("%w: %w", errTopicGone, mt.Err)
	case mt.Err != nil:
		return 0, 0, mt.Err
	}
	pd, ok := mt.Partitions[partition]
	switch {
	case !ok:
		return 0, 0, kerr.UnknownTopicOrPartition
	case pd.Err != nil:
		return 0, 0, pd.Err
	case pd.LeaderEpoch < epoch && !useStale:
		return 0, 0, errStaleMetadata
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
	switch {
	case err != nil:
		return 0, 0, err
	case len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1:
		return 0, 0, fmt.Errorf("OffsetForLeaderEpoch answered %d topics for 1", len(resp.Topics))
	}
	o := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(o.ErrorCode); err != nil {
		return 0, 0, err
	}
	return pd.LeaderEpoch, o.EndOffset, nil
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
