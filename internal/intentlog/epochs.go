package intentlog

import "context"

// Helpers for consumers that commit leader epochs with their offsets on a
// log that keeps them (EpochLog, FencedEpochCommitter: Kafka) and plain
// offsets on one that does not (the embedded log, whose offsets and
// reads are unchanged by them): the resolver's intent partitions and the
// event groups' partitions.

// GroupOffsets is the part of a Log that commits and reads a consumer
// group's offsets.
type GroupOffsets interface {
	Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error
	Committed(ctx context.Context, group, topic string) (map[int32]int64, error)
}

// ReaderOpener is the part of a Log that starts readers.
type ReaderOpener interface {
	NewReader(topic string, partition int32, offset int64) (Reader, error)
}

// CommittedAt returns a group's committed offsets of topic with their
// leader epochs when l keeps them (EpochLog), else with epoch -1.
func CommittedAt(ctx context.Context, l GroupOffsets, group, topic string) (map[int32]EpochOffset, error) {
	if el, ok := l.(EpochLog); ok {
		return el.CommittedEpochs(ctx, group, topic)
	}
	plain, err := l.Committed(ctx, group, topic)
	if err != nil {
		return nil, err
	}
	return WithoutEpochs(plain), nil
}

// CommitAt commits a group's offsets of topic, each with its leader epoch
// when l keeps them (EpochLog).
func CommitAt(ctx context.Context, l GroupOffsets, group, topic string, offsets map[int32]EpochOffset) error {
	if el, ok := l.(EpochLog); ok {
		return el.CommitEpochs(ctx, group, topic, offsets)
	}
	return l.Commit(ctx, group, topic, PlainOffsets(offsets))
}

// ReaderAt starts a reader of a partition at at.Offset, validated first
// by at.Epoch when l keeps epochs (EpochLog); the reader is an EpochReader
// then.
func ReaderAt(l ReaderOpener, topic string, partition int32, at EpochOffset) (Reader, error) {
	if el, ok := l.(EpochLog); ok {
		return el.NewEpochReader(topic, partition, at)
	}
	return l.NewReader(topic, partition, at.Offset)
}

// EpochBefore is r's EpochBefore(offset) when r is an EpochReader, else
// -1 (unknown).
func EpochBefore(r Reader, offset int64) int32 {
	if er, ok := r.(EpochReader); ok {
		return max(er.EpochBefore(offset), -1)
	}
	return -1
}

// EpochFinder is a log that reads the leader epoch of the record before
// an offset without a reader that read it (Kafka): for offsets committed
// by no consumer's reader (a reset, a group's start, a snapshot's end),
// so that they too are validated when a reader starts at them.
type EpochFinder interface {
	// EpochsBefore returns each offset with the leader epoch of the
	// record before it in its partition of topic, -1 where there is none
	// to read (the offset at or below the log's start, past its end).
	EpochsBefore(ctx context.Context, topic string, offsets map[int32]int64) (map[int32]EpochOffset, error)
}

// EpochsBefore is l's EpochsBefore when l is an EpochFinder, else offsets
// with epoch -1 (unknown: nothing to validate).
func EpochsBefore(ctx context.Context, l any, topic string, offsets map[int32]int64) (map[int32]EpochOffset, error) {
	if f, ok := l.(EpochFinder); ok {
		return f.EpochsBefore(ctx, topic, offsets)
	}
	return WithoutEpochs(offsets), nil
}

// FencedEpochCommitter is a FencedCommitter that commits the leader epoch
// with the offset (Kafka: committed_leader_epoch of TxnOffsetCommit) and
// reads it back.
type FencedEpochCommitter interface {
	FencedCommitter
	// CommitEpoch is Commit with the offset's epoch; a commit that takes
	// along a lower offset asked meanwhile commits the highest offset
	// with its own epoch.
	CommitEpoch(ctx context.Context, at EpochOffset) error
	// CommittedEpoch is Committed with the epoch committed with the
	// offset (-1: none was).
	CommittedEpoch(ctx context.Context) (at EpochOffset, ok bool, err error)
}

// CommitFenced commits at through c, with its epoch when c keeps epochs.
func CommitFenced(ctx context.Context, c FencedCommitter, at EpochOffset) error {
	if ec, ok := c.(FencedEpochCommitter); ok {
		return ec.CommitEpoch(ctx, at)
	}
	return c.Commit(ctx, at.Offset)
}

// CommittedFenced reads c's committed offset, with its epoch when c keeps
// epochs (else -1).
func CommittedFenced(ctx context.Context, c FencedCommitter) (EpochOffset, bool, error) {
	if ec, ok := c.(FencedEpochCommitter); ok {
		return ec.CommittedEpoch(ctx)
	}
	o, ok, err := c.Committed(ctx)
	return EpochOffset{Offset: o, Epoch: -1}, ok, err
}

// WithoutEpochs gives offsets epoch -1 (unknown: nothing to validate).
func WithoutEpochs(offsets map[int32]int64) map[int32]EpochOffset {
	out := make(map[int32]EpochOffset, len(offsets))
	for p, o := range offsets {
		out[p] = EpochOffset{Offset: o, Epoch: -1}
	}
	return out
}

// PlainOffsets drops the epochs of offsets.
func PlainOffsets(offsets map[int32]EpochOffset) map[int32]int64 {
	out := make(map[int32]int64, len(offsets))
	for p, o := range offsets {
		out[p] = o.Offset
	}
	return out
}
