package sink

import (
	"context"
	"errors"
	"strings"
	"testing"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestSinkRedriveRefusesWhatItCannotOrder: a letter in a sink's topic
// that is not the sink's own (another kind, another sink's), a row of its
// snapshot (no bus offset) and a letter of a partition the table does not
// have are each refused (ErrCannotRedrive, saying which), and nothing is
// sent: none of them can be placed in the per-key order of the sink's
// partitions. (Another sink's name could reach the topic: "a.b" of table
// t and "b" of table t.a share wail.sink.t.a.b.dlq.)
func TestSinkRedriveRefusesWhatItCannotOrder(t *testing.T) {
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	ctx := context.Background()
	f.publish(event("a", 1))
	topic := DeadLetterTopic(testTable, "s")
	if err := f.log.CreateTopic(ctx, topic, dlq.Partitions, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	sinkLetter := func(edit func(*wailv1.DeadLetter)) *wailv1.DeadLetter {
		l := &wailv1.DeadLetter{Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_SINK, Table: testTable, Sink: "s", Key: []byte("a"),
			Event: event("a", 1), EventOffset: 0, Attempts: 1, Error: "HTTP 500"}
		edit(l)
		return l
	}
	cases := []struct {
		name   string
		letter *wailv1.DeadLetter
		says   string
	}{
		{"another kind's", sinkLetter(func(l *wailv1.DeadLetter) { l.Kind = wailv1.DeadLetterKind_DEAD_LETTER_KIND_SNAPSHOT }), "is not a letter of sink s"},
		{"another sink's", sinkLetter(func(l *wailv1.DeadLetter) { l.Sink = "other" }), "is not a letter of sink s"},
		{"a snapshot row's", sinkLetter(func(l *wailv1.DeadLetter) { l.EventOffset = -1 }), "row of the sink's snapshot"},
		{"of a partition past the table's", sinkLetter(func(l *wailv1.DeadLetter) { l.Partition = 1 }), "partition 1, the table has 1"},
	}
	var recs []*intentlog.Record
	for _, c := range cases {
		r, err := dlq.LetterRecord(c.letter)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if err := f.log.Append(ctx, topic, recs); err != nil {
		t.Fatal(err)
	}
	m := f.manager()
	defer m.Close()
	if _, _, err := m.Create(ctx, &wailv1.Sink{Table: testTable, Name: "s", Url: ep.url(), Start: "latest", MaxBatchEvents: 1}); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		_, err := m.Redrive(ctx, testTable, "s", dlq.Selection{Offsets: []int64{int64(i)}})
		if !errors.Is(err, ErrCannotRedrive) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("redrive of %s letter: %v, want ErrCannotRedrive saying %q", c.name, err, c.says)
		}
	}
	if got := ep.events(); len(got) != 0 {
		t.Fatalf("the endpoint received %v, want nothing", got)
	}
	if ls := letters(t, m, "s"); len(ls) != len(cases) {
		t.Fatalf("%d letters unsettled, want the %d refused", len(ls), len(cases))
	}
}
