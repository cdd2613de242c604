package kafka

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestPinIDsHoldsNoLockAcrossItsRead: a member whose assignment reads a
// newly assigned topic's id (pinIDs) slowly (the metadata up to the
// request timeout) goes on committing the partitions it held before
// (cooperative rebalancing keeps them running): the read holds no lock
// that a transaction's id check waits for. Before, pinIDs held the
// member's metadata lock across the read, and every transaction of the
// member waited for it.
func TestPinIDsHoldsNoLockAcrossItsRead(t *testing.T) {
	brokers := realBrokers(t)
	j := newJanitor(t, brokers)
	ctx := testCtx(t, 2*time.Minute)
	l := openLog(t, brokers, nil)
	a, b, out := topicName("pinlock-a"), topicName("pinlock-b"), topicName("pinlock-out")
	for _, topic := range []string{a, b, out} {
		j.add(topic)
		if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	group := "g-" + a
	var mu sync.Mutex
	held := map[string]bool{}
	opts := func(id string, track bool) MemberOptions {
		o := MemberOptions{Group: group, InstanceID: id, Topics: []string{a, b}, SessionTimeout: 6 * time.Second}
		if track {
			o.OnAssigned = func(m map[string][]int32) {
				mu.Lock()
				defer mu.Unlock()
				for topic := range m {
					held[topic] = true
				}
			}
			o.OnRevoked = func(m map[string][]int32) {
				mu.Lock()
				defer mu.Unlock()
				for topic := range m {
					delete(held, topic)
				}
			}
		}
		return o
	}
	holding := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for topic := range held {
			out = append(out, topic)
		}
		return out
	}
	m2, err := l.Join(opts("two", false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m2.Close(context.Background()) })
	time.Sleep(2 * time.Second) // m2 holds both
	m1, err := l.Join(opts("one", true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m1.Close(context.Background()) })
	waitFor(t, "one topic assigned to m1", func() bool { return len(holding()) == 1 })
	mine := holding()[0]
	// The next assignment's read of the id waits until released.
	release := make(chan struct{})
	reading := make(chan struct{}, 1)
	l.pinHook = func(string) error {
		select {
		case reading <- struct{}{}:
		default:
		}
		<-release
		return nil
	}
	var once sync.Once
	done := func() { once.Do(func() { close(release) }) }
	t.Cleanup(done)
	if err := m2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reading:
	case <-time.After(30 * time.Second):
		t.Fatal("the other topic was not assigned to m1")
	}
	res := make(chan error, 1)
	go func() {
		res <- m1.Transact(ctx, 0, map[string][]*intentlog.Record{out: {{Key: []byte("k"), Value: []byte("v")}}},
			map[string]map[int32]int64{mine: {0: 0}})
	}()
	select {
	case err := <-res:
		if err != nil {
			t.Errorf("a transaction of %s during the assignment's read: %v", mine, err)
		}
	case <-time.After(10 * time.Second):
		done()
		t.Errorf("a transaction of %s, held before, waited for the assignment's read of another topic's id (%v after release)", mine, <-res)
	}
	done()
}

// TestPinIDsRetriesATransientFailure: a read of a newly assigned topic's
// id that fails once (a broker a moment behind a topic just made, a
// request lost) is tried again within the request timeout, before the
// partitions' loops start (and read their offsets): the member commits
// their offsets. Before, one failed read refused the topic's offsets for
// the member's life, and the resolver joined its whole group again.
func TestPinIDsRetriesATransientFailure(t *testing.T) {
	brokers := realBrokers(t)
	j := newJanitor(t, brokers)
	ctx := testCtx(t, time.Minute)
	l := openLog(t, brokers, nil)
	in, out := topicName("pinretry-in"), topicName("pinretry-out")
	for _, topic := range []string{in, out} {
		j.add(topic)
		if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	failed := 0
	l.pinHook = func(string) error {
		mu.Lock()
		defer mu.Unlock()
		if failed++; failed == 1 {
			return context.DeadlineExceeded
		}
		return nil
	}
	m, a := join(t, l, "g-"+in, "one", in)
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	waitFor(t, "the partition assigned", func() bool { return a.count() == 1 })
	err := m.Transact(ctx, 0, map[string][]*intentlog.Record{out: {{Key: []byte("k"), Value: []byte("v")}}},
		map[string]map[int32]int64{in: {0: 0}})
	if err != nil {
		t.Errorf("a transaction after one failed read of the id at the assignment: %v", err)
	}
}
