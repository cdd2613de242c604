package kafka

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestCommitNotCarriedToTopicCreatedAgain: a member holds a partition of a
// topic that is deleted and created again behind wail's back (same name,
// same partition count, leader epoch 0 again on a fresh topic). Kafka
// drops the group's offsets with the old topic, and new writes land on the
// new one from offset 0. The member's loop still commits offsets it read
// from the old topic: its first commit is refused for the old topic id,
// and the member read the id again and committed the old offset on the new
// topic. The next start of the partition read from there, its epoch (0)
// validated by the new topic's leader, and the new topic's records below
// it were skipped: acknowledged writes without events. An offset of one
// topic must never be committed on another of the same name.
func TestCommitNotCarriedToTopicCreatedAgain(t *testing.T) {
	brokers := realBrokers(t)
	for _, tc := range []struct {
		name        string
		txn         bool // the old offset commits in a transaction with records
		commitFirst bool // the member committed (read the id) before the deletion
	}{
		{name: "alone", commitFirst: true},
		{name: "transaction", txn: true, commitFirst: true},
		{name: "first commit after", txn: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJanitor(t, brokers)
			ctx := testCtx(t, 2*time.Minute)
			l := openLog(t, brokers, nil)
			in, out := inOutTopics(ctx, t, l, j, "recommit")
			group := "g-" + in
			rec := keyRec
			m, a := join(t, l, group, "one", in)
			t.Cleanup(func() { _ = m.Close(ctx) })
			waitFor(t, "the partition assigned", func() bool { return a.count() == 1 })
			if tc.commitFirst {
				if err := m.Transact(ctx, 0, nil, map[string]map[int32]int64{in: {0: 2}}); err != nil {
					t.Fatal(err)
				}
			}
			other := openLog(t, brokers, nil)
			createAgain(ctx, t, other, in, 1)
			for _, v := range []string{"n0", "n1", "n2", "n3", "n4"} { // acknowledged writes on the new topic
				if err := other.Append(ctx, in, rec(v)); err != nil {
					t.Fatal(err)
				}
			}
			// The old loop's next commit (offset 3, of the old topic),
			// retried as an aborted transaction is.
			var recs map[string][]*intentlog.Record
			if tc.txn {
				recs = map[string][]*intentlog.Record{out: rec("event")}
			}
			var err error
			for try := range 3 {
				if err = m.Transact(ctx, 0, recs, map[string]map[int32]int64{in: {0: 3}}); err == nil || !IsAborted(err) {
					break
				}
				t.Logf("commit %d of the old topic's offset: %v", try, err)
			}
			if !errors.Is(err, ErrFenced) || !errors.Is(err, ErrTopicReplaced) {
				t.Errorf("commit of the old topic's offset on the new topic: %v; want ErrTopicReplaced, ErrFenced (join again)", err)
			}
			got, err := other.CommittedEpochs(ctx, group, in)
			if err != nil {
				t.Fatal(err)
			}
			if at, ok := got[0]; ok {
				t.Fatalf("the group's offset of the new topic is %d (epoch %d), committed from the old topic's; "+
					"want none (the new topic's records below it are never read)", at.Offset, at.Epoch)
			}
			// Joined again, the member commits the new topic's offsets.
			if err := m.Close(ctx); err != nil {
				t.Fatal(err)
			}
			m2, a2 := join(t, l, group, "one", in)
			t.Cleanup(func() { _ = m2.Close(ctx) })
			waitFor(t, "the partition assigned again", func() bool { return a2.count() == 1 })
			if err := m2.Transact(ctx, 0, recs, map[string]map[int32]int64{in: {0: 1}}); err != nil {
				t.Fatalf("commit of the new member: %v", err)
			}
			if got, err := other.Committed(ctx, group, in); err != nil || got[0] != 1 {
				t.Fatalf("committed %v, %v; want 1", got, err)
			}
		})
	}
}

// TestFencedCommitNotCarriedToTopicCreatedAgain: a consumer group's
// partition committer (FencePartition) commits in transactions
// (TxnOffsetCommit, which Kafka takes by topic name before v6). Its topic
// deleted and created again behind wail's back, a late acknowledgement of
// an event read from the old topic was committed on the new one: the
// group's next member started there and never got the new topic's events
// below it. The committer commits only on the topic it fenced.
func TestFencedCommitNotCarriedToTopicCreatedAgain(t *testing.T) {
	brokers := realBrokers(t)
	j := newJanitor(t, brokers)
	ctx := testCtx(t, 2*time.Minute)
	l := openLog(t, brokers, nil)
	topic := topicName("refence")
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
	c, err := l.FencePartition(ctx, group, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(ctx, 2); err != nil {
		t.Fatal(err)
	}
	other := openLog(t, brokers, nil)
	createAgain(ctx, t, other, topic, 1)
	for _, v := range []string{"n0", "n1", "n2", "n3", "n4"} {
		if err := other.Append(ctx, topic, rec(v)); err != nil {
			t.Fatal(err)
		}
	}
	err = c.Commit(ctx, 3) // a late acknowledgement of the old topic's event
	t.Logf("commit of the old topic's offset: %v", err)
	if !errors.Is(err, intentlog.ErrUnknownTopic) {
		t.Errorf("commit of the old topic's offset after the topic was created again: %v; want ErrUnknownTopic", err)
	}
	got, err := other.CommittedEpochs(ctx, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	if at, ok := got[0]; ok {
		t.Fatalf("the group's offset of the new topic is %d, committed from the old topic's; want none", at.Offset)
	}
}

// TestReaderTopicIDPinsFence: a reader says the id of the topic whose
// records it returned, and a committer pinned to an id commits only on
// the topic with it (a consumer group's offsets read from a topic deleted
// and created again since are the old one's).
func TestReaderTopicIDPinsFence(t *testing.T) {
	brokers := realBrokers(t)
	j := newJanitor(t, brokers)
	ctx := testCtx(t, time.Minute)
	l := openLog(t, brokers, nil)
	topic := topicName("pinned")
	j.add(topic)
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, topic, []*intentlog.Record{{Key: []byte("k"), Value: []byte("a")}}); err != nil {
		t.Fatal(err)
	}
	ids, err := l.TopicIDs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	r, err := l.NewReader(topic, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tr := r.(intentlog.TopicIDReader)
	if id := tr.TopicID(); id != (intentlog.TopicID{}) {
		t.Errorf("the id before any record was read: %x; want none", id)
	}
	if _, err := r.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if id := tr.TopicID(); id != ids[topic] {
		t.Fatalf("the reader's topic id %x; want %x", id, ids[topic])
	}
	for _, tc := range []struct {
		name string
		id   intentlog.TopicID
		want error
	}{
		{"the topic's", ids[topic], nil},
		{"none (now)", intentlog.TopicID{}, nil},
		{"another", intentlog.TopicID{1}, intentlog.ErrUnknownTopic},
	} {
		c, err := l.FencePartitionOf(ctx, "g-"+topic, topic, 0, tc.id)
		if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
			t.Errorf("%s: fence %v; want %v", tc.name, err, tc.want)
		}
		if err == nil {
			if err := c.Commit(ctx, 1); err != nil {
				t.Errorf("%s: commit: %v", tc.name, err)
			}
		}
	}
}

// TestForgottenTopicIDNotReadAgain: a member's commit checks its topics'
// ids (sameIDs) while its records are produced, then names them in
// TxnOffsetCommit (topicID). Forget (wail dropped the table) cleared the
// cached ids: a Forget, and the topic created again, between the check
// and the commit made the commit read the new topic's id and commit the
// old topic's offset on it; a commit after them passed the check too,
// until the member's group let go of the topic (a rebalance, not awaited
// by Forget). A forgotten topic's offsets are refused (ErrTopicReplaced)
// until its partitions are assigned again, which reads the id anew.
func TestForgottenTopicIDNotReadAgain(t *testing.T) {
	brokers := realBrokers(t)
	j := newJanitor(t, brokers)
	ctx := testCtx(t, 2*time.Minute)
	l := openLog(t, brokers, nil)
	in := topicName("forgot-in")
	j.add(in)
	if err := l.CreateTopic(ctx, in, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	m, a := join(t, l, "g-"+in, "one", in)
	t.Cleanup(func() { _ = m.Close(ctx) })
	waitFor(t, "the partition assigned", func() bool { return a.count() == 1 })
	if err := m.Transact(ctx, 0, nil, map[string]map[int32]int64{in: {0: 2}}); err != nil {
		t.Fatal(err)
	}
	other := openLog(t, brokers, nil)
	old := createAgain(ctx, t, other, in, 1)
	l.Forget(in)
	offsets := map[string]map[int32]intentlog.EpochOffset{in: {0: {Offset: 3, Epoch: -1}}}
	err := m.sameIDs(ctx, -1, offsets)
	t.Logf("the check of the old topic's offset after Forget: %v", err)
	if !errors.Is(err, ErrTopicReplaced) || !errors.Is(err, ErrFenced) {
		t.Errorf("the check of the old topic's offset after Forget and the topic created again: %v; want ErrTopicReplaced, ErrFenced", err)
	}
	id, err := m.topicID(ctx, in)
	if err == nil && intentlog.TopicID(id) != old {
		t.Fatalf("the member's commit names the topic by the new topic's id %x after Forget; the offsets are the old topic's (%x): "+
			"want ErrTopicReplaced", id, old)
	}
	if !errors.Is(err, ErrTopicReplaced) {
		t.Errorf("the topic id of a forgotten topic: %x, %v; want ErrTopicReplaced", id, err)
	}
	// Joined again, the member commits the new topic's offsets.
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	m2, a2 := join(t, l, "g-"+in, "one", in)
	t.Cleanup(func() { _ = m2.Close(ctx) })
	waitFor(t, "the partition assigned again", func() bool { return a2.count() == 1 })
	if err := m2.Transact(ctx, 0, nil, map[string]map[int32]int64{in: {0: 1}}); err != nil {
		t.Fatalf("commit of the new member: %v", err)
	}
}

// createAgain deletes topic through l and creates it again (n
// partitions) until it has another id (a CreateTopic that finds the old
// topic not gone yet takes it as it is); it returns the old id.
func createAgain(ctx context.Context, t *testing.T, l *Log, topic string, n int32) intentlog.TopicID {
	t.Helper()
	ids, err := l.TopicIDs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	for {
		err := l.CreateTopic(ctx, topic, n, intentlog.TopicOptions{})
		now, ierr := l.TopicIDs(ctx, topic)
		if err == nil && ierr == nil && now[topic] != ids[topic] && now[topic] != (intentlog.TopicID{}) {
			return ids[topic]
		}
		if ctx.Err() != nil {
			t.Fatalf("creating the topic again: %v, %v", err, ierr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
