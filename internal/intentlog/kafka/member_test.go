package kafka

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// assignments tracks what a member owns, from its callbacks.
type assignments struct {
	mu    sync.Mutex
	owned map[int32]bool
}

func (a *assignments) assigned(m map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ps := range m {
		for _, p := range ps {
			a.owned[p] = true
		}
	}
}

func (a *assignments) revoked(m map[string][]int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ps := range m {
		for _, p := range ps {
			delete(a.owned, p)
		}
	}
}

func (a *assignments) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.owned)
}

func (a *assignments) first() int32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	for p := range a.owned {
		return p
	}
	return -1
}

func join(t testing.TB, l *Log, group, id, topic string) (*Member, *assignments) {
	t.Helper()
	a := &assignments{owned: map[int32]bool{}}
	m, err := l.Join(MemberOptions{Group: group, InstanceID: id, Topics: []string{topic},
		OnAssigned: a.assigned, OnRevoked: a.revoked, SessionTimeout: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return m, a
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// testMember checks that two members share a topic's partitions, that a
// transaction makes its records and offsets visible together, that an
// aborted one makes neither visible, and that a leaving member's partitions
// move to the other.
func testMember(t *testing.T, brokers []string) {
	ctx := testCtx(t, 90*time.Second)
	// Small batches, so that one record can make a transaction fail.
	l := openLog(t, brokers, func(o *Options) { o.MaxMessageBytes = 256 << 10 })
	in, out := topicName("member-in"), topicName("member-out")
	for _, topic := range []string{in, out} {
		if err := l.CreateTopic(ctx, topic, 4, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	group := "g-" + in
	m1, a1 := join(t, l, group, "one", in)
	waitFor(t, "the first member to own all partitions", func() bool { return a1.count() == 4 })
	m2, a2 := join(t, l, group, "two", in)
	waitFor(t, "the partitions to be shared", func() bool { return a1.count() == 2 && a2.count() == 2 })

	p := a1.first()
	rec := func(v string) map[string][]*intentlog.Record {
		return map[string][]*intentlog.Record{out: {{Key: []byte(v), Value: []byte(v)}}}
	}
	if err := m1.Transact(ctx, 0, rec("committed"), map[string]map[int32]int64{in: {p: 7}}); err != nil {
		t.Fatal(err)
	}
	if err := m1.Transact(ctx, 0, nil, map[string]map[int32]int64{in: {p: 9}}); err != nil {
		t.Fatal(err)
	}
	got, err := l.Committed(ctx, group, in)
	if err != nil || got[p] != 9 {
		t.Fatalf("committed %v, %v; want partition %d at 9", got, err, p)
	}
	// A transaction that fails after producing part of its records (one is
	// over the batch limit) is aborted: neither its records nor its offsets
	// are visible.
	aborted := map[string][]*intentlog.Record{out: {
		{Key: []byte("aborted"), Value: []byte("aborted")},
		{Key: []byte("huge"), Value: make([]byte, 300<<10)},
	}}
	err = m1.Transact(ctx, 0, aborted, map[string]map[int32]int64{in: {p: 42}})
	if !IsAborted(err) {
		t.Fatalf("transaction with a record over the limit: %v, want an aborted transaction", err)
	}
	got, err = l.Committed(ctx, group, in)
	if err != nil || got[p] != 9 {
		t.Fatalf("after an aborted transaction: committed %v, %v; want partition %d still at 9", got, err, p)
	}
	if err := m2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the partitions to move back", func() bool { return a1.count() == 4 })
	if err := m1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The committed record is there for a read_committed reader.
	var values []string
	for q := int32(0); q < 4; q++ {
		values = append(values, readValues(t, ctx, l, out, q)...)
	}
	if fmt.Sprint(values) != "[committed]" {
		t.Fatalf("read %q, want [committed]", values)
	}
}

func TestMemberFake(t *testing.T) {
	t.Parallel()
	testMember(t, fakeBrokers(t))
}

func TestMemberKafka(t *testing.T) {
	t.Parallel()
	testMember(t, realBrokers(t))
}

// TestMemberFencedByRestart: a member restarted with the same instance id
// fences the old one, whose next transaction fails and is not visible.
func TestMemberFencedByRestart(t *testing.T) {
	t.Parallel()
	brokers := realBrokers(t)
	ctx := testCtx(t, 60*time.Second)
	l := openLog(t, brokers, nil)
	in, out := topicName("fence-in"), topicName("fence-out")
	for _, topic := range []string{in, out} {
		if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	group := "g-" + in
	old, a := join(t, l, group, "same", in)
	waitFor(t, "assignment", func() bool { return a.count() == 1 })
	recs := map[string][]*intentlog.Record{out: {{Key: []byte("k"), Value: []byte("old")}}}
	if err := old.Transact(ctx, 0, recs, map[string]map[int32]int64{in: {0: 1}}); err != nil {
		t.Fatal(err)
	}
	l2 := openLog(t, brokers, nil)
	successor, _ := join(t, l2, group, "same", in)
	defer successor.Close(ctx)
	// The successor's producer id is initialized by its first
	// transaction; until then the old one is not yet fenced.
	if err := successor.Transact(ctx, 0, map[string][]*intentlog.Record{out: {{Key: []byte("k"), Value: []byte("new")}}}, nil); err != nil {
		t.Fatal(err)
	}
	err := old.Transact(ctx, 0, map[string][]*intentlog.Record{out: {{Key: []byte("k"), Value: []byte("zombie")}}}, nil)
	if err == nil {
		t.Fatal("the fenced member's transaction committed")
	}
	_ = old.Close(ctx)
	values := readValues(t, ctx, l, out, 0)
	if fmt.Sprint(values) != "[old new]" {
		t.Fatalf("read %q, want [old new]", values)
	}
}

// TestMemberShardTakesTurns: one shard's transactions, back to back, run
// on its two producers in turn (both appear as producers of the output
// partition) and keep their order: a read_committed reader sees every
// record once, in the order of the Transact calls, and the offset of the
// last one is committed.
func TestMemberShardTakesTurns(t *testing.T) {
	t.Parallel()
	brokers := realBrokers(t)
	ctx := testCtx(t, 90*time.Second)
	l := openLog(t, brokers, nil)
	in, out := topicName("turns-in"), topicName("turns-out")
	for _, topic := range []string{in, out} {
		if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	m, a := join(t, l, "g-"+in, "one", in)
	defer m.Close(ctx)
	waitFor(t, "the partition assigned", func() bool { return a.count() == 1 })
	if m.Shards() != 1 {
		t.Fatalf("%d shards, want 1 (Producers 0)", m.Shards())
	}
	const n = 30
	var want []string
	for i := range n {
		v := fmt.Sprint(i)
		want = append(want, v)
		recs := map[string][]*intentlog.Record{out: {{Key: []byte(v), Value: []byte(v)}}}
		if err := m.Transact(ctx, 0, recs, map[string]map[int32]int64{in: {0: int64(i + 1)}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := l.Committed(ctx, "g-"+in, in)
	if err != nil || got[0] != n {
		t.Fatalf("committed %v, %v; want %d", got, err, n)
	}
	prods, err := l.adm.DescribeProducers(ctx, kadm.TopicsSet{out: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int64]bool{}
	prods.EachProducer(func(p kadm.DescribedProducer) { ids[p.ProducerID] = true })
	if len(ids) != 2 {
		t.Fatalf("%d producers wrote the output partition, want the shard's 2", len(ids))
	}
	values := readValues(t, ctx, l, out, 0)
	if fmt.Sprint(values) != fmt.Sprint(want) {
		t.Fatalf("read %v, want %v", values, want)
	}
}

// TestReplacedMarks: a commit refused for its topic's id or name is a
// topic replaced and a fence (the member joins again); other refusals are
// left as they are.
func TestReplacedMarks(t *testing.T) {
	for _, tc := range []struct {
		err      error
		replaced bool
	}{
		{kerr.UnknownTopicID, true},
		{kerr.UnknownTopicOrPartition, true},
		{kerr.IllegalGeneration, false},
		{kerr.UnknownMemberID, false},
	} {
		err := replaced(tc.err)
		if !errors.Is(err, tc.err) || errors.Is(err, ErrTopicReplaced) != tc.replaced || errors.Is(err, ErrFenced) != tc.replaced {
			t.Errorf("replaced(%v) = %v; want replaced and fenced: %v", tc.err, err, tc.replaced)
		}
	}
}
