package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// txnCommitOffsets adds the group's offsets to the open transaction, fenced
// by the member's generation: a member that was replaced cannot commit.
func (m *Member) txnCommitOffsets(ctx context.Context, p *producer, offsets map[string]map[int32]intentlog.EpochOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	cl := p.client()
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		return err
	}
	if !m.offsetsAddImplicitly(ctx) {
		add := kmsg.NewPtrAddOffsetsToTxnRequest()
		add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = p.txnID, pid, epoch, m.group
		addResp, err := add.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		if err := kerr.ErrorForCode(addResp.ErrorCode); err != nil {
			return err
		}
	}
	member, gen := m.cl.GroupMetadata()
	if err := m.owners.check(member, offsets); err != nil {
		return err
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = p.txnID, m.group, pid, epoch
	req.Generation, req.MemberID = gen, member
	for topic, parts := range offsets {
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = topic
		if rt.TopicID, err = m.topicID(ctx, topic); err != nil {
			return err
		}
		for p, o := range parts {
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = p, o.Offset, max(o.Epoch, -1)
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				name := t.Topic
				for _, rt := range req.Topics {
					if name == "" && rt.TopicID == t.TopicID {
						name = rt.Topic
					}
				}
				return fmt.Errorf("commit %s/%d: %w", name, p.Partition, replaced(err))
			}
		}
	}
	return nil
}

// replaced marks a commit refused for its topic id (UNKNOWN_TOPIC_ID) or
// name (UNKNOWN_TOPIC_OR_PARTITION) with ErrTopicReplaced and ErrFenced.
// The member keeps the id (see topicID): its partitions' offsets are the
// old topic's, and every commit of them is refused so until the member is
// joined again. (Reading the id again here committed them on a topic
// created again under the name: TestCommitNotCarriedToTopicCreatedAgain.)
func replaced(err error) error {
	if !errors.Is(err, kerr.UnknownTopicID) && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return err
	}
	return fmt.Errorf("%w: %w: %w", ErrFenced, ErrTopicReplaced, err)
}

// offsetsAddImplicitly tells whether the cluster finalized transaction
// version 2 and takes TxnOffsetCommit v5+ (as franz-go decides for its own
// transactions): then TxnOffsetCommit adds the offsets to the transaction
// itself, one round trip fewer. When in doubt: no (AddOffsetsToTxn, right
// on every cluster). The question (ApiVersions) is asked by one
// transaction at a time, within askBound of its time, and without metaMu,
// which the other transactions' topic id checks take
// (TestOffsetsQuestionHoldsNoLock); while it is asked, and for askRetry
// after it failed, the others answer no at once
// (TestOffsetsQuestionNotAskedAtEveryTransaction). Once answered, it is
// asked no more.
func (m *Member) offsetsAddImplicitly(ctx context.Context) bool {
	known := func() (answer *bool, wait bool) {
		m.metaMu.Lock()
		defer m.metaMu.Unlock()
		return m.implicitOffsets, !m.askFailed.IsZero() && time.Since(m.askFailed) < askRetry
	}
	if answer, wait := known(); answer != nil || wait {
		return answer != nil && *answer
	}
	if !m.askMu.TryLock() {
		return false // another transaction is asking
	}
	defer m.askMu.Unlock()
	if answer, wait := known(); answer != nil || wait { // answered meanwhile
		return answer != nil && *answer
	}
	actx, cancel := context.WithTimeout(ctx, m.produceBound/askBound)
	defer cancel()
	ok, err := m.askImplicit(actx)
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	switch {
	case err == nil:
		m.implicitOffsets = &ok
	case ctx.Err() == nil:
		// (A question cut by the caller's end says nothing of the
		// cluster: asked again by the next transaction.)
		m.askFailed = time.Now()
	}
	return ok
}

// askImplicit asks the cluster offsetsAddImplicitly's question.
func (m *Member) askImplicit(ctx context.Context) (bool, error) {
	if m.askHook != nil {
		if err := m.askHook(ctx); err != nil {
			return false, err
		}
	}
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "wail", "1"
	resp, err := req.RequestWith(ctx, m.cl)
	if err != nil {
		return false, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return false, err
	}
	ok := false
	for _, f := range resp.FinalizedFeatures {
		if f.Name == "transaction.version" && f.MaxVersionLevel >= 2 {
			ok = true
		}
	}
	txnOffsetCommitV5 := false
	for _, k := range resp.ApiKeys {
		if k.ApiKey == int16(kmsg.TxnOffsetCommit) && k.MaxVersion >= 5 {
			txnOffsetCommitV5 = true
		}
	}
	return ok && txnOffsetCommitV5, nil
}

const (
	// askRetry is how long after a failed question offsetsAddImplicitly
	// asks it again.
	askRetry = 10 * time.Second
	// askBound: the question takes at most this fraction of the
	// transaction's produce bound (half the transaction timeout), so
	// that its transaction, answered no, still commits in time.
	askBound = 4
)

// coordinator is the group coordinator's node id, or why it is not known.
type coordinator struct {
	node int32
	err  error
}

// coordinator finds the group's coordinator, whose metadata sameIDs asks
// (node -1 when there are no offsets to check).
func (m *Member) coordinator(ctx context.Context, offsets map[string]map[int32]intentlog.EpochOffset) coordinator {
	if len(offsets) == 0 {
		return coordinator{node: -1}
	}
	node, err := m.l.groupCoordinator(ctx, m.group)
	if err != nil {
		return coordinator{node: -1, err: fmt.Errorf("topic ids: %w", err)}
	}
	return coordinator{node: node}
}

// sameIDs fails with ErrTopicReplaced when a topic of offsets has, by
// fresh metadata of the broker node (the group's coordinator; -1: any),
// another id than the member's. In a transaction it runs once the
// offsets are in it (by name: TxnOffsetCommit before v6), before it
// commits: the coordinator took them for the topic its metadata had
// then, which it shows now or a newer one. A topic deleted after that
// has the offsets staged for it dropped with it (Kafka 4.3:
// TestFencedCommitTopicReplaced), and one created again before it shows
// its new id here.
func (m *Member) sameIDs(ctx context.Context, node int32, offsets map[string]map[int32]intentlog.EpochOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	topics := make([]string, 0, len(offsets))
	for topic := range offsets {
		topics = append(topics, topic)
	}
	tds, err := m.l.freshTopicsAt(ctx, node, topics...)
	if err != nil {
		return fmt.Errorf("topic ids: %w", err)
	}
	for _, topic := range topics {
		id, err := m.topicID(ctx, topic)
		if err != nil {
			return err
		}
		td, ok := tds[topic]
		switch {
		case !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition):
			// Deleted, or a broker behind: aborted and tried again,
			// until the metadata shows the topic (another id: replaced)
			// or the reader finds it gone.
			return fmt.Errorf("metadata of %s: %w", topic, kerr.UnknownTopicOrPartition)
		case td.Err != nil:
			return fmt.Errorf("metadata of %s: %w", topic, td.Err)
		case td.ID != id:
			return fmt.Errorf("%s (id %x, now %x): %w", topic, id[:], td.ID[:], replaced(kerr.UnknownTopicID))
		}
	}
	return nil
}

// pinIDs reads the ids of the topics of newly assigned partitions that
// the member has none of yet, before their loops start: the offsets of a
// partition are committed under the id its topic had then, never under
// one read later (a topic deleted and created again meanwhile: its loop's
// reader reads the old one). A topic whose id cannot be read then is
// refused for the member's life (unpinned; TestUnpinnedTopicNotReadAtCommit:
// its first commit read the id, of a topic created again since the loops
// read their offsets). A topic forgotten through the Log (Forget) is read
// anew: its partitions assigned again are those of a topic created
// again, or of the same one.
func (m *Member) pinIDs(ctx context.Context, a map[string][]int32) {
	if len(a) == 0 {
		return
	}
	var read []string
	m.metaMu.Lock()
	for topic := range a {
		if m.forgotten[topic] {
			delete(m.forgotten, topic)
			delete(m.topicIDs, topic)
		}
		if _, ok := m.topicIDs[topic]; !ok && m.unpinned[topic] == nil {
			read = append(read, topic)
		}
	}
	m.metaMu.Unlock()
	// Not under metaMu: the transactions of the partitions held before
	// check their ids under it meanwhile (TestPinIDsHoldsNoLockAcrossItsRead).
	// Assignments come one at a time; a Forget meanwhile leaves the topic
	// forgotten, which topicID checks first.
	ctx, cancel := context.WithTimeout(ctx, m.l.opts.RequestTimeout)
	defer cancel()
	for _, topic := range read {
		id, err := m.pinnedIDRetried(ctx, topic)
		m.metaMu.Lock()
		if err != nil {
			m.unpinned[topic] = err
		} else {
			m.topicIDs[topic] = id
		}
		m.metaMu.Unlock()
		if err != nil {
			m.l.opts.Logger.Warn("kafka: the topic id of newly assigned partitions could not be read; "+
				"their offsets are refused until the member joins again", "group", m.group, "topic", topic, "err", err)
		}
	}
}

// pinnedIDRetried is pinnedID tried again a few times with backoff (at
// most pinTries in all, within ctx): before the partitions' loops start
// (and read their offsets), an id read late is as good as one read at
// once, and a topic whose id could not be read is refused for the
// member's life, which the resolver meets by joining its whole group
// again (TestPinIDsRetriesATransientFailure). A few, not until ctx ends:
// the assignment waits for them.
func (m *Member) pinnedIDRetried(ctx context.Context, topic string) ([16]byte, error) {
	id, err := m.l.pinnedID(ctx, topic)
	wait := 50 * time.Millisecond
	for try := 1; err != nil && try < pinTries; try++ {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return id, err
		case <-t.C:
		}
		wait *= 2
		id, err = m.l.pinnedID(ctx, topic)
	}
	return id, err
}

// pinTries is how many times pinIDs reads a topic's id before it gives up
// (waiting 50 ms, 100 ms, 200 ms between).
const pinTries = 4

// pinnedID reads topic's id for a member's assignment (pinIDs).
func (l *Log) pinnedID(ctx context.Context, topic string) ([16]byte, error) {
	if l.pinHook != nil {
		if err := l.pinHook(topic); err != nil {
			return [16]byte{}, err
		}
	}
	td, err := l.freshTopics(ctx, topic)
	if err != nil {
		return [16]byte{}, mapErr(err)
	}
	d, ok := td[topic]
	switch {
	case !ok:
		return [16]byte{}, fmt.Errorf("metadata of %s: %w", topic, intentlog.ErrUnknownTopic)
	case d.Err != nil:
		return [16]byte{}, fmt.Errorf("metadata of %s: %w", topic, mapErr(d.Err))
	}
	return d.ID, nil
}

// topicID returns the id a topic's partitions were assigned under
// (pinIDs), kept for the member's life (see replaced). A topic forgotten
// through the Log (dropped by wail: Forget) since its partitions were
// assigned fails with ErrTopicReplaced until they are assigned again
// (pinIDs): the offsets of a partition assigned before are the dropped
// topic's, and reading the id here named a topic created again since
// (TestForgottenTopicIDNotReadAgain: a Forget between a transaction's
// check, sameIDs, and its TxnOffsetCommit). A topic whose id pinIDs could
// not read, or that was never assigned here, fails with ErrFenced: an id
// read now may be a topic's created again since the offsets were read
// (TestUnpinnedTopicNotReadAtCommit).
func (m *Member) topicID(_ context.Context, topic string) ([16]byte, error) {
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	if m.forgotten[topic] {
		return [16]byte{}, fmt.Errorf("%s was forgotten (its table dropped) since its partitions were assigned: %w", topic, replaced(kerr.UnknownTopicID))
	}
	if id, ok := m.topicIDs[topic]; ok {
		return id, nil
	}
	if err := m.unpinned[topic]; err != nil {
		return [16]byte{}, fmt.Errorf("%w: the id of topic %s could not be read when its partitions were assigned (%w); "+
			"its offsets are committed only under the id read then: the member must join again", ErrFenced, topic, err)
	}
	return [16]byte{}, fmt.Errorf("%w: topic %s has no partitions assigned to the member", ErrFenced, topic)
}

// commit commits offsets outside a transaction, under the member's
// generation. Not kgo's CommitOffsets: it waits out a join and sync, then
// commits under the new member id and generation, which owners must check
// first.
func (m *Member) commit(ctx context.Context, offsets map[string]map[int32]intentlog.EpochOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	member, gen := m.cl.GroupMetadata()
	if err := m.owners.check(member, offsets); err != nil {
		return fmt.Errorf("kafka: commit offsets: %w", err)
	}
	// OffsetCommit names topics by id from v10 on only (the broker then
	// refuses an old id itself); before, by name, as TxnOffsetCommit,
	// and, not in a transaction, checked before it only: a topic
	// replaced between the check and the commit (one round trip) is
	// not seen.
	co := m.coordinator(ctx, offsets)
	err := co.err
	if err == nil {
		err = m.sameIDs(ctx, co.node, offsets)
	}
	if err != nil {
		if errors.Is(err, ErrFenced) { // ErrTopicReplaced, a topic unpinned
			return fmt.Errorf("kafka: commit offsets: %w", err)
		}
		return fmt.Errorf("kafka: commit offsets: %w: %w", errAborted, err)
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation, req.MemberID = m.group, gen, member
	for topic, parts := range offsets {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		id, err := m.topicID(ctx, topic)
		if err != nil {
			return fmt.Errorf("kafka: commit offsets: %w", err) // ErrFenced
		}
		rt.TopicID = id
		for p, o := range parts {
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = p, o.Offset, max(o.Epoch, -1)
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, m.cl)
	if err != nil {
		return fmt.Errorf("kafka: commit offsets: %w: %w", errAborted, err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				if err := replaced(err); errors.Is(err, ErrTopicReplaced) {
					return fmt.Errorf("kafka: commit offsets: commit %s/%d: %w", topicOf(req, t.Topic, t.TopicID), p.Partition, err)
				}
				return fmt.Errorf("kafka: commit offsets: %w: commit %s/%d: %w", errAborted, topicOf(req, t.Topic, t.TopicID), p.Partition, err)
			}
		}
	}
	return nil
}

// topicOf names a topic of a response, which names it by id from v10 on.
func topicOf(req *kmsg.OffsetCommitRequest, name string, id [16]byte) string {
	for _, t := range req.Topics {
		if name == "" && t.TopicID == id {
			return t.Topic
		}
	}
	return name
}
