package group

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/readahead"
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
			g := New(l, time.Minute).WithReadAhead(budget, nil)
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

// TestMembersReadAheadBoundedProcessWide: members whose streams take
// nothing hold, all together, about the process's read-ahead budget
// (api.max_subscription_buffered_bytes, shared with Subscribe streams),
// not each its own; past it each holds at most one batch (a log read),
// so a member that reads still gets every record; and members that left
// give back what they held.
func TestMembersReadAheadBoundedProcessWide(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	if err := l.CreateTopic(ctx, "ev", 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	const (
		records = 64 // 4 MiB
		member  = 4 << 20
		budget  = 2 << 20
		stalled = 8
		batch   = 1<<20 + 64<<10 // an embedded log read: about 1 MiB
	)
	value := make([]byte, 64<<10)
	for i := range records {
		if err := l.Append(ctx, "ev", []*intentlog.Record{{Key: fmt.Appendf(nil, "k%d", i), Value: value}}); err != nil {
			t.Fatal(err)
		}
	}
	tb := Table{Name: "t", Topic: "ev", Partitions: 1}
	pool := readahead.NewPool(budget)
	g := New(l, time.Minute).WithReadAhead(member, pool)
	defer g.Close()
	var members []*Session
	for i := range stalled {
		s, err := g.Join(ctx, tb, fmt.Sprint("stalled", i), "m", false)
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, s)
		if m := next(t, s); m.Granted == nil {
			t.Fatalf("first message %+v, want the grant", m)
		}
		// The stream sends that and takes nothing more.
	}
	held := settled(pool.Used)
	t.Logf("%d members that take nothing hold %.1f MiB read ahead (each may hold %d MiB; the process %d MiB)",
		stalled, float64(held)/(1<<20), member>>20, budget>>20)
	if limit := int64(budget + stalled*batch); held > limit {
		t.Fatalf("%d members that take nothing hold %d bytes read ahead, more than the process's budget (%d) and one batch each (%d)",
			stalled, held, budget, limit)
	}
	if pool.Waits() == 0 {
		t.Fatal("no member waited for the process's budget: the test does not fill it")
	}

	s, err := g.Join(ctx, tb, "reads", "m", false)
	if err != nil {
		t.Fatal(err)
	}
	if m := next(t, s); m.Granted == nil {
		t.Fatalf("first message %+v, want the grant", m)
	}
	for got := 0; got < records; {
		got += len(next(t, s).Records)
	}
	for _, m := range append(members, s) {
		m.Leave()
	}
	if n := pool.Used(); n != 0 {
		t.Fatalf("the members left and %d bytes are still counted read ahead", n)
	}
}

// settled waits until f returns the same value 10 times in a row, 20 ms
// apart, and returns it.
func settled(f func() int64) int64 {
	last, stable := f(), 0
	for deadline := time.Now().Add(10 * time.Second); stable < 10 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if n := f(); n == last {
			stable++
		} else {
			last, stable = n, 0
		}
	}
	return last
}

// TestSessionHold: a member that queues the messages it takes (a sink)
// and Holds them keeps their bytes counted past its next Next: once it
// holds its budget, its readers read no more (Next waits), within the
// process's pool too; releasing what it holds lets it go on to the end,
// and a release called twice gives back once.
func TestSessionHold(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	if err := l.CreateTopic(ctx, "ev", 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 128<<10)
	const records = 40 // 5 MiB
	for i := range records {
		if err := l.Append(ctx, "ev", []*intentlog.Record{{Key: fmt.Appendf(nil, "k%d", i), Value: value}}); err != nil {
			t.Fatal(err)
		}
	}
	const budget = 1 << 20
	pool := readahead.NewPool(0) // counts only
	g := New(l, time.Minute).WithReadAhead(budget, pool)
	defer g.Close()
	s, err := g.Join(ctx, Table{Name: "t", Topic: "ev", Partitions: 1}, "g", "m", false)
	if err != nil {
		t.Fatal(err)
	}
	if m := next(t, s); m.Granted == nil {
		t.Fatalf("first message %+v, want the grant", m)
	}
	var releases []func()
	var held, got int
	for {
		nctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		m, err := s.Next(nctx)
		cancel()
		if err != nil {
			break // the readers wait for what is held
		}
		releases = append(releases, s.Hold())
		got += len(m.Records)
		for _, r := range m.Records {
			held += len(r.Key) + len(r.Value)
		}
	}
	if got == records || (held > budget && len(releases) > 1) {
		t.Fatalf("holding every message it took, the member took %d records (%d bytes) in %d messages; want at most its budget (%d bytes)",
			got, held, len(releases), budget)
	}
	t.Logf("took %d records, %d bytes, in %d messages", got, held, len(releases))
	if n := pool.Used(); n < min(int64(held), budget) {
		t.Fatalf("the pool counts %d bytes, the member holds %d", n, held)
	}
	for _, release := range releases {
		release()
		release()
	}
	for got < records {
		m := next(t, s)
		s.Hold()() // delivered at once
		got += len(m.Records)
	}
	s.Leave()
	if n := pool.Used(); n != 0 {
		t.Fatalf("the member left and the pool counts %d bytes", n)
	}
}

// TestMemberDroppedReadsDeliverEveryRecordOnce: a member of a topic of
// many partitions that stops taking its messages while the process's
// read-ahead is full drops the reads it cannot take (Stream.Take) and
// reads them again once it took what it held: it still gets every
// record exactly once, in offset order per partition.
func TestMemberDroppedReadsDeliverEveryRecordOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	const (
		parts   = 8
		records = 8 * 24 // per partition: 1.5 MiB, two log reads
		member  = 4 << 20
		budget  = 2 << 20
	)
	if err := l.CreateTopic(ctx, "ev", parts, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 64<<10)
	for i := range records {
		if err := l.Append(ctx, "ev", []*intentlog.Record{{Key: fmt.Appendf(nil, "k%d", i), Value: value, Partition: int32(i % parts)}}); err != nil {
			t.Fatal(err)
		}
	}
	pool := readahead.NewPool(budget)
	g := New(l, time.Minute).WithReadAhead(member, pool)
	defer g.Close()
	s, err := g.Join(ctx, Table{Name: "t", Topic: "ev", Partitions: parts}, "g", "m", false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Leave()
	if m := next(t, s); m.Granted == nil {
		t.Fatalf("first message %+v, want the grant", m)
	}
	settled(pool.Used)
	drops := pool.Drops()
	if drops == 0 {
		t.Fatal("no reader of the member dropped a read: the test does not fill the process's read-ahead")
	}
	seen := map[string]int{}
	last := map[int32]int64{}
	for len(seen) < records {
		m := next(t, s)
		for _, r := range m.Records {
			seen[string(r.Key)]++
			if o, ok := last[m.Partition]; ok && r.Offset <= o {
				t.Fatalf("partition %d: offset %d after %d", m.Partition, r.Offset, o)
			}
			last[m.Partition] = r.Offset
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("record %s delivered %d times", k, n)
		}
	}
	t.Logf("%d records delivered once each, in order; %d reads dropped while stalled, %d in all", records, drops, pool.Drops())
}

// TestStalledMembersOfManyPartitionsMemory: members of a topic of many
// partitions whose streams take nothing hold, in the process's memory,
// about the process's read-ahead budget plus one batch per member, not
// also one log read per partition each (a read that passed Stream.Wait
// before the budget filled waited to be counted with its records).
func TestStalledMembersOfManyPartitionsMemory(t *testing.T) {
	ctx := context.Background()
	l := openLog(t)
	const (
		parts   = 8
		records = 8 * 40 // per partition: 2.5 MiB, three log reads
		member  = 1 << 20
		budget  = 4 << 20
		stalled = 16
		batch   = 1<<20 + 128<<10 // an embedded log read: about 1 MiB
	)
	if err := l.CreateTopic(ctx, "ev", parts, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range records {
		if err := l.Append(ctx, "ev", []*intentlog.Record{{Key: fmt.Appendf(nil, "k%d", i), Value: make([]byte, 64<<10), Partition: int32(i % parts)}}); err != nil {
			t.Fatal(err)
		}
	}
	pool := readahead.NewPool(budget)
	g := New(l, time.Minute).WithReadAhead(member, pool)
	defer g.Close()
	heap := func() int64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	before := heap()
	for i := range stalled {
		s, err := g.Join(ctx, Table{Name: "t", Topic: "ev", Partitions: parts}, fmt.Sprint("g", i), "m", false)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Leave()
		if m := next(t, s); m.Granted == nil {
			t.Fatalf("first message %+v, want the grant", m)
		}
	}
	held := settled(pool.Used)
	time.Sleep(200 * time.Millisecond)
	grown := heap() - before
	t.Logf("%d members of %d partitions that take nothing count %.1f MiB read ahead; the heap grew %.1f MiB (budget %d MiB, dropped reads %d)",
		stalled, parts, float64(held)/(1<<20), float64(grown)/(1<<20), budget>>20, pool.Drops())
	// Slack: the readers' own state (128 of them), the sessions'.
	if limit := int64(budget + stalled*batch + 8<<20); grown > limit {
		t.Fatalf("%d members of %d partitions that take nothing hold %.1f MiB of heap, more than the process's budget (%d MiB) and one batch each (with slack: %.1f MiB)",
			stalled, parts, float64(grown)/(1<<20), budget>>20, float64(limit)/(1<<20))
	}
}
