package group

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestLatestGroupAfterTopicCreatedAgain: a group that starts at
// "latest" read and acknowledged events of a topic that was then deleted
// and created again behind wail's back, with new events. Kafka deleted
// the group's offsets with the old topic; once the group's members left,
// the next join loaded it as a new group, started at the new topic's
// end: its events appended before the join were never sent, although
// the group was not new. docs/operations.md says the group starts from
// the new topic's start. The group registry records the topic's id with
// the group (also for a group an older wail listed without it, at its
// next load), and a table dropped and created again through wail (another
// creation time) still has new groups start at the end.
func TestLatestGroupAfterTopicCreatedAgain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		older   bool   // the group was listed by an older wail (no id)
		created int64  // the table's creation time after the topic was made again
		want    string // the first event sent
	}{
		{name: "behind wail's back", created: 1, want: "0:n0"},
		{name: "listed by an older wail", older: true, created: 1, want: "0:n0"},
		{name: "table created again", created: 2, want: "3:n3"},
	} {
		t.Run(tc.name, func(t *testing.T) { testLatestGroupAfterTopicCreatedAgain(t, tc.older, tc.created, tc.want) })
	}
}

func testLatestGroupAfterTopicCreatedAgain(t *testing.T, older bool, created int64, want string) {
	ctx, l, topic := kafkaTopic(t, "latest-again", 1)
	if err := appendValues(ctx, l, topic, "a", "b", "c"); err != nil {
		t.Fatal(err)
	}
	tb := Table{Name: topic, Topic: topic, Partitions: 1, Created: 1}
	G := New(patientKafka{l}, time.Minute)
	defer func() { G.Close() }()
	a, err := G.Join(ctx, tb, "g", "a", true)
	if err != nil {
		t.Fatal(err)
	}
	if older {
		// As an older wail listed it; the next load (with positions)
		// of a process upgraded since records the id.
		if err := l.Append(ctx, registryTopic, []*intentlog.Record{{Key: []byte(tb.Name + "/g"), Value: []byte{}}}); err != nil {
			t.Fatal(err)
		}
		a.Leave()
		G.Close()
		G = New(patientKafka{l}, time.Minute)
		if a, err = G.Join(ctx, tb, "g", "a", true); err != nil {
			t.Fatal(err)
		}
	}
	if err := appendValues(ctx, l, topic, "d", "e"); err != nil {
		t.Fatal(err)
	}
	var last Message
	o := owned{}
	until(t, a, o, func(m Message) {
		if len(m.Records) > 0 && a.Check(m) {
			last = m
		}
	}, func() bool { return last.Next == 5 })
	if refused, err := G.Ack(ctx, tb, "g", "a", []Ack{{Partition: 0, Epoch: o[0], Next: 5}}); err != nil || len(refused) > 0 {
		t.Fatalf("ack 5: %v %v", refused, err)
	}
	recreateTopic(ctx, t, realKafkaLog(t), topic, 1)
	if err := appendValues(ctx, realKafkaLog(t), topic, "n0", "n1", "n2"); err != nil {
		t.Fatal(err)
	}
	a.Leave()
	tb.Created = created
	b, err := G.Join(ctx, tb, "g", "b", true)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Leave()
	if err := appendValues(ctx, realKafkaLog(t), topic, "n3"); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	for {
		m, err := b.Next(rctx)
		if err != nil {
			t.Fatalf("b: %v; want the new topic's events from its start", err)
		}
		if len(m.Records) > 0 {
			r := m.Records[0]
			if got := fmt.Sprintf("%d:%s", r.Offset, r.Value); got != want {
				t.Fatalf("b's first event of the new topic: %s; want %s", got, want)
			}
			return
		}
	}
}
