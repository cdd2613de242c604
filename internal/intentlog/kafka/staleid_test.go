package kafka

import (
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
// refused so drops the cached id: the next one reads it again.
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
		m, a := join(t, l, "g-"+in, "one", in)
		t.Cleanup(func() { _ = m.Close(ctx) })
		waitFor(t, "the partition assigned", func() bool { return a.count() == 1 })
		rec := func(v string) map[string][]*intentlog.Record {
			return map[string][]*intentlog.Record{out: {{Key: []byte(v), Value: []byte(v)}}}
		}
		// In a transaction (TxnOffsetCommit), then alone (OffsetCommit).
		for i, recs := range []map[string][]*intentlog.Record{rec("v"), nil} {
			// The id of an earlier incarnation of the topic.
			m.metaMu.Lock()
			m.topicIDs[in] = [16]byte{1, 2, 3}
			m.metaMu.Unlock()
			offsets := map[string]map[int32]int64{in: {0: int64(i + 1)}}
			var err error
			for try := range 2 { // the first may be refused
				if err = m.Transact(ctx, 0, recs, offsets); err == nil {
					break
				}
				t.Logf("try %d: %v", try, err)
			}
			if err != nil {
				t.Fatalf("commit %d with a stale topic id, tried twice: %v", i, err)
			}
		}
		if got, err := l.Committed(ctx, "g-"+in, in); err != nil || got[0] != 2 {
			t.Fatalf("committed %v, %v; want 2", got, err)
		}
	})
}
