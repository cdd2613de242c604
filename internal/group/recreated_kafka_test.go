package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/kafka"
	"github.com/wail-cdc/wail/internal/servicetest"
)

// realKafkaLog opens a Kafka log on the test brokers (scripts/kafka.sh
// up; missing: skipped, failed under CI=true), closed after the test.
func realKafkaLog(t *testing.T) *kafka.Log {
	t.Helper()
	l, err := kafka.Open(context.Background(), kafka.Options{Brokers: servicetest.KafkaBrokers(t), ClientID: "wail-test",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// patientKafka is a Kafka log whose readers wait (patientReader)
// instead of failing: the member's reader has not noticed yet that its
// topic was deleted and created again (it asks again for a while, and
// polls UNKNOWN_TOPIC_ID a few times) when the acknowledgement comes.
type patientKafka struct{ *kafka.Log }

type patientEpochReader struct{ intentlog.EpochReader }

func (l patientKafka) NewEpochReader(topic string, p int32, at intentlog.EpochOffset) (intentlog.EpochReader, error) {
	r, err := l.Log.NewEpochReader(topic, p, at)
	if err != nil {
		return nil, err
	}
	return patientEpochReader{r}, nil
}

func (r patientEpochReader) Next(ctx context.Context) ([]intentlog.Record, error) {
	return patientReader{r.EpochReader}.Next(ctx)
}

func (r patientEpochReader) TopicID() intentlog.TopicID {
	if tr, ok := r.EpochReader.(intentlog.TopicIDReader); ok {
		return tr.TopicID()
	}
	return intentlog.TopicID{}
}

// kafkaTopic makes a Kafka topic of n partitions on the test brokers
// (named after what, deleted after the test) and a context that ends
// after 2 minutes.
func kafkaTopic(t *testing.T, what string, n int32) (context.Context, *kafka.Log, string) {
	t.Helper()
	l := realKafkaLog(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	topic := fmt.Sprintf("wail-test-group-%s-%d", what, time.Now().UnixNano())
	if err := l.CreateTopic(ctx, topic, n, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.DeleteTopic(context.Background(), topic) })
	return ctx, l, topic
}

// appendValues appends a record of key "k" to topic per value, in order.
func appendValues(ctx context.Context, l *kafka.Log, topic string, values ...string) error {
	for _, v := range values {
		if err := l.Append(ctx, topic, []*intentlog.Record{{Key: []byte("k"), Value: []byte(v)}}); err != nil {
			return err
		}
	}
	return nil
}

// joinRead joins member to group "g" of tb and reads its messages until
// one of records ends at next (a one-partition table); it returns the
// session and that message.
func joinRead(ctx context.Context, t *testing.T, G *Groups, tb Table, member string, next int64) (*Session, Message) {
	t.Helper()
	s, err := G.Join(ctx, tb, "g", member, false)
	if err != nil {
		t.Fatal(err)
	}
	var last Message
	until(t, s, owned{}, func(m Message) {
		if len(m.Records) > 0 && s.Check(m) {
			last = m
		}
	}, func() bool { return last.Next == next })
	return s, last
}

// recreateTopic deletes topic and creates it again (n partitions) until
// it has another id.
func recreateTopic(ctx context.Context, t *testing.T, l *kafka.Log, topic string, n int32) {
	t.Helper()
	ids, err := l.TopicIDs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	for { // a CreateTopic that finds the old topic not gone yet takes it as it is
		err := l.CreateTopic(ctx, topic, n, intentlog.TopicOptions{})
		now, ierr := l.TopicIDs(ctx, topic)
		if err == nil && ierr == nil && now[topic] != ids[topic] && now[topic] != (intentlog.TopicID{}) {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("creating the topic again: %v, %v", err, ierr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestFirstAckAfterTopicCreatedAgain: a member of a group served by one
// process (Kafka: each owner's committer is made by its first
// acknowledgement, fence.go) read events 0-2 of a topic that was then
// deleted and created again behind wail's back, with new events. Its
// first acknowledgement of the old topic's offset 3 made the partition's
// committer then, which read the new topic's id and committed 3 on it:
// the group's next member started at 3 and never got the new topic's
// events 0-2. The committer commits only on the topic its reader read.
func TestFirstAckAfterTopicCreatedAgain(t *testing.T) {
	ctx, l, topic := kafkaTopic(t, "recreated", 1)
	if err := appendValues(ctx, l, topic, "a", "b", "c"); err != nil {
		t.Fatal(err)
	}
	tb := Table{Name: "t", Topic: topic, Partitions: 1}
	G := New(patientKafka{l}, time.Minute)
	defer G.Close()
	s, last := joinRead(ctx, t, G, tb, "a", 3)
	defer s.Leave()

	other := realKafkaLog(t)
	recreateTopic(ctx, t, other, topic, 1)
	if err := appendValues(ctx, other, topic, "n0", "n1", "n2", "n3", "n4"); err != nil { // acknowledged writes on the new topic
		t.Fatal(err)
	}
	// Retried as a client retries a failed acknowledgement (a broker
	// answers a moment after the creation that it does not know the
	// topic).
	var refused map[int32]error
	var err error
	for try := range 10 {
		refused, err = G.Ack(ctx, tb, "g", "a", []Ack{{Partition: 0, Epoch: last.Epoch, Next: last.Next}})
		t.Logf("the old topic's acknowledgement, try %d: refused %v, %v", try, refused, err)
		if err == nil {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	got, cerr := other.CommittedEpochs(ctx, LogGroup("g"), topic)
	if cerr != nil {
		t.Fatal(cerr)
	}
	if at, ok := got[0]; ok {
		t.Fatalf("the group's offset of the new topic is %d (epoch %d), committed from the old topic's "+
			"(refused %v, %v); want none (the new topic's events below it are never read)", at.Offset, at.Epoch, refused, err)
	}
	if !errors.Is(err, intentlog.ErrUnknownTopic) {
		t.Fatalf("the old topic's acknowledgement: refused %v, %v; want %v", refused, err, intentlog.ErrUnknownTopic)
	}
	// Once its member left, the group is the new topic's, from its start.
	s.Leave()
	b, err := G.Join(ctx, tb, "g", "b", false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Leave()
	if m, err := b.Next(ctx); err != nil || len(m.Granted) != 1 || m.Granted[0].Offset != 0 {
		t.Fatalf("the next member's first message %+v, %v; want the grant at 0 (the new topic's start)", m, err)
	}
}

// TestGrantAfterTopicCreatedAgain: a partition of a group served by one
// process moves to another member after its topic was deleted and created
// again behind wail's back: the member's reader started at the group's
// committed offset, the old topic's 3, on the new topic, and sent its
// events from 3 on: the new topic's events 0-2 were skipped by the group.
// The reader's records carry the new topic's id: the member ends with
// ErrUnknownTopic before any is sent.
func TestGrantAfterTopicCreatedAgain(t *testing.T) {
	ctx, l, topic := kafkaTopic(t, "regrant", 1)
	if err := appendValues(ctx, l, topic, "a", "b", "c"); err != nil {
		t.Fatal(err)
	}
	tb := Table{Name: "t", Topic: topic, Partitions: 1}
	G := New(patientKafka{l}, time.Minute)
	defer G.Close()
	a, last := joinRead(ctx, t, G, tb, "a", 3)
	if refused, err := G.Ack(ctx, tb, "g", "a", []Ack{{Partition: 0, Epoch: last.Epoch, Next: 3}}); err != nil || len(refused) > 0 {
		t.Fatalf("ack 3: %v %v", refused, err)
	}
	b, err := G.Join(ctx, tb, "g", "b", false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Leave()

	other := realKafkaLog(t)
	recreateTopic(ctx, t, other, topic, 1)
	// Acknowledged writes on the new topic, through this process's log
	// (which learns of the new topic so).
	if err := appendValues(ctx, l, topic, "n0", "n1", "n2", "n3", "n4"); err != nil {
		t.Fatal(err)
	}
	a.Leave() // the partition moves to b, at the group's offset 3
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	for {
		m, err := b.Next(rctx)
		if err != nil {
			t.Logf("b ended: %v", err)
			if !errors.Is(err, intentlog.ErrUnknownTopic) {
				t.Fatalf("b: %v; want %v (its reader read a topic created again from the old topic's offset)", err, intentlog.ErrUnknownTopic)
			}
			return
		}
		if len(m.Records) > 0 {
			var got []string
			for _, r := range m.Records {
				got = append(got, fmt.Sprintf("%d:%s", r.Offset, r.Value))
			}
			t.Fatalf("b got %v of the new topic from the old topic's offset 3: its events 0-2 are skipped by the group", got)
		}
	}
}

// hookedKafka runs before once, as its second reader starts.
type hookedKafka struct {
	*kafka.Log
	mu      sync.Mutex
	readers int
	before  func()
}

func (l *hookedKafka) NewEpochReader(topic string, p int32, at intentlog.EpochOffset) (intentlog.EpochReader, error) {
	l.mu.Lock()
	l.readers++
	n := l.readers
	l.mu.Unlock()
	if n == 2 {
		l.before()
	}
	return l.Log.NewEpochReader(topic, p, at)
}

// TestSharedGrantThenTopicCreatedAgain: in a group shared by processes,
// a partition's grant fences it and reads its committed offset (3, the
// old topic's); the topic is deleted and created again behind wail's back
// before the member's reader starts. The reader started at 3 on the new
// topic and sent its events from 3 on: the new topic's events 0-2 were
// skipped by the group. The reader's records carry another id than the
// partition's committer fenced: the member ends with ErrUnknownTopic
// before any is sent.
func TestSharedGrantThenTopicCreatedAgain(t *testing.T) {
	ctx, l, topic := kafkaTopic(t, "shregrant", 1)
	if err := appendValues(ctx, l, topic, "a", "b", "c"); err != nil {
		t.Fatal(err)
	}
	other := realKafkaLog(t)
	hl := &hookedKafka{Log: l, before: func() {
		recreateTopic(ctx, t, other, topic, 1)
		if err := appendValues(ctx, l, topic, "n0", "n1", "n2", "n3", "n4"); err != nil { // acknowledged writes on the new topic
			t.Error(err)
		}
	}}
	tb := Table{Name: "t", Topic: topic, Partitions: 1}
	G := New(hl, time.Minute).Share(Sharing{Store: &memSwapper{c: &memCatalog{m: map[string][]byte{}}}, Process: "P1",
		Lease: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	defer G.Close()
	a, last := joinRead(ctx, t, G, tb, "a", 3)
	if refused, err := G.Ack(ctx, tb, "g", "a", []Ack{{Partition: 0, Epoch: last.Epoch, Next: 3}}); err != nil || len(refused) > 0 {
		t.Fatalf("ack 3: %v %v", refused, err)
	}
	b, err := G.Join(ctx, tb, "g", "b", false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Leave()
	a.Leave() // the partition moves to b, fenced at the group's offset 3; then the topic is created again
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	for {
		m, err := b.Next(rctx)
		if err != nil {
			t.Logf("b ended: %v", err)
			if !errors.Is(err, intentlog.ErrUnknownTopic) {
				t.Fatalf("b: %v; want %v (its reader read a topic created again from the old topic's offset)", err, intentlog.ErrUnknownTopic)
			}
			return
		}
		if len(m.Records) > 0 {
			var got []string
			for _, r := range m.Records {
				got = append(got, fmt.Sprintf("%d:%s", r.Offset, r.Value))
			}
			t.Fatalf("b got %v of the new topic from the old topic's offset 3: its events 0-2 are skipped by the group", got)
		}
	}
}

// TestJoinAfterTopicCreatedAgain: members of a group served by one
// process hold the partitions of a topic that is deleted and created
// again behind wail's back. A member that joins while they are still in
// it joined the group as it was loaded, with the old topic's offsets:
// granted a partition with new events, its reader ended with
// ErrUnknownTopic, and as members kept joining again the group was never
// without members, never loaded again, and no member got the new topic's
// events (a rejoin storm). A join that finds the group's topic with
// another id ends the members it has (their offsets are the old topic's)
// and loads the group again.
func TestJoinAfterTopicCreatedAgain(t *testing.T) {
	ctx, l, topic := kafkaTopic(t, "rejoin", 2)
	keyOf := map[int32][]byte{}
	for i := 0; len(keyOf) < 2; i++ {
		k := fmt.Appendf(nil, "k%d", i)
		if _, ok := keyOf[intentlog.Partition(k, 2)]; !ok {
			keyOf[intentlog.Partition(k, 2)] = k
		}
	}
	for p := range int32(2) {
		for _, v := range []string{"a", "b", "c"} {
			if err := l.Append(ctx, topic, []*intentlog.Record{{Key: keyOf[p], Value: []byte(v)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	tb := Table{Name: "t", Topic: topic, Partitions: 2}
	G := New(patientKafka{l}, time.Minute)
	defer G.Close()
	a, err := G.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Leave()
	next, o := map[int32]int64{}, owned{}
	until(t, a, o, func(m Message) {
		if len(m.Records) > 0 && a.Check(m) {
			next[m.Partition] = m.Next
		}
	}, func() bool { return next[0] == 3 && next[1] == 3 })
	acks := []Ack{{Partition: 0, Epoch: o[0], Next: 3}, {Partition: 1, Epoch: o[1], Next: 3}}
	if refused, err := G.Ack(ctx, tb, "g", "a", acks); err != nil || len(refused) > 0 {
		t.Fatalf("ack 3 and 3: %v %v", refused, err)
	}

	other := realKafkaLog(t)
	recreateTopic(ctx, t, other, topic, 2)
	for p := range int32(2) {
		if err := l.Append(ctx, topic, []*intentlog.Record{{Key: keyOf[p], Value: []byte("n0")}}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := G.Join(ctx, tb, "g", "c", false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Leave()
	select {
	case <-a.Done():
		if !errors.Is(a.Err(), intentlog.ErrUnknownTopic) {
			t.Fatalf("a ended: %v; want %v", a.Err(), intentlog.ErrUnknownTopic)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a, a member of the group loaded from the old topic, is still in it after a join found the topic created again")
	}
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	got := map[int32]string{}
	for len(got) < 2 {
		m, err := c.Next(rctx)
		if err != nil {
			t.Fatalf("c: %v (got %v); want the new topic's events from its start", err, got)
		}
		for _, r := range m.Records {
			if _, ok := got[m.Partition]; !ok {
				got[m.Partition] = fmt.Sprintf("%d:%s", r.Offset, r.Value)
			}
		}
	}
	for p := range int32(2) {
		if got[p] != "0:n0" {
			t.Fatalf("c's first event of partition %d: %s; want 0:n0 (the new topic's first)", p, got[p])
		}
	}
}

// TestRejoinAfterTopicCreatedAgainEpochs: the join that finds the
// group's topic created again (replacedTopic) ends its members one by
// one: each leave gives the partitions of the member gone to those
// still in it, at new epochs, told to them before they end in turn. The
// group loaded again numbered its grants above the epoch read before
// those leaves: it gave those epochs again, to other members (an
// acknowledgement carrying one was taken as the new owner's).
func TestRejoinAfterTopicCreatedAgainEpochs(t *testing.T) {
	ctx, l, topic := kafkaTopic(t, "rejoin-epochs", 2)
	tb := Table{Name: "t", Topic: topic, Partitions: 2}
	G := New(patientKafka{l}, time.Minute)
	defer G.Close()
	old := map[string]*Session{}
	for _, id := range []string{"a", "b"} {
		s, err := G.Join(ctx, tb, "g", id, false)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Leave()
		old[id] = s
	}
	was, err := l.TopicIDs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	recreateTopic(ctx, t, realKafkaLog(t), topic, 2)
	for { // until the group's log sees it (its metadata from any broker)
		now, err := l.TopicIDs(ctx, topic)
		if err == nil && now[topic] != was[topic] && now[topic] != (intentlog.TopicID{}) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the group's log does not see the topic created again: %v %v", now, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, err := G.Join(ctx, tb, "g", "c", false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Leave()
	var given uint64 // the highest epoch the ended members were told of
	for id, s := range old {
		for {
			nctx, ncancel := context.WithTimeout(ctx, 20*time.Second)
			m, err := s.Next(nctx)
			ncancel()
			if err != nil {
				if !errors.Is(err, intentlog.ErrUnknownTopic) {
					t.Fatalf("%s ended: %v; want %v", id, err, intentlog.ErrUnknownTopic)
				}
				break
			}
			for _, g := range m.Granted {
				given = max(given, g.Epoch)
			}
		}
	}
	o := owned{}
	until(t, c, o, nil, func() bool { return len(o) == 2 })
	for p, e := range o {
		if e <= given {
			t.Errorf("c was granted partition %d at epoch %d; the ended members were given epochs up to %d", p, e, given)
		}
	}
}
