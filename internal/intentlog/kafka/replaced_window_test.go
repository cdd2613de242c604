package kafka

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestTxnCommitAfterTopicReplacedDuringProduce: a transaction checks its
// offsets' topic ids (sameIDs) beside its produce, then names the topics
// in TxnOffsetCommit, which Kafka takes by name before v6. The produce
// may take up to half the transaction timeout (acks=all, a slow
// follower): a topic deleted and created again while the records were
// still in flight passed the check, and the old topic's offset was
// committed on the new topic, whose records below it the group's next
// member skipped. The ids are checked once the offsets are in the
// transaction, before it commits; a topic replaced after that has the
// offsets staged for it dropped with it (Kafka 4.3), and the check fails
// the transaction too.
func TestTxnCommitAfterTopicReplacedDuringProduce(t *testing.T) {
	for _, hook := range []string{"before the offsets", "before the end"} {
		t.Run(hook, func(t *testing.T) { testTxnCommitTopicReplaced(t, hook == "before the offsets") })
	}
}

func testTxnCommitTopicReplaced(t *testing.T, beforeOffsets bool) {
	brokers := realBrokers(t)
	j := newJanitor(t, brokers)
	ctx := testCtx(t, 2*time.Minute)
	l := openLog(t, brokers, nil)
	in, out := inOutTopics(ctx, t, l, j, "window")
	group := "g-" + in
	rec := keyRec
	m, a := join(t, l, group, "one", in)
	t.Cleanup(func() { _ = m.Close(ctx) })
	waitFor(t, "the partition assigned", func() bool { return a.count() == 1 })
	if err := m.Transact(ctx, 0, nil, map[string]map[int32]int64{in: {0: 2}}); err != nil {
		t.Fatal(err)
	}
	other := openLog(t, brokers, nil)
	// While the records are in flight (the hook runs once they are
	// acknowledged, before the offsets go in), or once the offsets are
	// in the transaction.
	replace := func() {
		m.afterProduce, m.afterOffsets = nil, nil
		createAgain(ctx, t, other, in, 1)
		for _, v := range []string{"n0", "n1", "n2", "n3", "n4"} { // acknowledged writes on the new topic
			if err := other.Append(ctx, in, rec(v)); err != nil {
				t.Error(err)
			}
		}
	}
	if beforeOffsets {
		m.afterProduce = replace
	} else {
		m.afterOffsets = replace
	}
	err := m.Transact(ctx, 0, map[string][]*intentlog.Record{out: rec("event")}, map[string]map[int32]int64{in: {0: 3}})
	t.Logf("the transaction with the old topic's offset: %v", err)
	if !errors.Is(err, ErrFenced) || !errors.Is(err, ErrTopicReplaced) {
		t.Errorf("transaction with the old topic's offset, the topic replaced during its produce: %v; want ErrTopicReplaced, ErrFenced", err)
	}
	got, err := other.CommittedEpochs(ctx, group, in)
	if err != nil {
		t.Fatal(err)
	}
	if at, ok := got[0]; ok {
		t.Fatalf("the group's offset of the new topic is %d (epoch %d), committed from the old topic's; "+
			"want none (the new topic's records below it are never read)", at.Offset, at.Epoch)
	}
}

// TestFencedCommitTopicReplaced: a consumer group partition's committer
// checks its topic's id (beside AddOffsetsToTxn, which the coordinator
// answers CONCURRENT_TRANSACTIONS, asked again, while the last
// transaction's markers are written), stages its offset (TxnOffsetCommit,
// by name before v6) and ends the transaction. A topic deleted and
// created again after the check and before the stage took the old
// topic's offset on the new topic; one replaced after the stage, before
// the end, had the offset dropped with the old topic (Kafka 4.3) but the
// commit said it was committed. The id is checked once the offset is
// staged, before the end: either way the commit fails with the topic
// unknown and nothing lands on the new topic.
func TestFencedCommitTopicReplaced(t *testing.T) {
	for _, hook := range []string{"before the stage", "before the end"} {
		t.Run(hook, func(t *testing.T) { testFencedCommitTopicReplaced(t, hook == "before the stage") })
	}
}

func testFencedCommitTopicReplaced(t *testing.T, beforeStage bool) {
	brokers := realBrokers(t)
	j := newJanitor(t, brokers)
	ctx := testCtx(t, 2*time.Minute)
	l := openLog(t, brokers, nil)
	topic := topicName("refence-end")
	j.add(topic)
	group := "g-" + topic
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	rec := func(v string) []*intentlog.Record { return []*intentlog.Record{{Key: []byte("k"), Value: []byte(v)}} }
	for _, v := range []string{"a", "b", "c"} {
		if err := l.Append(ctx, topic, rec(v)); err != nil {
			t.Fatal(err)
		}
	}
	fc, err := l.FencePartition(ctx, group, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := fc.Commit(ctx, 2); err != nil {
		t.Fatal(err)
	}
	other := openLog(t, brokers, nil)
	c := fc.(*fencedCommitter)
	replace := func() {
		c.afterOffsets, c.beforeStage = nil, nil
		createAgain(ctx, t, other, topic, 1)
		for _, v := range []string{"n0", "n1", "n2", "n3", "n4"} {
			if err := other.Append(ctx, topic, rec(v)); err != nil {
				t.Error(err)
			}
		}
	}
	if beforeStage {
		c.beforeStage = replace
	} else {
		c.afterOffsets = replace
	}
	err = c.Commit(ctx, 3) // a late acknowledgement of the old topic's event
	t.Logf("commit of the old topic's offset: %v", err)
	if !errors.Is(err, intentlog.ErrUnknownTopic) {
		t.Errorf("commit of the old topic's offset, the topic replaced: %v; want ErrUnknownTopic", err)
	}
	got, err := other.CommittedEpochs(ctx, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	if at, ok := got[0]; ok {
		t.Fatalf("the group's offset of the new topic is %d, committed from the old topic's; want none", at.Offset)
	}
}

// TestUnpinnedTopicNotReadAtCommit: a member reads the ids of its newly
// assigned partitions' topics before their loops start (pinIDs), and
// commits their offsets only under those. A read that failed (the
// metadata unanswered for a moment) was left to the first commit, which
// read the id then: the topic deleted and created again in between, the
// loop's offsets, read from the old topic's group offsets and reader,
// were committed on the new topic, whose records below them the group's
// next member skipped. A topic whose id was not read at the assignment
// is refused (ErrTopicReplaced, ErrFenced: join again).
func TestUnpinnedTopicNotReadAtCommit(t *testing.T) {
	brokers := realBrokers(t)
	j := newJanitor(t, brokers)
	ctx := testCtx(t, 2*time.Minute)
	l := openLog(t, brokers, nil)
	in, out := inOutTopics(ctx, t, l, j, "unpinned")
	group := "g-" + in
	rec := keyRec
	// The metadata does not answer the read of the id at the assignment.
	l.pinHook = func(string) error { return context.DeadlineExceeded }
	m, a := join(t, l, group, "one", in)
	t.Cleanup(func() { _ = m.Close(ctx) })
	waitFor(t, "the partition assigned", func() bool { return a.count() == 1 })
	other := openLog(t, brokers, nil)
	createAgain(ctx, t, other, in, 1)
	for _, v := range []string{"n0", "n1", "n2", "n3", "n4"} {
		if err := other.Append(ctx, in, rec(v)); err != nil {
			t.Fatal(err)
		}
	}
	for _, recs := range []map[string][]*intentlog.Record{{out: rec("event")}, nil} {
		err := m.Transact(ctx, 0, recs, map[string]map[int32]int64{in: {0: 3}})
		t.Logf("commit of the old topic's offset (records %t): %v", recs != nil, err)
		if !errors.Is(err, ErrFenced) || IsAborted(err) {
			t.Errorf("commit of the old topic's offset by a member that could not read the topic's id at the assignment (records %t): %v; "+
				"want ErrFenced (join again)", recs != nil, err)
		}
	}
	got, err := other.CommittedEpochs(ctx, group, in)
	if err != nil {
		t.Fatal(err)
	}
	if at, ok := got[0]; ok {
		t.Fatalf("the group's offset of the new topic is %d (epoch %d), committed from the old topic's; want none", at.Offset, at.Epoch)
	}
	// Joined again (the id read), the member commits the new topic's offsets.
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	l.pinHook = nil
	m2, a2 := join(t, l, group, "one", in)
	t.Cleanup(func() { _ = m2.Close(ctx) })
	waitFor(t, "the partition assigned again", func() bool { return a2.count() == 1 })
	if err := m2.Transact(ctx, 0, map[string][]*intentlog.Record{out: rec("event")}, map[string]map[int32]int64{in: {0: 1}}); err != nil {
		t.Fatalf("commit of the member joined again: %v", err)
	}
	if got, err := other.Committed(ctx, group, in); err != nil || got[0] != 1 {
		t.Fatalf("committed %v, %v; want 1", got, err)
	}
}

// TestReadTopicCreatedAgainRealBroker is TestReadTopicCreatedAgain on the
// real broker: a reader whose topic is deleted and created again with
// more records than it had read fails with ErrUnknownTopic, neither
// reading the new topic from its old position (its records below it
// skipped) nor waiting for ever.
func TestReadTopicCreatedAgainRealBroker(t *testing.T) {
	brokers := realBrokers(t)
	j := newJanitor(t, brokers)
	ctx := testCtx(t, time.Minute)
	l := openLog(t, brokers, nil)
	topic := topicName("read-recreated")
	j.add(topic)
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	rec := func(v string) []*intentlog.Record { return []*intentlog.Record{{Key: []byte("k"), Value: []byte(v)}} }
	for _, v := range []string{"a", "b"} {
		if err := l.Append(ctx, topic, rec(v)); err != nil {
			t.Fatal(err)
		}
	}
	rd, err := l.NewReader(topic, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for rd.Position() < 2 {
		if _, err := rd.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	other := openLog(t, brokers, nil)
	createAgain(ctx, t, other, topic, 1)
	for _, v := range []string{"n0", "n1", "n2", "n3"} {
		if err := other.Append(ctx, topic, rec(v)); err != nil {
			t.Fatal(err)
		}
	}
	nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	for {
		got, err := rd.Next(nctx)
		if err != nil {
			t.Logf("Next after the topic was created again: %v after %s", err, time.Since(start))
			if !errors.Is(err, intentlog.ErrUnknownTopic) || !strings.Contains(err.Error(), "created again") {
				t.Fatalf("Next after the topic was created again = %v after %s; want the topic unknown, saying it was created again", err, time.Since(start))
			}
			break
		}
		for _, r := range got {
			t.Fatalf("Next after the topic was created again read the new topic's record %d:%s", r.Offset, r.Value)
		}
	}
}

// keyRec is one record of key "k" with value v.
func keyRec(v string) []*intentlog.Record {
	return []*intentlog.Record{{Key: []byte("k"), Value: []byte(v)}}
}

// inOutTopics creates topics prefix-in and prefix-out of one partition
// (deleted at the test's end) and appends the intents a, b and c to in.
func inOutTopics(ctx context.Context, t *testing.T, l *Log, j *topicJanitor, prefix string) (in, out string) {
	t.Helper()
	in, out = topicName(prefix+"-in"), topicName(prefix+"-out")
	j.add(in)
	j.add(out)
	for _, topic := range []string{in, out} {
		if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"a", "b", "c"} {
		if err := l.Append(ctx, in, keyRec(v)); err != nil {
			t.Fatal(err)
		}
	}
	return in, out
}
