package group

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// patientReaders' readers wait (until their context ends) instead of
// failing when the log cannot be read, as a Kafka consumer of a deleted
// topic keeps asking for its metadata: a member stays in the group.
type patientReaders struct{ intentlog.Log }

type patientReader struct{ intentlog.Reader }

func (l *patientReaders) NewReader(topic string, p int32, off int64) (intentlog.Reader, error) {
	r, err := l.Log.NewReader(topic, p, off)
	if err != nil {
		return nil, err
	}
	return patientReader{r}, nil
}

func (r patientReader) Next(ctx context.Context) ([]intentlog.Record, error) {
	recs, err := r.Reader.Next(ctx)
	if err != nil && ctx.Err() == nil {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return recs, err
}

// TestAckAfterTableCreatedAgain: a member of a group of a table that was
// dropped and created again (same name and partition count) while it
// consumed acknowledges what it got of the dropped table: it must be
// refused, not committed as the new table's group position (which
// skipped the new table's first events, or put the group past its end).
// A member joining the new table's group meanwhile is refused too (the
// dropped table's members must stop first), as when the partition count
// differs.
func TestAckAfterTableCreatedAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := &patientReaders{Log: openLog(t)}
	tb := table(t, l, 1, 5)
	tb.Created = 1
	G := New(l, time.Minute)
	defer G.Close()
	a, err := G.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Leave()
	var batch Message
	until(t, a, owned{}, func(m Message) {
		if batch.Records == nil && len(m.Records) > 0 && a.Check(m) {
			batch = m
		}
	}, func() bool { return batch.Records != nil })

	if err := l.DeleteTopic(ctx, tb.Topic); err != nil {
		t.Fatal(err)
	}
	tb2 := table(t, l, 1, 1)
	tb2.Created = 2
	if batch.Next <= int64(tb2.Partitions)*4 {
		t.Fatalf("acknowledged %d: the test needs more than the new table's 4 records", batch.Next)
	}
	if _, err := G.Join(ctx, tb2, "g", "b", false); err == nil {
		t.Error("a member of the new table's group joined the dropped table's members")
	}
	refused, err := G.Ack(ctx, tb2, "g", "a", []Ack{{0, batch.Epoch, batch.Next}})
	c, cerr := l.Committed(ctx, LogGroup("g"), tb2.Topic)
	if cerr != nil {
		t.Fatal(cerr)
	}
	if o, ok := c[0]; ok && o == batch.Next {
		t.Fatalf("the dropped table's member's acknowledgement (%v %v) was committed as the new table's position %d (it has 4 events)", refused, err, o)
	}
	if !errors.Is(err, ErrNotMember) {
		t.Fatalf("the dropped table's member's acknowledgement: %v %v, want %v", refused, err, ErrNotMember)
	}
}
