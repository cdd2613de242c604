package group

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestTableDroppedEndsMembers: dropping a table ends the members of its
// groups with ErrTableDropped, whose error says so, also when the log's
// readers wait on the deleted topic (Kafka: before, such a member's
// stream stayed open with nothing, and a member joining the table created
// again was refused until it was stopped by hand); members of a table
// created again under the name since (another creation time), and groups
// kept (webhook sinks'), stay. The table created again then takes
// members.
func TestTableDroppedEndsMembers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := &patientReaders{Log: openLog(t)}
	tb := table(t, l, 1, 2)
	tb.Created = 1
	G := New(l, time.Minute)
	defer G.Close()
	join := func(tb Table, group, id string) *Session {
		t.Helper()
		s, err := G.Join(ctx, tb, group, id, false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Leave)
		return s
	}
	if err := l.CreateTopic(ctx, "ev2", 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	a, kept := join(tb, "g", "a"), join(tb, "sink.x", "s")
	other := join(Table{Name: "u", Topic: "ev2", Partitions: 1, Created: 1}, "g", "o") // another table's group
	for _, s := range []*Session{a, kept} {                                            // their readers are past opening the topic
		for m := next(t, s); len(m.Records) == 0; m = next(t, s) {
		}
	}
	if err := l.DeleteTopic(ctx, tb.Topic); err != nil {
		t.Fatal(err)
	}
	G.TableDropped("t", 2, nil) // a later creation's drop: not a's table
	select {
	case <-a.Done():
		t.Fatalf("the drop of a table created after the member's ended it: %v", a.Err())
	case <-time.After(50 * time.Millisecond):
	}
	G.TableDropped("t", 1, func(name string) bool { return name == "sink.x" })
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the member of the dropped table's group stayed in")
	}
	if err := a.Err(); !errors.Is(err, ErrTableDropped) {
		t.Fatalf("the member ended with %v, want %v", err, ErrTableDropped)
	}
	for _, s := range []*Session{kept, other} {
		select {
		case <-s.Done():
			t.Fatalf("member %s ended: %v", s.id, s.Err())
		default:
		}
	}
	tb2 := table(t, l, 1, 1)
	tb2.Created = 2
	b := join(tb2, "g", "b")
	if m := next(t, b); len(m.Granted) != 1 || m.Granted[0].Offset != 0 {
		t.Fatalf("the new table's member got %+v, want partition 0 from 0", m)
	}
}
