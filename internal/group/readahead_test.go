package group

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestMemberReadAheadBounded: a member whose stream does not take its
// messages (a Consume client that stopped reading: the handler is blocked
// in Send) holds at most the read-ahead budget of records
// (api.subscription_buffer_bytes, as a Subscribe stream), not
// sessionBuffer whole log reads of up to megabytes each; and a member that
// reads goes on to the end, also with a budget smaller than one record.
func TestMemberReadAheadBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	if err := l.CreateTopic(ctx, "ev", 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 256<<10)
	const records = 100 // 25 MiB
	for i := range records {
		if err := l.Append(ctx, "ev", []*intentlog.Record{{Key: fmt.Appendf(nil, "k%d", i), Value: value}}); err != nil {
			t.Fatal(err)
		}
	}
	tb := Table{Name: "t", Topic: "ev", Partitions: 1}
	for _, budget := range []int64{4 << 20, 1} {
		t.Run(fmt.Sprint(budget), func(t *testing.T) {
			g := New(l, time.Minute).WithReadAhead(budget)
			defer g.Close()
			s, err := g.Join(ctx, tb, fmt.Sprint("g", budget), "m", false)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Leave()
			if m := next(t, s); m.Granted == nil {
				t.Fatalf("first message %+v, want the grant", m)
			}
			// The client takes nothing more: wait for the readers to stop.
			for last, stable := -1, 0; stable < 10; time.Sleep(20 * time.Millisecond) {
				if n := len(s.out); n == last {
					stable++
				} else {
					last, stable = n, 0
				}
			}
			var held int64
			queued := peek(s)
			for _, m := range queued {
				for _, r := range m.Records {
					held += int64(len(r.Key) + len(r.Value))
				}
			}
			// A batch over the budget takes all of it: one at a time.
			if held > budget && len(queued) > 1 {
				t.Fatalf("a member that reads nothing holds %d bytes read ahead (%.1f MiB) in %d messages, more than its budget (%d bytes)",
					held, float64(held)/(1<<20), len(queued), budget)
			}
			got := 0
			for got < records {
				got += len(next(t, s).Records)
			}
		})
	}
}

// peek returns the messages queued in s.out, leaving them there.
func peek(s *Session) []Message {
	var ms []Message
	for n := len(s.out); n > 0; n-- {
		m := <-s.out
		ms = append(ms, m)
	}
	for _, m := range ms {
		s.out <- m
	}
	return ms
}
