package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wail-cdc/wail/internal/intentlog"
)

var _ intentlog.Log = (*Log)(nil)

// ErrPartitionUnavailable: a partition's offsets could not be listed for
// Options.RequestTimeout because every try failed with a retriable Kafka
// error (no leader, a leader election, offsets not yet available). The
// Kafka error stays in the chain. Nothing is lost: asking again once the
// partition has a leader works.
var ErrPartitionUnavailable = errors.New("partition unavailable")

// Log is an intentlog.Log on a Kafka cluster. It is safe for concurrent use.
type Log struct {
	opts   Options
	names  names     // wail's topic names -> Kafka's
	common []kgo.Opt // options of every client: brokers, TLS, SASL, logger
	cl     *kgo.Client
	adm    *kadm.Client

	produceMu sync.Mutex // orders timestamps with the Produce calls
	lastMilli int64      // newest timestamp handed out, under produceMu
	// prod is the client Appends produce with: cl, until a topic's
	// max.message.bytes changed, then a new one each time (renewProducer;
	// replaced under produceMu). The ones it replaced finish their records
	// (drains) and are closed, but for cl.
	prod        atomic.Pointer[batchClient]
	prodOpts    []kgo.Opt // its options, but the batch limit and ExtraClientOpts
	drains      sync.WaitGroup
	drainCtx    context.Context // canceled by Close
	drainCancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	parts  map[string]int32 // partition counts seen in metadata
	// purges counts, per topic (Kafka's name), the starts and ends of
	// purges from the producer: an Append whose records failed while it
	// changed was failed by a purge, and is tried again (append.go).
	purges  map[string]uint64
	readers map[*reader]struct{}
	members map[*Member]struct{}    // joined and not closed (Forget)
	unacked map[string]*unackedDiag // why a topic's records were not acknowledged (unacked.go)
	diags   sync.WaitGroup          // whyUnacked's metadata reads (Close waits for them: unackedWait at most)
	// diagnoseHook replaces diagnose (tests).
	diagnoseHook func(ctx context.Context, topic string, parts []int32) error
	// pinHook, when set (tests), fails a member's read of a newly
	// assigned topic's id (pinIDs) with the error it returns.
	pinHook func(topic string) error

	limits recordLimits // max.message.bytes of topics (limits.go)
}

// Open returns a Log on the brokers of opts. It does not contact them: the
// first operation does (see Ping).
func Open(_ context.Context, opts Options) (*Log, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("kafka: open: %w", err)
	}
	common, err := opts.commonOpts()
	if err != nil {
		return nil, fmt.Errorf("kafka: open: %w", err)
	}
	codec, err := opts.compression()
	if err != nil {
		return nil, fmt.Errorf("kafka: open: %w", err)
	}
	l := &Log{
		opts:    opts,
		names:   names(opts.TopicNames),
		common:  common,
		parts:   map[string]int32{},
		purges:  map[string]uint64{},
		readers: map[*reader]struct{}{},
		members: map[*Member]struct{}{},
	}
	l.prodOpts = append(append([]kgo.Opt{}, common...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is on by default and needs it
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(opts.Linger),
		kgo.ProduceRequestTimeout(opts.RequestTimeout),
	)
	bc, err := l.newBatchClient(l.prodOpts, opts.ExtraClientOpts)
	if err != nil {
		return nil, fmt.Errorf("kafka: open: %w", err)
	}
	l.prod.Store(bc)
	l.drainCtx, l.drainCancel = context.WithCancel(context.Background())
	l.cl, l.adm = bc.cl, kadm.NewClient(bc.cl)
	l.adm.SetTimeoutMillis(int32(opts.RequestTimeout.Milliseconds()))
	return l, nil
}

// Ping checks that a broker answers.
func (l *Log) Ping(ctx context.Context) error {
	if err := l.cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: ping %v: %w", l.opts.Brokers, mapErr(err))
	}
	return nil
}

// Close closes every reader and the producer. Appends still waiting fail
// with intentlog.ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	readers := make([]*reader, 0, len(l.readers))
	for r := range l.readers {
		readers = append(readers, r)
	}
	l.mu.Unlock()
	for _, r := range readers {
		r.closeClient()
	}
	l.diags.Wait()     // no new one starts once closed
	l.produceMu.Lock() // no producer is renewed once closed
	prod := l.prod.Load()
	l.produceMu.Unlock()
	l.drainCancel()
	l.drains.Wait()
	if prod.cl != l.cl {
		prod.cl.Close()
	}
	l.cl.Close()
	l.limits.close() // refreshes of max.message.bytes end with the client
	return nil
}

func (l *Log) checkOpen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return intentlog.ErrClosed
	}
	return nil
}

// CreateTopic creates a topic (see the package comment for its configs) and
// waits until every partition has a leader.
func (l *Log) CreateTopic(ctx context.Context, topic string, partitions int32, opts intentlog.TopicOptions) error {
	topic = l.names.external(topic)
	if err := l.checkOpen(); err != nil {
		return fmt.Errorf("kafka: create topic %s: %w", topic, err)
	}
	if partitions <= 0 {
		return fmt.Errorf("kafka: create topic %s: %d partitions", topic, partitions)
	}
	_, err := l.adm.CreateTopic(ctx, partitions, l.opts.ReplicationFactor, l.topicConfigs(opts), topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("kafka: create topic %s: %w", topic, mapErr(err))
	}
	if err == nil {
		// New: a limit cached of a topic of the name before is not its.
		l.forgetLimits(topic)
	}
	if err := l.awaitTopic(ctx, topic, partitions); err != nil {
		return fmt.Errorf("kafka: create topic %s: %w", topic, err)
	}
	_, _ = l.maxMessageBytes(ctx, topic) // for RecordLimit; a failure is logged there
	return nil
}

// topicConfigs derives a topic's configs from opts and Options.
func (l *Log) topicConfigs(opts intentlog.TopicOptions) map[string]*string {
	retention, retentionBytes := int64(-1), int64(-1)
	if opts.Retention > 0 {
		retention = max(opts.Retention.Milliseconds(), 1)
	}
	if opts.RetentionBytes > 0 {
		retentionBytes = opts.RetentionBytes
	}
	policy := "delete"
	if opts.Compact {
		policy = "compact"
		if retention > 0 || retentionBytes > 0 {
			policy = "compact,delete"
		}
	}
	cfg := map[string]*string{
		"cleanup.policy":    kadm.StringPtr(policy),
		"retention.ms":      kadm.StringPtr(strconv.FormatInt(retention, 10)),
		"retention.bytes":   kadm.StringPtr(strconv.FormatInt(retentionBytes, 10)),
		"max.message.bytes": kadm.StringPtr(strconv.Itoa(int(l.opts.MaxMessageBytes))),
	}
	if opts.Compact {
		cfg["min.compaction.lag.ms"] = kadm.StringPtr(strconv.FormatInt(deleteEventLag.Milliseconds(), 10))
	}
	for k, v := range l.opts.TopicConfigs {
		cfg[k] = kadm.StringPtr(v)
	}
	return cfg
}

// deleteEventLag is the min.compaction.lag.ms of compacted topics: the
// least time compaction leaves a record in place, Kafka's default
// delete.retention.ms (how long it keeps a tombstone). A delete's event
// is followed by a tombstone of its key, which compaction keeps in its
// place; event streams pass tombstones (they carry no event), so a
// consumer that was behind when its segment was compacted (at the next
// roll: seconds, with large values) never saw the delete, and kept the
// key. With the lag, a consumer behind by less than a day sees every
// delete, as a Kafka consumer of the tombstones does.
const deleteEventLag = 24 * time.Hour

// awaitTopic waits until the metadata shows topic with a leader for each of
// its partitions; ErrPartitionMismatch when it has another count.
func (l *Log) awaitTopic(ctx context.Context, topic string, want int32) error {
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		n, ready, err := l.metadata(ctx, topic)
		switch {
		case err == nil && n != want:
			return fmt.Errorf("%w: %s has %d partitions, %d requested", intentlog.ErrPartitionMismatch, topic, n, want)
		case err == nil && ready:
			return nil
		case err != nil && !errors.Is(err, intentlog.ErrUnknownTopic):
			return err
		}
		// Created a moment ago: not in the metadata yet, or leaderless.
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("partitions without a leader")
			}
			return fmt.Errorf("%w (waiting for the topic: %w)", ctx.Err(), err)
		case <-time.After(delay):
		}
	}
}

// metadata returns topic's partition count and whether every partition has a
// leader, and caches the count unless one is cached already: the count a
// Log first saw places its keys until the topic is forgotten (deleted,
// Forget). Partitions added behind wail's back (kafka-topics.sh --alter)
// must not move keys of a running process: a fresh read (Partitions, a
// CreateTopic, a reader's check of a vanished topic) replaced the count,
// and Append and Transact then put a key on another partition than its
// earlier records (per-key order broke for consumers, and intents went to
// partitions the table does not have).
func (l *Log) metadata(ctx context.Context, topic string) (n int32, ready bool, err error) {
	tds, err := l.adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, false, mapErr(err)
	}
	td, ok := tds[topic]
	if !ok {
		return 0, false, intentlog.ErrUnknownTopic
	}
	if td.Err != nil {
		return 0, false, mapErr(td.Err)
	}
	ready = true
	for _, p := range td.Partitions {
		if p.Err != nil || p.Leader < 0 {
			ready = false
		}
	}
	n = int32(len(td.Partitions))
	if n > 0 {
		l.mu.Lock()
		if _, ok := l.parts[topic]; !ok {
			l.parts[topic] = n
		}
		l.mu.Unlock()
	}
	return n, ready, nil
}

// Partitions returns a topic's partition count from fresh metadata.
func (l *Log) Partitions(ctx context.Context, topic string) (int32, error) {
	topic = l.names.external(topic)
	if err := l.checkOpen(); err != nil {
		return 0, fmt.Errorf("kafka: partitions %s: %w", topic, err)
	}
	n, _, err := l.metadata(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("kafka: partitions %s: %w", topic, err)
	}
	return n, nil
}

// partitionCount returns a topic's partition count, cached.
func (l *Log) partitionCount(ctx context.Context, topic string) (int32, error) {
	l.mu.Lock()
	n, ok := l.parts[topic]
	closed := l.closed
	l.mu.Unlock()
	switch {
	case closed:
		return 0, intentlog.ErrClosed
	case ok:
		return n, nil
	}
	n, _, err := l.metadata(ctx, topic)
	return n, err
}

// forget drops a cached partition count (the topic may be gone).
func (l *Log) forget(topic string) {
	l.mu.Lock()
	delete(l.parts, topic)
	l.mu.Unlock()
}

// checkPartition fails unless topic has partition p.
func (l *Log) checkPartition(ctx context.Context, topic string, p int32) error {
	n, err := l.partitionCount(ctx, topic)
	if err != nil {
		return err
	}
	if p < 0 || p >= n {
		return fmt.Errorf("no partition %d (the topic has %d)", p, n)
	}
	return nil
}

// Bounds returns the log start offset and the high watermark of a
// partition. A read_committed reader (every reader of this package) gets
// past an open transaction's records only once it ended, so reading until
// Position() >= end also waits for every transaction begun before Bounds
// was asked: what a new owner of a partition needs before it trusts what
// it read (see the resolver's recovery).
func (l *Log) Bounds(ctx context.Context, topic string, partition int32) (start, end int64, err error) {
	topic = l.names.external(topic)
	if err := l.checkPartition(ctx, topic, partition); err != nil {
		return 0, 0, fmt.Errorf("kafka: bounds %s/%d: %w", topic, partition, err)
	}
	start, err = l.listOffset(ctx, topic, partition, l.adm.ListStartOffsets)
	if err == nil {
		end, err = l.listOffset(ctx, topic, partition, l.adm.ListEndOffsets)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("kafka: bounds %s/%d: %w", topic, partition, err)
	}
	return start, end, nil
}

// StableEnd returns a partition's last stable offset, where read_committed
// readers stop while a transaction is open on it, and its end (equal when
// none is). The stable offset is read first, so that records appended
// between the two reads leave it below the end only as an open
// transaction does: a caller looks at [stable, end) for one.
func (l *Log) StableEnd(ctx context.Context, topic string, partition int32) (stable, end int64, err error) {
	topic = l.names.external(topic)
	if err := l.checkPartition(ctx, topic, partition); err != nil {
		return 0, 0, fmt.Errorf("kafka: stable end %s/%d: %w", topic, partition, err)
	}
	stable, err = l.listOffset(ctx, topic, partition, l.adm.ListCommittedOffsets)
	if err == nil {
		end, err = l.listOffset(ctx, topic, partition, l.adm.ListEndOffsets)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("kafka: stable end %s/%d: %w", topic, partition, err)
	}
	return stable, end, nil
}

// OffsetForTime returns the first offset with a timestamp >= t, or the end
// offset when there is none.
func (l *Log) OffsetForTime(ctx context.Context, topic string, partition int32, t time.Time) (int64, error) {
	topic = l.names.external(topic)
	if err := l.checkPartition(ctx, topic, partition); err != nil {
		return 0, fmt.Errorf("kafka: offset for time %s/%d: %w", topic, partition, err)
	}
	// Kafka has millisecond timestamps: round t up, so that a record of the
	// millisecond before (still < t) is never returned.
	milli := t.UnixMilli()
	if time.UnixMilli(milli).Before(t) {
		milli++
	}
	off, err := l.listOffset(ctx, topic, partition, func(ctx context.Context, topics ...string) (kadm.ListedOffsets, error) {
		return l.adm.ListOffsetsAfterMilli(ctx, max(milli, 0), topics...)
	})
	if err != nil {
		return 0, fmt.Errorf("kafka: offset for time %s/%d: %w", topic, partition, err)
	}
	return off, nil
}

// listOffset runs a kadm listing for topic and returns partition's offset,
// retrying retriable Kafka errors (a partition whose leader just moved or
// was just created) until ctx ends or, at the latest, for
// Options.RequestTimeout: then ErrPartitionUnavailable, saying what to
// check (a partition without a leader would else stall its caller, a
// resolver starting it, with nothing said). An unknown topic is not
// retried.
func (l *Log) listOffset(ctx context.Context, topic string, partition int32,
	list func(context.Context, ...string) (kadm.ListedOffsets, error)) (int64, error) {
	// kgo retries some errors itself (NOT_LEADER_FOR_PARTITION) within a
	// request: the bound is a deadline for the requests too.
	lctx, cancel := context.WithTimeout(ctx, l.opts.RequestTimeout)
	defer cancel()
	var last error // the last retriable error
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 250*time.Millisecond) {
		offs, err := list(lctx, topic)
		var off int64
		if err == nil {
			off, err = listed(offs, topic, partition)
		}
		if errors.Is(err, intentlog.ErrUnknownTopic) {
			l.forget(topic) // deleted: the next call asks the metadata
			return 0, err
		}
		switch {
		case err == nil:
			return off, nil
		case ctx.Err() != nil:
			return 0, fmt.Errorf("%w (retrying %w)", ctx.Err(), cmp.Or(last, err))
		case lctx.Err() != nil:
			return 0, l.unavailable(topic, partition, cmp.Or(last, err))
		case !kerr.IsRetriable(err):
			return 0, err
		}
		last = err
		select {
		case <-lctx.Done():
		case <-time.After(delay):
		}
	}
}

// unavailable is ErrPartitionUnavailable for a partition whose offsets
// could not be listed for RequestTimeout: err is the last Kafka error.
func (l *Log) unavailable(topic string, partition int32, err error) error {
	return fmt.Errorf("%w: no answer for %s (%w); check that partition %d has a leader "+
		"(kafka-topics.sh --describe --topic %s: \"Leader: none\" means its replicas are down or out of sync) and "+
		"bring its brokers back; it is asked again, nothing is lost meanwhile",
		ErrPartitionUnavailable, l.opts.RequestTimeout, err, partition, topic)
}

// listed picks one partition's offset out of a kadm listing.
func listed(offs kadm.ListedOffsets, topic string, partition int32) (int64, error) {
	if o, ok := offs.Lookup(topic, -1); ok && o.Err != nil {
		return 0, mapErr(o.Err)
	}
	o, ok := offs.Lookup(topic, partition)
	switch {
	case !ok:
		return 0, fmt.Errorf("partition %d missing from the ListOffsets response", partition)
	case o.Err != nil:
		return 0, mapErr(o.Err)
	case o.Offset < 0:
		return 0, fmt.Errorf("broker listed offset %d", o.Offset)
	}
	return o.Offset, nil
}

// Commit stores a group's next offsets for a topic.
func (l *Log) Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error {
	at := make(map[int32]intentlog.EpochOffset, len(offsets))
	for p, o := range offsets {
		at[p] = intentlog.EpochOffset{Offset: o, Epoch: -1}
	}
	return l.CommitEpochs(ctx, group, topic, at)
}

// CommitEpochs implements intentlog.EpochLog: Commit with each offset's
// committed_leader_epoch (KIP-320).
func (l *Log) CommitEpochs(ctx context.Context, group, topic string, offsets map[int32]intentlog.EpochOffset) error {
	topic = l.names.external(topic)
	if err := l.checkOpen(); err != nil {
		return fmt.Errorf("kafka: commit %s/%s: %w", group, topic, err)
	}
	if len(offsets) == 0 {
		return nil
	}
	ps := make(map[int32]kadm.Offset, len(offsets))
	for p, at := range offsets {
		ps[p] = kadm.Offset{Topic: topic, Partition: p, At: at.Offset, LeaderEpoch: max(at.Epoch, -1)}
	}
	resp, err := l.adm.CommitOffsets(ctx, group, kadm.Offsets{topic: ps})
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("kafka: commit %s/%s: %w", group, topic, mapErr(err))
	}
	return nil
}

// Lost implements intentlog.Log: Kafka loses no offsets but to retention.
// The offsets of transaction markers and aborted records, which readers
// pass, never held a record a reader should see.
func (l *Log) Lost(context.Context, string, int32) ([]intentlog.Range, error) {
	if err := l.checkOpen(); err != nil {
		return nil, fmt.Errorf("kafka: lost offsets: %w", err)
	}
	return nil, nil
}

// Committed returns a group's committed offsets for a topic; partitions
// never committed are absent. It first asks for stable offsets: while a
// transaction that commits offsets of the group is open, it waits for its
// end (KIP-447), so that a new owner of a partition starts where the old
// owner's last transaction left it. A transaction that stays open longer
// than stableWait (a hanging one) is not waited for: the committed offsets
// without it are returned, which is safe for wail (a committed offset is
// only ever a lower bound of what was resolved; the resolver re-reads from
// there and skips what the bus already has) and is logged.
func (l *Log) Committed(ctx context.Context, group, topic string) (map[int32]int64, error) {
	out, err := l.CommittedEpochs(ctx, group, topic)
	return plainOffsets(out), err
}

// CommittedEpochs implements intentlog.EpochLog: Committed with the leader
// epoch committed with each offset.
func (l *Log) CommittedEpochs(ctx context.Context, group, topic string) (map[int32]intentlog.EpochOffset, error) {
	topic = l.names.external(topic)
	if err := l.checkOpen(); err != nil {
		return nil, fmt.Errorf("kafka: committed %s/%s: %w", group, topic, err)
	}
	deadline := time.Now().Add(stableWait)
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		out, err := l.committed(ctx, group, topic, true)
		if !errors.Is(err, kerr.UnstableOffsetCommit) {
			return out, err
		}
		if time.Now().After(deadline) {
			return l.committedPastHang(ctx, group, topic)
		}
		select { // a transaction committing offsets of the group is open
		case <-ctx.Done():
			return nil, fmt.Errorf("kafka: committed %s/%s: %w (waiting for %w)", group, topic, ctx.Err(), err)
		case <-time.After(delay):
		}
	}
}

// committedPastHang reads the group's offsets when a transaction with some
// of them stays open: it aborts it if it is a hanging one of the group's
// own (see unhangOffsets) and reads again; otherwise it reads the offsets
// committed before it.
func (l *Log) committedPastHang(ctx context.Context, group, topic string) (map[int32]intentlog.EpochOffset, error) {
	aborted, err := l.unhangOffsets(ctx, group)
	switch {
	case err != nil:
		l.opts.Logger.Warn("a transaction with offsets of the group stays open and could not be aborted; reading the offsets committed before it",
			"group", group, "topic", topic, "waited", stableWait, "err", err)
	case aborted:
		l.opts.Logger.Warn("aborted a hanging transaction of the group's offsets (a broker lost its markers); its offsets are re-read from before it",
			"group", group, "topic", topic)
	default:
		l.opts.Logger.Warn("a transaction with offsets of the group stays open; reading the offsets committed before it",
			"group", group, "topic", topic, "waited", stableWait, "hint", "kafka-transactions.sh find-hanging / abort")
	}
	return l.committed(ctx, group, topic, false)
}

// stableWait bounds how long Committed waits for open transactions: a bit
// over the default transaction timeout of the resolver's producers.
const stableWait = 15 * time.Second

func (l *Log) committed(ctx context.Context, group, topic string, stable bool) (map[int32]intentlog.EpochOffset, error) {
	td, err := l.adm.ListTopics(ctx, topic)
	if err == nil {
		err = td.Error()
	}
	if err == nil && !td.Has(topic) {
		err = kerr.UnknownTopicOrPartition
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: committed %s/%s: metadata: %w", group, topic, mapErr(err))
	}
	d := td[topic]
	// A topic the answer did not list is asked again, a few times.
	for delay := 10 * time.Millisecond; ; delay *= 2 {
		out, err := l.fetchCommitted(ctx, group, topic, d.ID, d.Partitions.Numbers(), stable)
		switch {
		case err == nil:
			return out, nil
		case !errors.Is(err, errUnanswered) || delay > time.Second:
			return nil, fmt.Errorf("kafka: committed %s/%s: %w", group, topic, mapErr(err))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("kafka: committed %s/%s: %w (after %w)", group, topic, ctx.Err(), err)
		case <-time.After(delay):
		}
	}
}

// mapErr puts the intentlog sentinel matching a Kafka or kgo error in front
// of it; other errors are returned as they are.
func mapErr(err error) error {
	var sentinel error
	if loss, ok := errors.AsType[*kgo.ErrDataLoss](err); ok && !errors.Is(err, intentlog.ErrTruncated) {
		return &intentlog.Truncation{From: loss.ResetTo, Read: loss.ConsumedTo, Epoch: loss.ResetToEpoch, Err: err}
	}
	switch {
	case errors.Is(err, intentlog.ErrUnknownTopic), errors.Is(err, intentlog.ErrTooLarge),
		errors.Is(err, intentlog.ErrOffsetOutOfRange), errors.Is(err, intentlog.ErrClosed),
		errors.Is(err, intentlog.ErrAccessDenied):
		return err
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		sentinel = intentlog.ErrUnknownTopic
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		sentinel = intentlog.ErrTooLarge
	case errors.Is(err, kerr.OffsetOutOfRange):
		sentinel = intentlog.ErrOffsetOutOfRange
	case errors.Is(err, kgo.ErrClientClosed):
		sentinel = intentlog.ErrClosed
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.GroupAuthorizationFailed),
		errors.Is(err, kerr.ClusterAuthorizationFailed), errors.Is(err, kerr.TransactionalIDAuthorizationFailed),
		errors.Is(err, kerr.SaslAuthenticationFailed):
		sentinel = intentlog.ErrAccessDenied
	default:
		return err
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}

// DeleteTopic implements intentlog.TopicDeleter with DeleteTopics, then
// waits until the metadata no longer lists the topic (Kafka deletes
// asynchronously; creating the name again before that fails), and forgets
// the topic in this Log and its members (see Forget).
// The group coordinator removes the offsets committed on a deleted topic's
// partitions.
func (l *Log) DeleteTopic(ctx context.Context, topic string) error {
	topic = l.names.external(topic)
	if err := l.checkOpen(); err != nil {
		return fmt.Errorf("kafka: delete topic %s: %w", topic, err)
	}
	resp, err := l.adm.DeleteTopics(ctx, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("kafka: delete topic %s: %w", topic, mapErr(err))
	}
	l.forget(topic)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		_, _, err := l.metadata(ctx, topic)
		switch {
		case errors.Is(err, intentlog.ErrUnknownTopic):
			l.Forget(l.names.internal(topic))
			return nil
		case err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition):
			return fmt.Errorf("kafka: delete topic %s: waiting for the deletion: %w", topic, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka: delete topic %s: waiting for the deletion: %w", topic, ctx.Err())
		case <-time.After(delay):
		}
	}
}
