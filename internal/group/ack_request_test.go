package group

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestAckRequestRefusalsExact: an acknowledgement reported refused was
// not committed, whatever else the request holds. Before, a request
// with two entries for one partition, one good and one of another epoch
// (or past the delivered), committed the good one and reported the
// partition refused ("it moved to another member"), so a caller that
// took the refusal at its word redid work already committed. Such a
// request, or one naming a partition the table lacks, or a next below 0,
// is now invalid as a whole (ErrInvalidAck: invalid_argument) and
// commits nothing.
func TestAckRequestRefusalsExact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		acks func(epoch uint64, mid, next int64) []Ack
	}{
		{"good then stale epoch", func(e uint64, mid, _ int64) []Ack { return []Ack{{0, e, mid}, {0, e + 1000, mid}} }},
		{"stale epoch then good", func(e uint64, mid, _ int64) []Ack { return []Ack{{0, e + 1000, mid}, {0, e, mid}} }},
		{"good then past delivered", func(e uint64, mid, next int64) []Ack { return []Ack{{0, e, mid}, {0, e, next + 100}} }},
		{"good and a partition the table lacks", func(e uint64, mid, _ int64) []Ack { return []Ack{{0, e, mid}, {1, e, mid}} }},
		{"good and a negative partition", func(e uint64, mid, _ int64) []Ack { return []Ack{{-1, e, mid}, {0, e, mid}} }},
		// A next below 0 is no position: it was answered as taken (nothing
		// refused, nothing committed), a client bug passed over.
		{"a negative next", func(e uint64, _, _ int64) []Ack { return []Ack{{0, e, -1}} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := openLog(t)
			tb := table(t, l, 1, 5)
			g := New(l, time.Minute)
			defer g.Close()
			a, err := g.Join(ctx, tb, "g", "a", false)
			if err != nil {
				t.Fatal(err)
			}
			next(t, a) // the grant
			batch := next(t, a)
			if !a.Check(batch) || len(batch.Records) < 2 {
				t.Fatalf("batch %+v", batch)
			}
			mid := batch.Records[0].Offset + 1
			refused, err := g.Ack(ctx, tb, "g", "a", tc.acks(batch.Epoch, mid, batch.Next))
			_, parts, derr := g.Describe(ctx, tb, "g")
			if derr != nil {
				t.Fatal(derr)
			}
			committed := parts[0].Committed == mid
			_, said := refused[0]
			if said && committed {
				t.Fatalf("partition 0 reported refused (%v) but committed at %d", refused[0], parts[0].Committed)
			}
			if err == nil && !said && !committed {
				t.Fatalf("partition 0 neither refused nor committed: %+v", parts[0])
			}
			if !errors.Is(err, ErrInvalidAck) || committed {
				t.Fatalf("ack: refused %v, err %v, committed %d; want ErrInvalidAck and nothing committed", refused, err, parts[0].Committed)
			}
		})
	}
}
