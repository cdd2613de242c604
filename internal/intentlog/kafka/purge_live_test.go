package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestPurgeOfLiveTopicLosesNothing: the producer's state of a topic is
// dropped when an Append is refused for an unknown topic (deleted, maybe
// created again). Were the topic still there (a broker that did not yet
// know it, metadata behind), the same producer would start its sequence
// numbers over under the same producer id, and the broker would take the
// next batch for a duplicate of one it holds: acknowledged, never
// written, an acknowledged intent lost. Before, the Append after such a
// purge answered offset 0, and the topic held 3 records, not 4.
func TestPurgeOfLiveTopicLosesNothing(t *testing.T) {
	brokers := realBrokers(t)
	j := newJanitor(t, brokers)
	l := openLog(t, brokers, nil)
	ctx := testCtx(t, time.Minute)
	topic := topicName("purge-live")
	if err := (tracked{l, j}).CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	appendOne := func(v string) *intentlog.Record {
		t.Helper()
		r := &intentlog.Record{Key: []byte("k"), Value: []byte(v)}
		if err := l.Append(ctx, topic, []*intentlog.Record{r}); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for i := range 3 {
		appendOne(fmt.Sprint(i))
	}
	ext := l.names.external(topic)
	l.purge(ext, l.purgeGen(ext)) // as an Append refused for an unknown topic does
	r := appendOne("3")
	if r.Offset != 3 {
		t.Errorf("the Append after the purge answered offset %d, want 3", r.Offset)
	}
	if vs := readValues(t, ctx, l, topic, 0); len(vs) != 4 {
		t.Fatalf("the topic holds %v, want the 4 records appended", vs)
	}
}

// TestForgetOfLiveTopicLosesNothing: Forget purged the topics from the
// client that produces on. A process learns late that another deleted a
// table's topics and created them again: it may have written to the new
// ones meanwhile (its client never wrote to the old ones, so it took the
// new ones as they were), and Forget then started that client's sequence
// numbers over under the same producer id; the broker took its next batch
// for a duplicate and acknowledged it without writing it.
func TestForgetOfLiveTopicLosesNothing(t *testing.T) {
	brokers := realBrokers(t)
	j := newJanitor(t, brokers)
	ctx := testCtx(t, time.Minute)
	topic := topicName("forget-live")
	other := openLog(t, brokers, nil)
	if err := (tracked{other, j}).CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := other.DeleteTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	for {
		err := other.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("creating the topic again: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // still being deleted
	}
	l := openLog(t, brokers, nil)
	appendOne := func(v string) *intentlog.Record {
		t.Helper()
		r := &intentlog.Record{Key: []byte("k"), Value: []byte(v)}
		if err := l.Append(ctx, topic, []*intentlog.Record{r}); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for i := range 3 {
		appendOne(fmt.Sprint(i))
	}
	l.Forget(topic) // it learns of the deletion now
	r := appendOne("3")
	if r.Offset != 3 {
		t.Errorf("the Append after Forget answered offset %d, want 3", r.Offset)
	}
	if vs := readValues(t, ctx, l, topic, 0); len(vs) != 4 {
		t.Fatalf("the topic holds %v, want the 4 records appended", vs)
	}
}

// TestForgetOfLiveTopicTransactLosesNothing is the test above for a
// member's transactional producers: Forget of an event topic still there
// (created again and written to) must not lose the records of the next
// transactions. It holds on a cluster of transaction version 2, where
// each transaction has a new producer epoch and so sequence numbers of
// their own (on version 1 the purge of a live topic would start them over
// under the same epoch: not tested here).
func TestForgetOfLiveTopicTransactLosesNothing(t *testing.T) {
	brokers := realBrokers(t)
	j := newJanitor(t, brokers)
	l := openLog(t, brokers, nil)
	log := tracked{l, j}
	ctx := testCtx(t, 2*time.Minute)
	in, out := topicName("fltx-in"), topicName("fltx-out")
	for _, topic := range []string{in, out} {
		if err := log.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	m, a := join(t, l, "g-"+in, "one", in)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	waitFor(t, "the member to own the partition", func() bool { return a.count() == 1 })
	next := int64(0)
	transact := func(v string) {
		t.Helper()
		recs := []*intentlog.Record{{Key: []byte("k"), Value: []byte(v)}}
		if err := m.Transact(ctx, 0, map[string][]*intentlog.Record{out: recs}, map[string]map[int32]int64{in: {0: next + 1}}); err != nil {
			t.Fatal(err)
		}
		next++
	}
	for i := range 4 {
		transact(fmt.Sprint(i))
	}
	t.Logf("transaction version 2: %v", m.offsetsAddImplicitly(ctx))
	before := map[*kgo.Client]bool{}
	for _, p := range m.producers {
		before[p.client()] = true
	}
	l.Forget(out)
	for i := 4; i < 8; i++ {
		transact(fmt.Sprint(i))
	}
	// Not purged in place (on transaction version 1 the purged producers'
	// sequence numbers would start over under their epoch): each
	// transactional producer runs a new client since.
	for _, p := range m.producers {
		if before[p.client()] {
			t.Errorf("producer %s transacts with the client it had before Forget", p.txnID)
		}
	}
	if vs := readValues(t, ctx, l, out, 0); len(vs) != 8 {
		t.Fatalf("the topic holds %v, want the 8 records of the committed transactions", vs)
	}
}
