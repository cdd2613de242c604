// Package intentlog defines the partitioned, replayable log that wail's
// intent log and event bus are both built on, and the pieces every
// implementation shares: the record type, Kafka's murmur2 key partitioner and
// the sentinel errors callers branch on.
//
// Implementations: embedded (segmented CRC-framed files on local disk, the
// default) and, at scale, Kafka. Every implementation passes the acceptance
// suite in package logtest.
//
// A log holds topics; a topic has a fixed number of partitions; a record goes
// to partition Partition(key, n), so a key always lands on the same partition
// and is totally ordered there. Offsets are per partition, start at 0 and
// increase with every record; they may have gaps (Kafka's transaction
// markers and aborted records, the embedded log's offsets lost to a
// repair: Reader.Next). Append returns only once its records are durable,
// and readers never see a record before it is durable.
package intentlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"time"
)

// Sentinel errors. Implementations wrap them with %w.
var (
	// ErrUnknownTopic: the topic does not exist.
	ErrUnknownTopic = errors.New("unknown topic")
	// ErrPartitionMismatch: a topic exists with another partition count.
	ErrPartitionMismatch = errors.New("topic exists with a different partition count")
	// ErrOwnedElsewhere: a topic exists, made for another owner
	// (TopicOptions.Owner).
	ErrOwnedElsewhere = errors.New("topic exists, made for another owner")
	// ErrOffsetOutOfRange: the offset is below the log start (retention
	// removed it) or beyond the end.
	ErrOffsetOutOfRange = errors.New("offset out of range")
	// ErrClosed: the log or reader was closed.
	ErrClosed = errors.New("log closed")
	// ErrTooLarge: a record or batch exceeds the configured maximum.
	ErrTooLarge = errors.New("record too large")
	// ErrAccessDenied: the log refused wail's credentials, or their
	// permission for the operation (on Kafka: SASL authentication, an ACL).
	ErrAccessDenied = errors.New("access denied")
	// ErrCorrupt: stored bytes failed their checksum or could not be decoded.
	ErrCorrupt = errors.New("corrupt log data")
	// ErrStorage: the log's storage failed (an I/O error, a failed fsync, a
	// full disk). The call that got it was not acknowledged; whether its
	// records are durable is unknown. A server answers it as unavailable and
	// reports itself unhealthy. Errors wrapping ErrNoSpace wrap it too.
	ErrStorage = errors.New("log storage failed")
	// ErrNoSpace: the device holding the log is full (ENOSPC, EDQUOT). It
	// wraps ErrStorage. Unlike other storage failures it is expected to
	// clear: once space returns, appends succeed again without a restart.
	ErrNoSpace = fmt.Errorf("%w: no space left on device", ErrStorage)
	// ErrTruncated: the log lost records a reader had read (on Kafka an
	// unclean leader election: the new leader's log diverged below the
	// reader's position). A *Truncation says where.
	ErrTruncated = errors.New("log truncated below what was read")
	// ErrEpochUnknown: a reader was started at an offset and the leader
	// epoch of the record before it, and the log has no record of that
	// epoch (on Kafka OffsetForLeaderEpoch answered UNDEFINED_EPOCH_OFFSET:
	// the partition's leader-epoch history was lost, or the topic is
	// another one of that name): the log below the offset cannot be
	// validated. It comes in a *Truncation whose From is -1 (where the log
	// diverges is not known).
	ErrEpochUnknown = errors.New("the log has no record of the leader epoch committed with the offset")
)

// Truncation is the error of a reader whose partition lost records it had
// read, or records below the position it was started at with a leader
// epoch (EpochLog): the log now diverges from what was read at From
// (records from From on may be new ones, under offsets the reader passed);
// it had read up to Read. Epoch is the leader epoch of the record before
// From in the log as it is now (-1: unknown), for a commit at From.
// From is -1 when the log cannot say where it diverges (ErrEpochUnknown).
// It matches ErrTruncated.
type Truncation struct {
	From, Read int64
	Epoch      int32
	Err        error // the log's own error
}

func (t *Truncation) Error() string {
	if t.From < 0 {
		return fmt.Sprintf("%v: the log below offset %d cannot be validated: %v", ErrTruncated, t.Read, t.Err)
	}
	return fmt.Sprintf("%v: the log diverges from what was read at offset %d (read up to %d): %v", ErrTruncated, t.From, t.Read, t.Err)
}

// Is makes a Truncation match ErrTruncated.
func (t *Truncation) Is(target error) bool { return target == ErrTruncated }

// Unwrap returns the log's own error.
func (t *Truncation) Unwrap() error { return t.Err }

// Header is a record header (Kafka headers; stored as-is by the embedded log).
type Header struct {
	Key   string
	Value []byte
}

// Record is one log record. Append fills Partition, Offset and Timestamp.
type Record struct {
	Key     []byte
	Value   []byte // nil is a tombstone (Kafka compaction); empty is a value
	Headers []Header
	// RouteKey, when set, places the record instead of Key: Append puts
	// it on Partition(RouteKey, n). The event bus sets it to the row key
	// when the record key is the row key in another form (a typed
	// table's key in the Confluent wire format), so that a key's events
	// stay on its intents' partition. Not stored: readers see Key.
	RouteKey []byte

	Partition int32
	Offset    int64
	Timestamp time.Time // append time, set by the log
}

// Range is the offsets [From, To) of a partition.
type Range struct {
	From, To int64
}

// FramedSize returns an upper bound of the bytes a record with a key of
// keyLen bytes, a value of valueLen bytes (a nil value counts as empty)
// and headers of the given key and value lengths takes in a record batch
// of either log: Kafka's record format (length, attributes, timestamp and
// offset deltas, then key, value and headers, each after its length), with
// the deltas at their widest; the embedded log's format is a subset of it.
// The logs' record and append limits count records so.
func FramedSize(keyLen, valueLen int, headers ...[2]int) int {
	body := 1 + binary.MaxVarintLen64 + binary.MaxVarintLen32 + // attributes, timestamp and offset deltas
		varintLen(keyLen) + keyLen + varintLen(valueLen) + valueLen + varintLen(len(headers))
	for _, h := range headers {
		body += varintLen(h[0]) + h[0] + varintLen(h[1]) + h[1]
	}
	return varintLen(body) + body
}

// varintLen is the length of n as a zigzag varint, as Kafka writes lengths
// (binary.AppendVarint), computed without encoding it: FramedSize runs for
// every event the resolver publishes.
func varintLen(n int) int { return VarintLen(int64(n)) }

// VarintLen is the length of binary.AppendVarint's encoding of n.
func VarintLen(n int64) int {
	u := uint64(n) << 1
	if n < 0 {
		u = ^u
	}
	return (bits.Len64(u|1) + 6) / 7
}

// TopicOptions configures a topic at creation.
type TopicOptions struct {
	// Retention removes records older than this (0: keep forever).
	Retention time.Duration
	// RetentionBytes caps each partition's size (0: no cap).
	RetentionBytes int64
	// Compact asks for log compaction where the implementation supports it
	// (Kafka); the embedded log keeps every record.
	Compact bool
	// Owner says what the topic is made for (wail: a table, by its name
	// and created_at), on a log that records it (OwnerLister: the
	// embedded log; Kafka ignores it). Empty claims nothing. A CreateTopic
	// of a topic that exists with no owner gives it this one; with
	// another it fails with ErrOwnedElsewhere: a table created again
	// under a name does not take over the topics, records and committed
	// offsets of the table of the name dropped while this process did not
	// see it.
	Owner string
}

// OwnerLister is a log that records what each topic was made for
// (TopicOptions.Owner): the embedded log, one process's, whose topics a
// process dropping a table elsewhere cannot delete.
type OwnerLister interface {
	// TopicOwners returns the owner of each topic that has one.
	TopicOwners(ctx context.Context) (map[string]string, error)
}

// Log is a partitioned, replayable, durable log.
type Log interface {
	// CreateTopic creates a topic; when the topic exists with the same
	// partition count it creates nothing (the embedded log gives it opts,
	// durably; Kafka leaves its configs as they are: they may be set
	// outside wail), and it fails with ErrPartitionMismatch when the topic
	// exists with another, with ErrOwnedElsewhere when it exists made for
	// another owner (TopicOptions.Owner).
	CreateTopic(ctx context.Context, topic string, partitions int32, opts TopicOptions) error
	// Partitions returns a topic's partition count (ErrUnknownTopic).
	Partitions(ctx context.Context, topic string) (int32, error)
	// Append appends records to a topic, each to Partition(key, n), and
	// returns once all of them are durable, with Partition, Offset and
	// Timestamp filled in. Records of one call that share a partition keep
	// their order. On error none, some or all records may be durable.
	// A log may hold the records' bytes after Append returns (Kafka's
	// producer keeps a record in flight until the broker answers, past
	// ctx's end): the caller must not change them, and a record should
	// not be a slice of a larger buffer the caller wants freed.
	Append(ctx context.Context, topic string, recs []*Record) error
	// Bounds returns the first retained offset and the end offset (the
	// offset the next record will get) of a partition.
	Bounds(ctx context.Context, topic string, partition int32) (start, end int64, err error)
	// OffsetForTime returns the first offset whose timestamp is >= t, or the
	// end offset when there is none. It may return an earlier offset (never a
	// later one) when timestamps are not monotonic.
	OffsetForTime(ctx context.Context, topic string, partition int32, t time.Time) (int64, error)
	// NewReader reads a partition from offset on.
	NewReader(topic string, partition int32, offset int64) (Reader, error)
	// Lost returns the offset ranges of a partition, from its start on and
	// in offset order, whose records existed and were removed other than
	// by retention: readers pass them (Next returns no records and a moved
	// Position) and no record ever takes those offsets again. Only the
	// embedded log has them: `wail log repair` removes damaged bytes and
	// missing segment files. Offsets that never held a record a reader
	// should see (Kafka's transaction markers and aborted records) are not
	// lost.
	Lost(ctx context.Context, topic string, partition int32) ([]Range, error)
	// Commit stores a consumer group's next offsets durably. An offset
	// beyond the partition's end is not meant to be committed (the group
	// would skip the records appended below it): the embedded log refuses
	// one with ErrOffsetOutOfRange, committing nothing; Kafka takes it.
	// If the log later ends below a committed offset (it lost its tail),
	// the embedded log lowers the offset to the end at Open so that no new
	// record is skipped.
	Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error
	// Committed returns a group's committed offsets; partitions never
	// committed are absent.
	Committed(ctx context.Context, group, topic string) (map[int32]int64, error)
	TopicDeleter
	// Close releases everything; pending Appends fail with ErrClosed.
	Close() error
}

// TopicDeleter deletes topics (a dropped table's).
type TopicDeleter interface {
	// DeleteTopic deletes a topic: its records and the offsets every group
	// committed on it. Deleting an unknown topic is not an error. Appends
	// and reads of the topic fail afterwards with ErrUnknownTopic, and a
	// topic of that name can be created again (empty, with any partition
	// count) once DeleteTopic returned.
	DeleteTopic(ctx context.Context, topic string) error
}

// TopicID is the id a log that has them (Kafka, 2.8 and later) gives a
// topic when it makes it: a topic deleted and made again under its name
// has another.
type TopicID [16]byte

// TopicIDDeleter is a log shared by processes whose topics can be deleted
// by id (Kafka). A deletion by name that reaches the log late (its process
// paused, its request slow) deletes whatever topic holds the name then:
// the topics of a table dropped and created again since under the name,
// with the writes acknowledged on them. One by the id the topic had leaves
// a topic made again. The embedded log, one process's, has no ids.
type TopicIDDeleter interface {
	// TopicIDs returns the ids of those of topics that exist (absent:
	// no such topic); errors.ErrUnsupported when the log has none (an
	// old Kafka).
	TopicIDs(ctx context.Context, topics ...string) (map[string]TopicID, error)
	// DeleteTopicID deletes topic if it still has id, as DeleteTopic
	// does; a topic gone, or made again since (another id), is left, and
	// that is not an error.
	DeleteTopicID(ctx context.Context, topic string, id TopicID) error
}

// PartitionFencer is a log whose offset commits of one partition of a
// group can be fenced: a group shared by several processes commits each
// partition through the committer its owner got when it took the
// partition, so that a commit of a previous owner that reaches the log
// late (its process paused, its request slow) cannot move the partition's
// position back under the new owner (Kafka: a transactional id per group
// partition; DESIGN.md, "Groups across processes").
type PartitionFencer interface {
	// FencePartition returns the committer of (group, topic, partition).
	// Once it returned, every committer returned before it for the same
	// partition fails its commits (ErrFenced), and none of its commits
	// lands later: the committed offset read after it is final until
	// this committer commits.
	FencePartition(ctx context.Context, group, topic string, partition int32) (FencedCommitter, error)
}

// PinnedFencer is a PartitionFencer whose committer can be pinned to the
// topic a reader read (Kafka): a topic deleted and created again under its
// name has another id, and an offset read from the old one, committed on
// the new one, would skip the new one's records below it.
type PinnedFencer interface {
	// FencePartitionOf is FencePartition whose committer commits only on
	// the topic with id (ErrUnknownTopic when the topic has another id
	// now, or later); a zero id pins the id the topic has now.
	FencePartitionOf(ctx context.Context, group, topic string, partition int32, id TopicID) (FencedCommitter, error)
}

// TopicIDReader is a reader that knows the id of the topic whose records
// it returned, or a FencedCommitter that knows the id of the topic it
// commits on (Kafka).
type TopicIDReader interface {
	// TopicID is the id of the topic of the records returned so far
	// (zero before any), or of the committer's topic; zero when the log
	// did not say.
	TopicID() TopicID
}

// TopicIDPinner is a reader that can be told, before its first read, the
// id of the topic its start offset is of (Kafka): a reader started again
// where another one of the same topic stopped. Another topic of the name
// (deleted and created again meanwhile) then fails its reads with
// ErrUnknownTopic, checked before the leader epoch of its start, as for
// a reader that let its client go and made one again: otherwise a new
// topic shorter than the start passes as the old one truncated (a
// *Truncation from its end, or ErrOffsetOutOfRange past it).
type TopicIDPinner interface {
	// PinTopicID sets the topic's id, unless the reader already has one.
	PinTopicID(id TopicID)
}

// PinTopicID pins r to the topic of id when r is a TopicIDPinner and id
// is not zero (the log did not say); else it does nothing.
func PinTopicID(r Reader, id TopicID) {
	if p, ok := r.(TopicIDPinner); ok && id != (TopicID{}) {
		p.PinTopicID(id)
	}
}

// FencedCommitter commits one partition's offset for a group until a later
// FencePartition of that partition fences it.
type FencedCommitter interface {
	// Commit commits offset (the next offset to read). On an error the
	// commit may still have taken effect (an end whose answer was lost),
	// or take effect later, but never after a later FencePartition of
	// the partition returned: a caller treats it as not committed.
	// Concurrent calls never move the offset back: one returns nil only
	// once an offset at or past its own is committed (a shared group's
	// acknowledgements of one partition commit without the group's lock).
	Commit(ctx context.Context, offset int64) error
	// Committed returns the partition's committed offset (ok false: none),
	// waiting for commits in progress on it, not on other partitions; never
	// below what this committer committed.
	Committed(ctx context.Context) (offset int64, ok bool, err error)
}

// CommitRenewer is a FencedCommitter of a log that forgets a group's
// committed offset of a partition not committed for a while (Kafka,
// KIP-211: offsets.retention.minutes after the partition's last commit,
// in a group without Kafka members, which wail's groups never have): the
// owner of a partition whose position does not move (its table gets no
// events) commits it again, as it is, before that. A log that keeps
// committed offsets for ever (the embedded log) has none.
type CommitRenewer interface {
	// Renew commits at again, even when it is what is committed already
	// (which Commit skips); when a higher offset was committed through
	// this committer, or asked of it (a commit whose outcome is unknown
	// may have landed), that one instead: it never moves the offset back.
	// Errors are Commit's.
	Renew(ctx context.Context, at EpochOffset) error
}

// ErrFenced: a FencedCommitter was fenced by a later FencePartition of its
// partition.
var ErrFenced = errors.New("fenced: the partition was fenced by a newer owner")

// Reader reads one partition in offset order. One goroutine at a time
// calls Next; Close may be called from any (a Next blocked meanwhile
// returns ErrClosed).
type Reader interface {
	// Next returns the next records, blocking until at least one is durable
	// or ctx ends. It fails with ErrOffsetOutOfRange when the reader's
	// position fell below the log start, and with a *Truncation when the
	// log lost records it had read (Kafka detects it as KIP-320 does, by
	// the leader epochs of the records read), or, for a reader started
	// with an epoch (EpochLog), records below its start. Offsets may have gaps (Kafka's
	// transaction markers and aborted records take offsets; the embedded
	// log's offsets lost to a repair, see Log.Lost); when the reader
	// passed only such offsets, Next returns no records and a moved
	// Position instead of blocking.
	Next(ctx context.Context) ([]Record, error)
	// Position is the offset the reader reads next: one past the last
	// offset it returned or skipped. Reading "up to end" means reading
	// until Position() >= end.
	Position() int64
	// Close releases the reader.
	Close() error
}

// EpochOffset is a position in a partition with the leader epoch of the
// record before it (Kafka, KIP-320): the epoch under which the last record
// consumed below Offset was written. Epoch < 0: unknown, nothing to
// validate.
type EpochOffset struct {
	Offset int64
	Epoch  int32
}

// EpochLog is a log whose partitions have leader epochs (Kafka). A
// truncation below a committed offset (an unclean leader election while
// no reader ran, after which new records took the lost offsets) cannot be
// told from a log that lost nothing by the offset alone: a consumer that
// commits the leader epoch of the last record it consumed with the offset,
// and starts its next reader at both, has the log validate them (KIP-320),
// and gets a *Truncation instead of silently passing the new records.
type EpochLog interface {
	// CommitEpochs is Log.Commit with the epoch of each offset.
	CommitEpochs(ctx context.Context, group, topic string, offsets map[int32]EpochOffset) error
	// CommittedEpochs is Log.Committed with the epoch committed with each
	// offset (-1 when none was).
	CommittedEpochs(ctx context.Context, group, topic string) (map[int32]EpochOffset, error)
	// NewEpochReader is Log.NewReader from at.Offset. With at.Epoch >= 0
	// the log first checks that it did not diverge below at.Offset from
	// the records read under that epoch; if it did, the first Next fails
	// with a *Truncation whose From is where it diverges.
	NewEpochReader(topic string, partition int32, at EpochOffset) (EpochReader, error)
}

// EpochReader is a Reader that knows the leader epochs of what it read.
type EpochReader interface {
	Reader
	// EpochBefore returns the leader epoch of the last record it read
	// below offset (transaction markers included), or the epoch it was
	// started with when it read none there; -1 when it does not know
	// (offset below its start, no epoch given).
	EpochBefore(offset int64) int32
}

// Hanging describes transactions that hang on a partition: open there
// while their coordinator has finished them (a broker lost their markers),
// so that they hold the partition's stable offset and readers stop at them
// forever. Only logs with transactions (Kafka) report them.
type Hanging struct {
	// Committed are the records from the asked offset up to the asked end
	// whose transactions committed (or that had none), read past the
	// hanging ones, in offset order.
	Committed []Record
	// Records are the records of the hanging transactions, in offset order.
	// Their coordinator may have committed them: an owner that needs them
	// appends them again before it calls Abort.
	Records []Record
	// Abort ends the hanging transactions with abort markers; readers then
	// pass them.
	Abort func(ctx context.Context) error
}

// Place returns the partition Append puts r on among n partitions:
// Partition(RouteKey, n) when RouteKey is set, else Partition(Key, n).
func (r *Record) Place(n int32) int32 {
	if r.RouteKey != nil {
		return Partition(r.RouteKey, n)
	}
	return Partition(r.Key, n)
}

// Partition returns the partition of key among n partitions, exactly as
// Kafka's default partitioner does for keyed records:
// toPositive(murmur2(key)) % n.
func Partition(key []byte, n int32) int32 {
	return int32((Murmur2(key) & 0x7fffffff) % uint32(n))
}

// Murmur2 is Kafka's murmur2 hash (seed 0x9747b28c).
func Murmur2(data []byte) uint32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	length := len(data)
	h := uint32(seed) ^ uint32(length)
	n := length / 4
	for i := 0; i < n; i++ {
		j := i * 4
		k := uint32(data[j]) | uint32(data[j+1])<<8 | uint32(data[j+2])<<16 | uint32(data[j+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n*4:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
