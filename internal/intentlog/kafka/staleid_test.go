package kafka

import (
	"errors"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestStaleTopicIDHeals: a member caches the topic ids its offset commits
// name (TxnOffsetCommit v6+, OffsetCommit v10+). A topic deleted behind
// wail's back (not through DeleteTopic, which forgets it) and created
// again has a new id: every commit of the member failed with
// UNKNOWN_TOPIC_ID, aborted and tried again for ever, so the resolver's
// partitions of that topic published nothing until a restart. A commit
// refused so fails with ErrFenced (ErrTopicReplaced): the member joins
// again, and the new one reads the id. (It does not read the id again
// itself: its offsets are the old topic's, see
// TestCommitNotCarriedToTopicCreatedAgain.)
func TestStaleTopicIDHeals(t *testing.T) {
	forBoth(t, func(t *testing.T, brokers []string, name func(string) string) {
		l := openLog(t, brokers, nil)
		ctx := testCtx(t, time.Minute)
		in, out := name("stale-in"), name("stale-out")
		for _, topic := range []string{in, out} {
			if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		rec := func(v string) map[string][]*intentlog.Record {
			return map[string][]*intentlog.Record{out: {{Key: []byte(v), Value: []byte(v)}}}
		}
		// In a transaction (TxnOffsetCommit), then alone (OffsetCommit).
		for i, recs := range []map[string][]*intentlog.Record{rec("v"), nil} {
			m, a := join(t, l, "g-"+in, "one", in)
			waitFor(t, "the partition assigned", func() bool { return a.count() == 1 })
			// The id of an earlier incarnation of the topic.
			m.metaMu.Lock()
			m.topicIDs[in] = [16]byte{1, 2, 3}
			m.metaMu.Unlock()
			offsets := map[string]map[int32]int64{in: {0: int64(i + 1)}}
			if err := m.Transact(ctx, 0, recs, offsets); !errors.Is(err, ErrFenced) || !errors.Is(err, ErrTopicReplaced) || IsAborted(err) {
				t.Fatalf("commit %d with a stale topic id: %v; want ErrTopicReplaced, ErrFenced", i, err)
			}
			if err := m.Close(ctx); err != nil {
				t.Fatal(err)
			}
			m, a = join(t, l, "g-"+in, "one", in) // joined again
			waitFor(t, "the partition assigned again", func() bool { return a.count() == 1 })
			err := m.Transact(ctx, 0, recs, offsets)
			_ = m.Close(ctx)
			if err != nil {
				t.Fatalf("commit %d of the member joined again: %v", i, err)
			}
		}
		if got, err := l.Committed(ctx, "g-"+in, in); err != nil || got[0] != 2 {
			t.Fatalf("committed %v, %v; want 2", got, err)
		}
	})
}
