package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// Shared consumer groups fence their commits through it (group/fence.go);
// the server shares groups only on Kafka.
var (
	_ intentlog.PartitionFencer      = (*Log)(nil)
	_ intentlog.PinnedFencer         = (*Log)(nil)
	_ intentlog.FencedEpochCommitter = (*fencedCommitter)(nil)
	_ intentlog.CommitRenewer        = (*fencedCommitter)(nil)
	_ intentlog.TopicIDReader        = (*fencedCommitter)(nil)
)

// fenceTxnTimeout bounds a fenced commit's transaction: one its committer
// left open (its process died or paused between the offsets and the end)
// is aborted by the coordinator after it, or at once by the partition's
// next FencePartition.
const fenceTxnTimeout = 10 * time.Second

// FencePartition implements intentlog.PartitionFencer with one
// transactional id per group partition ("<group>.fence.<topic>.<p>"):
// InitProducerID bumps the id's producer epoch, which aborts a transaction
// a previous committer left open and makes every later request of it fail
// (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH), whenever the coordinator
// gets it. Each commit is a transaction of its own: AddOffsetsToTxn,
// TxnOffsetCommit (generation -1: no Kafka group membership), EndTxn.
func (l *Log) FencePartition(ctx context.Context, group, topic string, partition int32) (intentlog.FencedCommitter, error) {
	return l.FencePartitionOf(ctx, group, topic, partition, intentlog.TopicID{})
}

// FencePartitionOf implements intentlog.PinnedFencer: FencePartition
// whose committer commits only on the topic with id (a consumer group's
// member read it: fetched records carry their topic's id), which fails
// with intentlog.ErrUnknownTopic when the topic has another id: deleted
// and created again since the reader read it, whose offsets are not the
// new topic's. A zero id pins the topic's id now.
func (l *Log) FencePartitionOf(ctx context.Context, group, topic string, partition int32, id intentlog.TopicID) (intentlog.FencedCommitter, error) {
	topic = l.names.external(topic)
	if err := l.checkOpen(); err != nil {
		return nil, fmt.Errorf("kafka: fence %s/%s/%d: %w", group, topic, partition, err)
	}
	td, err := l.freshTopics(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("kafka: fence %s/%s/%d: metadata: %w", group, topic, partition, mapErr(err))
	}
	d, ok := td[topic]
	switch {
	case !ok:
		return nil, fmt.Errorf("kafka: fence %s/%s/%d: %w", group, topic, partition, intentlog.ErrUnknownTopic)
	case d.Err != nil:
		return nil, fmt.Errorf("kafka: fence %s/%s/%d: %w", group, topic, partition, mapErr(d.Err))
	case id != (intentlog.TopicID{}) && intentlog.TopicID(d.ID) != id:
		return nil, fmt.Errorf("kafka: fence %s/%s/%d: %w: deleted and created again (id %x, now %x): "+
			"the offsets read are the old topic's", group, topic, partition, intentlog.ErrUnknownTopic, id[:], d.ID[:])
	}
	c := &fencedCommitter{l: l, txnID: group + ".fence." + topic + "." + strconv.Itoa(int(partition)),
		group: group, topic: topic, topicID: d.ID, partition: partition, pid: -1, epoch: -1,
		want: intentlog.EpochOffset{Offset: -1, Epoch: -1}, last: intentlog.EpochOffset{Offset: -1, Epoch: -1}}
	if err := c.init(ctx); err != nil {
		return nil, fmt.Errorf("kafka: fence %s/%s/%d: %w", group, topic, partition, err)
	}
	return c, nil
}

// fencedCommitter is a FencedCommitter of the Kafka log.
type fencedCommitter struct {
	l                   *Log
	txnID, group, topic string
	topicID             [16]byte
	partition           int32

	// want: the highest offset asked of Commit, with its leader epoch; a
	// commit takes it, so that calls waiting meanwhile are covered by one
	// transaction.
	wantMu sync.Mutex
	want   intentlog.EpochOffset

	mu    sync.Mutex // one commit at a time; guards what follows
	pid   int64
	epoch int16
	last  intentlog.EpochOffset // the highest offset committed, with its epoch (offset -1: none yet)
	// unsure: a transaction's end has an unknown outcome; the next commit
	// first bumps the epoch with the id and epoch held (KIP-360), which
	// fails if a newer committer fenced this one meanwhile.
	unsure bool

	// afterOffsets, when set (tests), runs between the offsets and the
	// transaction's end; beforeStage between the topic id's check and
	// TxnOffsetCommit.
	afterOffsets, beforeStage func()
}

// TopicID implements intentlog.TopicIDReader: the id of the topic the
// committer commits on, read at the fence (or pinned: FencePartitionOf).
func (c *fencedCommitter) TopicID() intentlog.TopicID { return intentlog.TopicID(c.topicID) }

// init gets the producer id and a new epoch for the transactional id:
// with pid -1 it fences every committer before it; with this committer's
// own id and epoch it only recovers from an unsure end.
func (c *fencedCommitter) init(ctx context.Context) error {
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 250*time.Millisecond) {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID = &c.txnID
		req.TransactionTimeoutMillis = int32(fenceTxnTimeout / time.Millisecond)
		req.ProducerID, req.ProducerEpoch = c.pid, c.epoch
		resp, err := req.RequestWith(ctx, c.l.cl)
		if err != nil {
			return mapErr(err)
		}
		err = kerr.ErrorForCode(resp.ErrorCode)
		switch {
		case err == nil:
			c.pid, c.epoch, c.unsure = resp.ProducerID, resp.ProducerEpoch, false
			return nil
		case errors.Is(err, kerr.ProducerFenced), errors.Is(err, kerr.InvalidProducerEpoch):
			return fmt.Errorf("%w: %w", intentlog.ErrFenced, err)
		case !retriableTxn(err):
			return err
		}
		select { // the previous epoch's transaction is being ended
		case <-ctx.Done():
			return fmt.Errorf("%w (while the coordinator answered %w)", ctx.Err(), err)
		case <-time.After(delay):
		}
	}
}

// retriableTxn: errors of transactional requests that pass on their own.
func retriableTxn(err error) bool {
	return errors.Is(err, kerr.ConcurrentTransactions) || errors.Is(err, kerr.CoordinatorLoadInProgress) ||
		errors.Is(err, kerr.NotCoordinator) || errors.Is(err, kerr.CoordinatorNotAvailable)
}

// Commit implements intentlog.FencedCommitter: CommitEpoch without an
// epoch.
func (c *fencedCommitter) Commit(ctx context.Context, offset int64) error {
	return c.CommitEpoch(ctx, intentlog.EpochOffset{Offset: offset, Epoch: -1})
}

// CommitEpoch implements intentlog.FencedEpochCommitter: the offset is
// committed with its committed_leader_epoch (KIP-320). Calls that wait
// for a commit in progress are covered by the next one, which commits the
// highest offset asked, with its epoch; a commit never moves the offset
// back below one this committer committed.
func (c *fencedCommitter) CommitEpoch(ctx context.Context, at intentlog.EpochOffset) error {
	c.wantMu.Lock()
	if at.Offset > c.want.Offset || (at.Offset == c.want.Offset && c.want.Epoch < 0) {
		c.want = at
	}
	c.wantMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.Offset <= c.last.Offset {
		return nil // committed by a call that took it along
	}
	c.wantMu.Lock()
	o := c.want
	c.wantMu.Unlock()
	if err := c.commit(ctx, o); err != nil {
		return fmt.Errorf("kafka: commit %s/%s/%d: %w", c.group, c.topic, c.partition, err)
	}
	c.last = o
	return nil
}

// Renew implements intentlog.CommitRenewer: a transaction that commits
// at again (or the highest offset asked of this committer, with its
// epoch, as the next Commit would: a commit whose end's outcome is unknown
// may have landed, and its caller still holds the offset below it;
// TestFencedRenewAfterUnsureEnd), so that the broker's
// offsets.retention.minutes counts from now (and the transactional id,
// unused for transactional.id.expiration.ms, is kept too).
func (c *fencedCommitter) Renew(ctx context.Context, at intentlog.EpochOffset) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wantMu.Lock()
	want := c.want
	c.wantMu.Unlock()
	for _, o := range []intentlog.EpochOffset{c.last, want} {
		if o.Offset > at.Offset || (o.Offset == at.Offset && at.Epoch < 0) {
			at = o
		}
	}
	if at.Offset < 0 {
		return nil // nothing committed here, nor asked
	}
	if err := c.commit(ctx, at); err != nil {
		return fmt.Errorf("kafka: commit %s/%s/%d again: %w", c.group, c.topic, c.partition, err)
	}
	c.last = at
	return nil
}

func (c *fencedCommitter) commit(ctx context.Context, offset intentlog.EpochOffset) error {
	if c.unsure {
		if err := c.init(ctx); err != nil {
			return err
		}
	}
	node, err := c.offsets(ctx, offset)
	// The end is not cancellable (a cancelled EndTxn leaves its outcome
	// unknown), but bounded: past the transaction timeout the
	// coordinator aborts it anyway. Nor is the topic id's check before
	// it, once the offset is staged (see offsets).
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fenceTxnTimeout)
	defer cancel()
	if err == nil {
		err = c.sameTopic(ectx, node)
	}
	if eerr := c.end(ectx, err == nil); err != nil {
		if eerr != nil && !errors.Is(eerr, intentlog.ErrFenced) {
			c.unsure = true
		}
		return classifyFence(err)
	} else if eerr != nil {
		if !errors.Is(eerr, intentlog.ErrFenced) {
			c.unsure = true // committed or not: the next commit moves past it
		}
		return eerr
	}
	return nil
}

// offsets adds the group's offsets to a new transaction and stages the
// partition's offset in it; it returns the group coordinator's node id,
// whose metadata sameTopic asks next, before the end.
func (c *fencedCommitter) offsets(ctx context.Context, offset intentlog.EpochOffset) (int32, error) {
	// TxnOffsetCommit names the topic by name before v6 (Kafka 4.3 too):
	// the group coordinator takes the offset for whatever topic has the
	// name in its metadata then, and a topic deleted and created again
	// since the fence would take the old topic's offset, the group's next
	// member skipping its records below it. So the id is checked once
	// the offset is staged, before the end, on the coordinator's metadata
	// (found while the offsets are added to the transaction): a topic
	// replaced before the stage shows its new id there, and one deleted
	// after has the offset staged for it dropped with it (Kafka 4.3).
	// Checked beside AddOffsetsToTxn, which the coordinator may answer
	// CONCURRENT_TRANSACTIONS for a while, a topic replaced before the
	// stage took the old offset (TestFencedCommitTopicReplaced).
	coord := make(chan int32, 1)
	var cerr error
	go func() {
		node, err := c.l.groupCoordinator(ctx, c.group)
		cerr = err
		coord <- node
	}()
	err := c.addOffsets(ctx)
	node := <-coord
	if err == nil && cerr != nil {
		err = fmt.Errorf("topic id: %w", cerr)
	}
	if err != nil {
		return -1, err
	}
	if c.beforeStage != nil {
		c.beforeStage()
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = c.txnID, c.group, c.pid, c.epoch
	req.Generation, req.MemberID = -1, ""
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic, rt.TopicID = c.topic, c.topicID
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch = c.partition, offset.Offset, max(offset.Epoch, -1)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c.l.cl)
	if err != nil {
		return -1, err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				if serr := c.sameTopic(ctx, node); errors.Is(serr, intentlog.ErrUnknownTopic) {
					return -1, fmt.Errorf("stage the offset: %w: %w", serr, err) // replaced says more
				}
				return -1, fmt.Errorf("stage the offset: %w", err)
			}
		}
	}
	if c.afterOffsets != nil {
		c.afterOffsets()
	}
	return node, nil
}

// addOffsets adds the group's offsets to the open transaction
// (AddOffsetsToTxn), asking again while the coordinator is busy.
func (c *fencedCommitter) addOffsets(ctx context.Context) error {
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 250*time.Millisecond) {
		add := kmsg.NewPtrAddOffsetsToTxnRequest()
		add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = c.txnID, c.pid, c.epoch, c.group
		addResp, err := add.RequestWith(ctx, c.l.cl)
		if err != nil {
			return err
		}
		err = kerr.ErrorForCode(addResp.ErrorCode)
		if err == nil {
			return nil
		}
		if !retriableTxn(err) { // CONCURRENT_TRANSACTIONS: the last end's markers are being written
			return fmt.Errorf("add offsets to the transaction: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("add offsets to the transaction: %w (while the coordinator answered %w)", ctx.Err(), err)
		case <-time.After(delay):
		}
	}
}

// sameTopic fails with intentlog.ErrUnknownTopic unless fresh metadata of
// the broker node (the group's coordinator) shows the committer's topic
// with the id it had at the fence.
func (c *fencedCommitter) sameTopic(ctx context.Context, node int32) error {
	td, err := c.l.freshTopicsAt(ctx, node, c.topic)
	if err != nil {
		return fmt.Errorf("metadata: %w", mapErr(err))
	}
	d, ok := td[c.topic]
	switch {
	case !ok, errors.Is(d.Err, kerr.UnknownTopicOrPartition):
		return fmt.Errorf("%w: deleted since the partition was fenced", intentlog.ErrUnknownTopic)
	case d.Err != nil:
		return fmt.Errorf("metadata: %w", mapErr(d.Err))
	case d.ID != c.topicID:
		return fmt.Errorf("%w: deleted and created again since the partition was fenced (id %x, now %x): "+
			"the offset is the old topic's", intentlog.ErrUnknownTopic, c.topicID[:], d.ID[:])
	}
	return nil
}

// end commits (or aborts) the open transaction. Kafka 4 (transaction
// version 2) bumps the epoch at each end and answers the next one.
func (c *fencedCommitter) end(ctx context.Context, commit bool) error {
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 250*time.Millisecond) {
		req := kmsg.NewPtrEndTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = c.txnID, c.pid, c.epoch, commit
		resp, err := req.RequestWith(ctx, c.l.cl)
		if err != nil {
			return mapErr(err)
		}
		err = kerr.ErrorForCode(resp.ErrorCode)
		if err == nil || (!commit && errors.Is(err, kerr.InvalidTxnState)) { // nothing open to abort
			if resp.Version >= 5 && resp.ProducerEpoch >= 0 {
				c.pid, c.epoch = resp.ProducerID, resp.ProducerEpoch
			}
			return nil
		}
		if !retriableTxn(err) {
			return classifyFence(err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (while the coordinator answered %w)", ctx.Err(), err)
		case <-time.After(delay):
		}
	}
}

// classifyFence marks the errors of a committer fenced by a newer one.
func classifyFence(err error) error {
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
		return fmt.Errorf("%w: %w", intentlog.ErrFenced, err)
	}
	return err
}

// Committed implements intentlog.FencedCommitter: the partition's offset
// is read stable (KIP-447), asked by name (offsets.go), and only this
// partition's: other partitions' owners commit in transactions of their
// own all the time.
// Never below what this committer committed: right after a group's first
// transaction ended, before its markers are written, the broker knows no
// group and answers no offset (not "unstable").
func (c *fencedCommitter) Committed(ctx context.Context) (int64, bool, error) {
	at, ok, err := c.CommittedEpoch(ctx)
	return at.Offset, ok, err
}

// CommittedEpoch implements intentlog.FencedEpochCommitter: Committed with
// the leader epoch committed with the offset.
func (c *fencedCommitter) CommittedEpoch(ctx context.Context) (intentlog.EpochOffset, bool, error) {
	o, ok, err := c.read(ctx)
	c.mu.Lock()
	last := c.last
	c.mu.Unlock()
	if err == nil && last.Offset >= 0 && (!ok || o.Offset < last.Offset) {
		return last, true, nil
	}
	return o, ok, err
}

func (c *fencedCommitter) read(ctx context.Context) (intentlog.EpochOffset, bool, error) {
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		out, err := c.l.fetchCommitted(ctx, c.group, c.topic, c.topicID, []int32{c.partition}, true)
		if err == nil {
			o, ok := out[c.partition]
			return o, ok, nil
		}
		// Unstable: a transaction with this partition's offset is
		// ending. Unanswered: asked again (never "none": offsets.go).
		if !errors.Is(err, kerr.UnstableOffsetCommit) && !errors.Is(err, errUnanswered) {
			return intentlog.EpochOffset{}, false, fmt.Errorf("kafka: committed %s/%s/%d: %w", c.group, c.topic, c.partition, mapErr(err))
		}
		select {
		case <-ctx.Done():
			return intentlog.EpochOffset{}, false, fmt.Errorf("kafka: committed %s/%s/%d: %w (waiting for %w)", c.group, c.topic, c.partition, ctx.Err(), err)
		case <-time.After(delay):
		}
	}
}
