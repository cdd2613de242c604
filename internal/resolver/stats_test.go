package resolver

import (
	"reflect"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// TestEventStats: an event's stats say when its round's first read was
// asked, for which oldest intent, how many reads it took (an escalation
// and a backoff round included), and, for traced intents, each read and
// the covered intents' traces newest first; the next round starts afresh.
func TestEventStats(t *testing.T) {
	t.Parallel()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	c := NewCore(Params{Table: "t", Window: time.Minute, Levels: 2, BackoffMin: 10 * time.Millisecond, BackoffMax: time.Second,
		FirstReadDelay: 5 * time.Millisecond, Horizon: time.Hour}, 0, nil)
	e1, e2 := put(0, "k", ver(0, 0)), put(1, "k", ver(1, 0))
	e1.Intent.Trace, e2.Intent.Trace = "tp-1", "tp-2"
	c.Ingest(at(1), []Entry{e1, e2})
	if rd := c.Ready(); len(rd.Reads) != 0 || !rd.Wake.Equal(at(5)) {
		t.Fatalf("before the first read delay: %+v", rd)
	}
	c.Tick(at(5))
	answer := func(ms int, v uint64) {
		t.Helper()
		rd := c.Ready()
		if len(rd.Reads) != 1 {
			t.Fatalf("at %d ms: reads %+v", ms, rd.Reads)
		}
		r := ReadResult{Key: []byte("k"), Seq: rd.Reads[0].Seq, Level: rd.Reads[0].Level}
		if v > 0 {
			r.Row, r.Found = store.Row{Version: v, Value: []byte("x")}, true
		}
		c.ReadDone(at(ms), r)
	}
	answer(7, 0) // level 0 does not have it: escalate
	answer(8, 0) // level 1 neither: back off, read again
	c.Tick(at(20))
	answer(21, ver(1, 0))
	rd := c.Ready()
	if len(rd.Events) != 1 || rd.Events[0].Version != ver(1, 0) {
		t.Fatalf("events: %+v", rd.Events)
	}
	st, ok := stats(c, "k")
	want := EventStats{
		FirstCreated: e1.Intent.CreatedAt, FirstRead: at(5), Reads: 3,
		Spans: []ReadSpan{
			{Level: 0, Asked: at(5), Answered: at(7)},
			{Level: 1, Asked: at(7), Answered: at(8)},
			{Level: 0, Asked: at(20), Answered: at(21)},
		},
		Traces: []string{"tp-2", "tp-1"},
	}
	if !ok || !reflect.DeepEqual(st, want) {
		t.Fatalf("stats:\n got %+v\nwant %+v", st, want)
	}

	// The next round (an untraced intent) starts afresh, keeps no spans.
	c.Ingest(at(30), []Entry{put(2, "k", ver(2, 0))})
	c.Published(at(31), rd.Events)
	if _, ok := c.EventStats([]byte("k")); ok {
		t.Fatal("stats of a published event")
	}
	c.Tick(at(31))
	answer(33, ver(2, 0))
	rd = c.Ready()
	st, ok = stats(c, "k")
	if want := (EventStats{FirstCreated: hlcTime(ver(2, 0)), FirstRead: at(31), Reads: 1}); !ok || len(rd.Events) != 1 || !reflect.DeepEqual(st, want) {
		t.Fatalf("second round: events %+v stats %+v, want %+v", rd.Events, st, want)
	}
	if got := c.OldestCreated(); !got.Equal(hlcTime(ver(2, 0))) {
		t.Fatalf("oldest created %v", got)
	}
	c.Published(at(34), rd.Events)
	if got := c.OldestCreated(); !got.IsZero() {
		t.Fatalf("oldest created once all resolved: %v", got)
	}
}

// stats is Core.EventStats with its times in UTC, to compare.
func stats(c *Core, key string) (EventStats, bool) {
	st, ok := c.EventStats([]byte(key))
	st.FirstCreated, st.FirstRead = st.FirstCreated.UTC(), st.FirstRead.UTC()
	return st, ok
}

func hlcTime(v uint64) time.Time { return put(0, "", v).Intent.CreatedAt }

// TestEventStatsLongRounds: a traced round keeps its first maxReadSpans
// reads as spans (and counts them all); intents left pending after an
// event keep the key traced, so the next round has spans too.
func TestEventStatsLongRounds(t *testing.T) {
	t.Parallel()
	const stale = maxReadSpans + 3
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	c := NewCore(Params{Table: "t", Window: time.Hour, Levels: 1, BackoffMin: time.Millisecond, BackoffMax: time.Millisecond}, 0, nil)
	e1, e2 := put(0, "k", ver(0, 0)), put(1, "k", ver(1, 0))
	e1.Intent.Trace, e2.Intent.Trace = "tp-1", "tp-2"
	c.Ingest(at(0), []Entry{e1, e2})
	ms := 0
	answer := func(v uint64) {
		t.Helper()
		rd := c.Ready()
		if len(rd.Reads) != 1 {
			t.Fatalf("at %d ms: reads %+v", ms, rd.Reads)
		}
		r := ReadResult{Key: []byte("k"), Seq: rd.Reads[0].Seq}
		if v > 0 {
			r.Row, r.Found = store.Row{Version: v, Value: []byte("x")}, true
		}
		c.ReadDone(at(ms), r)
	}
	for range stale {
		answer(0) // not there yet: back off 1 ms, read again
		ms++
		c.Tick(at(ms))
	}
	answer(ver(0, 0)) // covers e1 only
	rd := c.Ready()
	if len(rd.Events) != 1 || rd.Events[0].Version != ver(0, 0) {
		t.Fatalf("events: %+v", rd.Events)
	}
	st, ok := c.EventStats([]byte("k"))
	if !ok || st.Reads != stale+1 || len(st.Spans) != maxReadSpans || !reflect.DeepEqual(st.Traces, []string{"tp-1"}) {
		t.Fatalf("first round: %d reads, %d spans, traces %v; want %d, %d, [tp-1]", st.Reads, len(st.Spans), st.Traces, stale+1, maxReadSpans)
	}
	for i, sp := range st.Spans {
		if !sp.Asked.Equal(at(i)) || !sp.Answered.Equal(at(i)) || sp.Err {
			t.Fatalf("span %d: %+v, want asked and answered at %v", i, sp, at(i))
		}
	}
	c.Published(at(ms), rd.Events)
	// e2, traced, is still pending: its round has spans too.
	ms++
	c.Tick(at(ms))
	answer(ver(1, 0))
	st, ok = c.EventStats([]byte("k"))
	if !ok || st.Reads != 1 || len(st.Spans) != 1 || !reflect.DeepEqual(st.Traces, []string{"tp-2"}) {
		t.Fatalf("second round: %+v; want 1 read, 1 span, traces [tp-2]", st)
	}
}
