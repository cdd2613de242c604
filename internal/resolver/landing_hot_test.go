package resolver

import (
	"errors"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/store"
)

// TestCoreLandedRowsHotKey: a key written faster than its store writes
// land (the next intent is always logged before the write a read is held
// on ends) gets an event from every handed-over row: the row publishes
// the intents it covers, as a store read at the strongest level would,
// and the key reads again for the rest right after the event. Before,
// a row that did not cover every intent only made the key read again,
// which was held on the next write in flight and answered with a row
// that again missed the intent logged meanwhile: no event for as long
// as the writes went on.
func TestCoreLandedRowsHotKey(t *testing.T) {
	t.Parallel()
	v1, v2, v3, v4 := ver(0, 0), ver(10, 0), ver(20, 0), ver(30, 0)
	for _, levels := range []int{1, 2} {
		p := Params{Window: time.Second, Levels: levels, BackoffMin: 5 * time.Millisecond, BackoffMax: 5 * time.Millisecond,
			LocalLanding: true}
		run(t, p, 0, nil, []step{
			{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
			{at: 10, ingest: []Entry{put(1, "a", v2)}}, // logged while the read is held on v1's write
			{at: 12, read: landedRes("a", row(v1, "x1")), events: []string{ev("a", v1, 1)}},
			{at: 20, ingest: []Entry{put(2, "a", v3)}},
			{at: 21, published: true, commit: 1, reads: []string{"a@0"}}, // no backoff: held on v3's write
			{at: 30, ingest: []Entry{put(3, "a", v4)}},
			{at: 32, read: landedRes("a", row(v3, "x3")), events: []string{ev("a", v3, 2)}},
			{at: 33, published: true, commit: 3, reads: []string{"a@0"}},
			{at: 42, read: landedRes("a", row(v4, "x4")), events: []string{ev("a", v4, 1)}},
			{at: 43, published: true, commit: 4},
		})
	}
}

// TestCoreLandedRowsNothingExpires: an intent a handed-over row does not
// cover is never found unmaterialized by it (its snapshot may predate the
// intent's store write, whenever the read was asked): the key reads the
// store for it, and only a store read settles it.
func TestCoreLandedRowsNothingExpires(t *testing.T) {
	t.Parallel()
	v1, v2 := ver(0, 0), ver(1, 0)
	p := Params{Window: 50 * time.Millisecond, Levels: 1, BackoffMin: 5 * time.Millisecond, BackoffMax: 5 * time.Millisecond,
		LocalLanding: true}
	run(t, p, 0, nil, []step{
		{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
		{at: 1, ingest: []Entry{put(1, "a", v2)}},
		// Held past v2's deadline (ingested at 1, window 50).
		{at: 200, read: landedRes("a", row(v1, "x1")), events: []string{ev("a", v1, 1)}},
		{at: 201, published: true, commit: 1, reads: []string{"a@0"}},
		{at: 202, read: res("a", row(v2, "x2")), events: []string{ev("a", v2, 1)}},
		{at: 203, published: true, commit: 2},
	})
}

// TestCoreLandedRowsHotKeyAbort: on such a key, an ABORT pending (a
// write of it failed) does not stop the events: a handed-over row
// publishes the intents and ABORTs it covers (an event at or above the
// aborted version covers it whether that write landed or not). Before,
// every handed-over row only made the key read again while the ABORT
// waited, held on the next write, answered with a row: no event, and no
// ABORT settled, for as long as the writes went on.
func TestCoreLandedRowsHotKeyAbort(t *testing.T) {
	t.Parallel()
	v1, v2, v3, v4 := ver(0, 0), ver(10, 0), ver(20, 0), ver(30, 0)
	p := Params{Window: time.Second, Levels: 2, BackoffMin: 5 * time.Millisecond, BackoffMax: 5 * time.Millisecond,
		LocalLanding: true}
	run(t, p, 0, nil, []step{
		{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
		{at: 10, ingest: []Entry{put(1, "a", v2), ent(2, "a", intent.Abort, v2)}}, // v2's write failed
		{at: 12, ingest: []Entry{put(3, "a", v3)}},
		{at: 13, read: landedRes("a", row(v1, "x1")), events: []string{ev("a", v1, 1)}},
		{at: 14, published: true, commit: 1, reads: []string{"a@0"}}, // held on v3's write
		{at: 20, ingest: []Entry{put(4, "a", v4)}},
		{at: 23, read: landedRes("a", row(v3, "x3")), events: []string{ev("a", v3, 2)}}, // v2, its ABORT, v3
		{at: 24, published: true, commit: 4, reads: []string{"a@0"}},
		{at: 33, read: landedRes("a", row(v4, "x4")), events: []string{ev("a", v4, 1)}},
		{at: 34, published: true, commit: 5},
	})
}

// TestCoreLandedRowNeverSettlesAbort: an ABORT a handed-over row does
// not cover is settled by a store read at the strongest level asked
// after the row came, even when the held read was asked after the ABORT
// arrived: the row's snapshot is the write's commit, which may predate
// the aborted write landing all the same.
func TestCoreLandedRowNeverSettlesAbort(t *testing.T) {
	t.Parallel()
	v1, v3 := ver(0, 0), ver(2, 0)
	p := Params{Window: time.Second, Levels: 2, BackoffMin: 5 * time.Millisecond, BackoffMax: 5 * time.Millisecond,
		LocalLanding: true}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"asked at the strongest level after the ABORT", []step{
			{ingest: []Entry{put(0, "a", v1), put(1, "a", v3), ent(2, "a", intent.Abort, v3)}, reads: []string{"a@0"}},
			{read: res("a", row(v1, "x1")), reads: []string{"a@1"}}, // an ABORT pending: escalate
		}},
		{"asked at a replica", []step{
			{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
			{ingest: []Entry{put(1, "a", v3), ent(2, "a", intent.Abort, v3)}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			steps := append(tc.steps,
				step{read: landedRes("a", row(v1, "x1")), events: []string{ev("a", v1, 1)}},
				step{published: true, commit: 1, reads: []string{"a@1"}}, // the store settles the ABORT
				step{read: res("a", row(v3, "x3")), events: []string{ev("a", v3, 1)}},
				step{published: true, commit: 3},
			)
			run(t, p, 0, nil, steps)
		})
	}
}

// TestCoreFollowUpReadVersion: a read that follows at once from the
// answer to the key's last read (the escalation to a stronger level after
// a replica read that did not cover its intents or failed; the store read
// in place of a handed-over row that published nothing) asks for the
// version that read asked for, not for an intent logged since: that read
// was released (the write it was held on returned), and its follow-up is
// for what the store shows now. Before, it asked for the newest intent,
// and the loop held it again until that write returned: on a hot key
// whose newest write was a slow one each time (a batch landing near the
// proxy's bound), its rounds went from one slow write to the next, and
// writes that had landed long before got no event for several writes'
// latency (landing-hot in the randomized simulation: over 200 ms, writes
// landing within 60). A read after a wait (backoff, a failed read's
// retry, an event) asks for the newest, as before.
func TestCoreFollowUpReadVersion(t *testing.T) {
	t.Parallel()
	v1, v2, v3, v4 := ver(0, 0), ver(5, 0), ver(8, 0), ver(9, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	answer := func(c *Core, now time.Time, rq ReadRequest, r ReadResult) ReadRequest {
		t.Helper()
		r.Key, r.Seq, r.Level = rq.Key, rq.Seq, rq.Level
		c.ReadDone(now, r)
		return only(t, c.Ready())
	}
	for _, tc := range []struct {
		name   string
		levels int
		// follow answers the first read (of v1, asked at 0) after v2 was
		// logged at 5, and returns the read that follows
		follow func(c *Core, first ReadRequest) ReadRequest
		level  store.Level
		want   uint64
	}{
		{"escalation after a replica read that misses an intent", 2, func(c *Core, first ReadRequest) ReadRequest {
			return answer(c, at(60), first, ReadResult{Found: true, Row: store.Row{Version: v1}})
		}, 1, v1},
		{"escalation after a failed replica read", 2, func(c *Core, first ReadRequest) ReadRequest {
			return answer(c, at(60), first, ReadResult{Err: errors.New("boom")})
		}, 1, v1},
		{"store read after a handed-over row that publishes nothing", 1, func(c *Core, first ReadRequest) ReadRequest {
			// reconcile logged an intent while the read was held: the bus
			// has an event at v3 already
			floor := put(2, "a", v4)
			floor.Intent.PublishedFloor = v3
			c.Ingest(at(9), []Entry{floor})
			return answer(c, at(60), first, ReadResult{Found: true, Landed: true, Row: store.Row{Version: v3}})
		}, 0, v1},
		{"retry of a failed read", 1, func(c *Core, first ReadRequest) ReadRequest {
			if rq := answer(c, at(60), first, ReadResult{Err: errors.New("boom")}); rq.Key != nil && !rq.Probe {
				t.Fatalf("read %+v before the retry", rq)
			}
			c.Tick(at(200))
			return only(t, c.Ready())
		}, 0, v1},
		{"read after a backoff", 1, func(c *Core, first ReadRequest) ReadRequest {
			if rq := answer(c, at(60), first, ReadResult{}); rq.Key != nil {
				t.Fatalf("read %+v before the backoff", rq)
			}
			c.Tick(at(200))
			return only(t, c.Ready())
		}, 0, v2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := NewCore(Params{Table: "t", Window: time.Second, Levels: tc.levels, LocalLanding: true,
				BackoffMin: 5 * time.Millisecond, BackoffMax: 5 * time.Millisecond}, 0, nil)
			c.Ingest(t0, []Entry{put(0, "a", v1)})
			first := only(t, c.Ready())
			c.Ingest(at(5), []Entry{put(1, "a", v2)}) // logged while the read is held on v1's write
			rq := tc.follow(c, first)
			if rq.Level != tc.level || rq.Version != tc.want {
				t.Fatalf("read %+v, want one at level %d for version %d", rq, tc.level, tc.want)
			}
		})
	}
}

// only returns the one read r asks for (a zero one if none).
func only(t *testing.T, r Ready) ReadRequest {
	t.Helper()
	switch len(r.Reads) {
	case 0:
		return ReadRequest{}
	case 1:
		return r.Reads[0]
	}
	t.Fatalf("reads %+v, want at most one", r.Reads)
	return ReadRequest{}
}
