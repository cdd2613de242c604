package group

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

func openLog(t *testing.T) intentlog.Log {
	t.Helper()
	l, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// table creates topic "ev" with n partitions and appends count records
// with a value to each.
func table(t *testing.T, l intentlog.Log, n int32, count int) Table {
	t.Helper()
	ctx := context.Background()
	if err := l.CreateTopic(ctx, "ev", n, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	var recs []*intentlog.Record
	for i := range count * int(n) * 4 {
		recs = append(recs, &intentlog.Record{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")})
	}
	if err := l.Append(ctx, "ev", recs); err != nil {
		t.Fatal(err)
	}
	return Table{Name: "t", Topic: "ev", Partitions: n}
}

// next returns the session's next message within 5s.
func next(t *testing.T, s *Session) Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	return m
}

// TestGroupsHandOver: a partition moved to a new member starts at the
// committed offset; the old owner's batches and acknowledgements of it
// are refused; an overdue acknowledgement expires a member.
func TestGroupsHandOver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	tb := table(t, l, 1, 5)
	g := New(l, 300*time.Millisecond)
	defer g.Close()
	a, err := g.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Join(ctx, tb, "g", "a", false); !errors.Is(err, ErrDuplicateMember) {
		t.Fatalf("a second a: %v", err)
	}
	grant := next(t, a)
	if len(grant.Granted) != 1 || grant.Granted[0].Offset != 0 {
		t.Fatalf("first message %+v, want the grant of partition 0 at 0", grant)
	}
	batch := next(t, a)
	if !a.Check(batch) || len(batch.Records) == 0 {
		t.Fatalf("batch %+v refused", batch)
	}
	mid := batch.Records[0].Offset + 1
	if refused, err := g.Ack(ctx, tb, "g", "a", []Ack{{0, batch.Epoch, mid}}); err != nil || len(refused) != 0 {
		t.Fatalf("ack: %v %v", refused, err)
	}
	if err := g.Reset(ctx, tb, "g", map[int32]int64{0: 0}); !errors.Is(err, ErrMembers) {
		t.Fatalf("reset with a live member: %v", err)
	}
	// a acknowledges no more: its lease expires and b, joined meanwhile,
	// owns nothing until then (one partition)
	b, err := g.Join(ctx, tb, "g", "b", false)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
		if !errors.Is(a.Err(), ErrLeaseExpired) {
			t.Fatalf("a ended with %v", a.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a's lease did not expire")
	}
	m := next(t, b)
	if len(m.Granted) != 1 || m.Granted[0].Offset != mid || m.Granted[0].Epoch == batch.Epoch {
		t.Fatalf("b got %+v, want partition 0 at the committed %d under a new epoch", m, mid)
	}
	if a.Check(batch) {
		t.Fatal("a's batch of the old epoch passed")
	}
	if _, err := g.Ack(ctx, tb, "g", "a", []Ack{{0, batch.Epoch, batch.Next}}); !errors.Is(err, ErrNotMember) {
		t.Fatalf("the expired member's ack: %v", err)
	}
	if bm := next(t, b); len(bm.Records) == 0 || bm.Records[0].Offset != mid {
		t.Fatalf("b's first batch %+v, want from offset %d", bm, mid)
	}
	b.Leave()
	_, parts, err := g.Describe(ctx, tb, "g")
	if err != nil || parts[0].Committed != mid || parts[0].Owner != "" {
		t.Fatalf("describe: %+v %v", parts, err)
	}
}

// TestGroupsTableCreatedAgain: a group without members keeps nothing in
// memory: after its table is dropped and created with another partition
// count, a member starts from what the log has.
func TestGroupsTableCreatedAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	tb := table(t, l, 2, 3)
	g := New(l, time.Minute)
	defer g.Close()
	a, err := g.Join(ctx, tb, "g", "a", true) // latest: at the ends
	if err != nil {
		t.Fatal(err)
	}
	first := next(t, a)
	if len(first.Granted) != 2 || first.Granted[0].Offset == 0 {
		t.Fatalf("grants %+v, want both partitions at their ends", first.Granted)
	}
	a.Leave()
	if names, err := g.List(ctx, tb); err != nil || len(names) != 1 || names[0] != "g" {
		t.Fatalf("list: %v %v", names, err)
	}
	if err := l.DeleteTopic(ctx, "ev"); err != nil {
		t.Fatal(err)
	}
	tb = table(t, l, 3, 1)
	if names, err := g.List(ctx, tb); err != nil || len(names) != 0 {
		t.Fatalf("list after the drop: %v %v", names, err)
	}
	b, err := g.Join(ctx, tb, "g", "b", false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Leave()
	m := next(t, b)
	if len(m.Granted) != 3 {
		t.Fatalf("grants %+v, want 3 partitions", m.Granted)
	}
	for _, gr := range m.Granted {
		if gr.Offset != 0 || gr.Epoch <= first.Granted[1].Epoch {
			t.Fatalf("grant %+v, want offset 0 (the new table's start) and an epoch above the last one (%d)", gr, first.Granted[1].Epoch)
		}
	}
	if _, parts, err := g.Describe(ctx, tb, "g"); err != nil || len(parts) != 3 || parts[2].Owner != "b" {
		t.Fatalf("describe: %+v %v", parts, err)
	}
}

// TestGroupsSendTypedDeletes: a record without a value is sent when it
// carries headers (a typed table's delete: a tombstone with the event's
// metadata) and passed when it has none (the tombstone after an
// envelope's delete); Next is past both.
func TestGroupsSendTypedDeletes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	if err := l.CreateTopic(ctx, "ev", 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	recs := []*intentlog.Record{
		{Key: []byte("a"), Value: []byte("event")},
		{Key: []byte("a")}, // an envelope delete's tombstone
		{Key: []byte("b"), Headers: []intentlog.Header{{Key: "wail.op", Value: []byte("DELETE")}}}, // a typed delete
		{Key: []byte("c")}, // a tombstone last
	}
	if err := l.Append(ctx, "ev", recs); err != nil {
		t.Fatal(err)
	}
	g := New(l, 5*time.Second)
	defer g.Close()
	s, err := g.Join(ctx, Table{Name: "t", Topic: "ev", Partitions: 1}, "g", "m", false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Leave()
	if m := next(t, s); len(m.Granted) != 1 {
		t.Fatalf("first message %+v, want the grant", m)
	}
	var got []string
	for n := int64(0); n < 4; {
		m := next(t, s)
		for _, r := range m.Records {
			got = append(got, fmt.Sprintf("%s@%d", r.Key, r.Offset))
		}
		n = m.Next
	}
	if fmt.Sprint(got) != "[a@0 b@2]" {
		t.Fatalf("records sent %v, want [a@0 b@2] (the typed delete, not the bare tombstones)", got)
	}
}

// TestGroupPastRetention: a group whose committed offset retention
// removed (it stayed away longer than the event retention) reads on from
// the log's start when a member joins; the member was ended at every
// join ("offset out of range"). It is told what it lost first (Gap).
func TestGroupPastRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true, SegmentBytes: 1024, RetentionCheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := l.CreateTopic(ctx, "ev", 1, intentlog.TopicOptions{RetentionBytes: 3000}); err != nil {
		t.Fatal(err)
	}
	tb := Table{Name: "t", Topic: "ev", Partitions: 1}
	g := New(l, time.Minute)
	defer g.Close()
	a, err := g.Join(ctx, tb, "g", "a", false) // commits the start, 0
	if err != nil {
		t.Fatal(err)
	}
	if grant := next(t, a); len(grant.Granted) != 1 || grant.Granted[0].Offset != 0 {
		t.Fatalf("first message %+v, want the grant of partition 0 at 0", grant)
	}
	a.Leave()
	for i := range 100 {
		if err := l.Append(ctx, "ev", []*intentlog.Record{{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("a value of some bytes")}}); err != nil {
			t.Fatal(err)
		}
	}
	start, _, err := l.Bounds(ctx, "ev", 0)
	if err != nil || start == 0 {
		t.Fatalf("retention removed nothing (start %d, %v)", start, err)
	}
	b, err := g.Join(ctx, tb, "g", "b", false)
	if err != nil {
		t.Fatal(err)
	}
	if grant := next(t, b); len(grant.Granted) != 1 {
		t.Fatalf("first message %+v, want a grant", grant)
	}
	// The member is told what it lost first, then gets the rest.
	if gap := next(t, b); gap.Gap == nil || *gap.Gap != (Gap{From: 0, To: start}) || len(gap.Records) > 0 || gap.Next != start {
		t.Fatalf("first message after the grant %+v (gap %+v); want the gap [0, %d) alone", gap, gap.Gap, start)
	}
	batch := next(t, b)
	if len(batch.Records) == 0 || batch.Records[0].Offset != start {
		t.Fatalf("first batch %+v; want records from the log's start %d", batch, start)
	}
}

// TestGroupPastTheEnd: a group whose committed offset is past the log's
// end (the log lost its tail: an unclean Kafka leader election; new events
// take those offsets again) ends its member with an error that says how
// to set its positions, rather than skipping or repeating events it
// cannot place. (The embedded log refuses such a commit and lowers such
// an offset at Open: the offset is answered by committedPast.)
func TestGroupPastTheEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := openLog(t)
	tb := table(t, base, 1, 1)
	_, end, err := base.Bounds(ctx, "ev", 0)
	if err != nil {
		t.Fatal(err)
	}
	l := committedPast{Log: base, group: LogGroup("g"), topic: "ev", offsets: map[int32]int64{0: end + 50}}
	g := New(l, time.Minute)
	defer g.Close()
	a, err := g.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	if grant := next(t, a); len(grant.Granted) != 1 {
		t.Fatalf("first message %+v, want a grant", grant)
	}
	nctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = a.Next(nctx)
	if err == nil || !errors.Is(err, intentlog.ErrOffsetOutOfRange) || !strings.Contains(err.Error(), "wail group reset") {
		t.Fatalf("a member past the end: %v; want it ended, naming wail group reset", err)
	}
}

// committedPast answers offsets as group's committed offsets of topic,
// as a log that lost its tail after they were committed does (Kafka).
type committedPast struct {
	intentlog.Log
	group, topic string
	offsets      map[int32]int64
}

func (l committedPast) Committed(ctx context.Context, group, topic string) (map[int32]int64, error) {
	if group == l.group && topic == l.topic {
		return maps.Clone(l.offsets), nil
	}
	return l.Log.Committed(ctx, group, topic)
}
