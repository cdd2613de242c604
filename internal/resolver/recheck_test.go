package resolver

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
)

// TestCoreRecheck: an intent whose window ended without the store showing
// it is reported unmaterialized but holds the commit until its key was
// read once more, Recheck windows later; a write that committed
// meanwhile gets its event then.
func TestCoreRecheck(t *testing.T) {
	t.Parallel()
	v1, v2 := ver(0, 0), ver(150, 0)
	base := Params{Window: 100 * time.Millisecond, Levels: 1, BackoffMin: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond, Recheck: 1}
	twoLevels := base
	twoLevels.Levels = 2
	ev := func(k string, v uint64, n int) string { return fmt.Sprintf("%s=%d/%d", k, v, n) }
	unmat := []string{fmt.Sprintf("a:%d", v1)}
	// expire: a's window (0..100 ms) ends with the store showing nothing.
	expire := []step{
		{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
		{at: 99, read: res("a", nil)},
		{at: 109, tick: true, reads: []string{"a@0"}},
		{at: 110, read: res("a", nil), unmat: unmat}, // no commit: the recheck holds it
		{at: 150, tick: true},                        // no backoff reads meanwhile
	}
	tests := []struct {
		name  string
		p     Params
		steps []step
	}{
		{
			name: "the write commits after the window: the recheck publishes it",
			p:    base,
			steps: append(expire[:len(expire):len(expire)],
				step{at: 199, tick: true},
				step{at: 200, tick: true, reads: []string{"a@0"}},
				step{at: 201, read: res("a", row(v1, "late")), events: []string{ev("a", v1, 1)}},
				step{at: 202, published: true, commit: 1},
			),
		},
		{
			name: "nothing committed: the recheck resolves it, reported once",
			p:    base,
			steps: append(expire[:len(expire):len(expire)],
				step{at: 200, tick: true, reads: []string{"a@0"}},
				step{at: 201, read: res("a", nil), commit: 1},
			),
		},
		{
			name: "with replicas the recheck reads the primary",
			p:    twoLevels,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
				{at: 1, read: res("a", nil), reads: []string{"a@1"}},
				{at: 2, read: res("a", nil)},
				{at: 100, tick: true, reads: []string{"a@0"}},
				{at: 100, read: res("a", nil), reads: []string{"a@1"}},
				{at: 101, read: res("a", nil), unmat: unmat},
				{at: 200, tick: true, reads: []string{"a@1"}},
				{at: 201, read: res("a", row(v1, "late")), events: []string{ev("a", v1, 1)}},
				{at: 202, published: true, commit: 1},
			},
		},
		{
			name: "a new intent of the key is read at once, and its event covers the recheck",
			p:    base,
			steps: append(expire[:len(expire):len(expire)],
				step{at: 150, ingest: []Entry{put(1, "a", v2)}, reads: []string{"a@0"}},
				step{at: 151, read: res("a", row(v2, "new")), events: []string{ev("a", v2, 2)}},
				step{at: 152, published: true, commit: 2},
			),
		},
		{
			name: "an event older than the recheck's version leaves it waiting",
			p:    base,
			steps: append(expire[:len(expire):len(expire)],
				step{at: 150, ingest: []Entry{put(1, "b", v2)}, reads: []string{"b@0"}},
				step{at: 151, read: res("b", row(v2, "b")), events: []string{ev("b", v2, 1)}},
				step{at: 152, published: true}, // a's offset 0 still holds the commit
				step{at: 200, tick: true, reads: []string{"a@0"}},
				step{at: 201, read: res("a", nil), commit: 2},
			),
		},
		{
			name: "an ABORT while the recheck waits is settled at once, the recheck still comes",
			p:    base,
			steps: append(expire[:len(expire):len(expire)],
				step{at: 150, ingest: []Entry{ent(1, "a", intent.Abort, v2)}, reads: []string{"a@0"}},
				step{at: 151, read: res("a", nil)},
				step{at: 200, tick: true, reads: []string{"a@0"}},
				step{at: 201, read: res("a", row(v1, "late")), events: []string{ev("a", v1, 1)}},
				step{at: 202, published: true, commit: 2},
			),
		},
		{
			name: "a read asked after the recheck is due is the recheck",
			p:    base,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
				{at: 250, read: res("a", nil)}, // asked at 0: backs off
				{at: 260, tick: true, reads: []string{"a@0"}},
				{at: 261, read: res("a", nil), unmat: unmat, commit: 1},
			},
		},
		{
			name: "rechecks off: the intent resolves when its window ends",
			p:    Params{Window: 100 * time.Millisecond, Levels: 1, BackoffMin: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond},
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
				{at: 99, read: res("a", nil)},
				{at: 109, tick: true, reads: []string{"a@0"}},
				{at: 110, read: res("a", nil), unmat: unmat, commit: 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			run(t, tt.p, 0, nil, tt.steps)
		})
	}
}

// TestCoreRecheckReported: an event a recheck found is reported with the
// versions it carries (the writes that committed after the window), and
// the recheck waits for the window it was given, wide or not.
func TestCoreRecheckReported(t *testing.T) {
	t.Parallel()
	v1 := ver(0, 0)
	c := NewCore(Params{Table: "t", Window: 100 * time.Millisecond, Levels: 1, BackoffMin: 10 * time.Millisecond,
		BackoffMax: 40 * time.Millisecond, Recheck: 0.5}, 0, nil)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	c.Ingest(at(0), []Entry{put(0, "a", v1)})
	rd := c.Ready()
	c.ReadDone(at(100), ReadResult{Key: []byte("a"), Seq: rd.Reads[0].Seq})
	if rd = c.Ready(); len(rd.Unmaterialized) != 0 || rd.Wake != at(110) {
		t.Fatalf("read asked before the deadline: unmaterialized %v, wake %v", rd.Unmaterialized, rd.Wake)
	}
	c.Tick(at(110))
	rd = c.Ready()
	c.ReadDone(at(111), ReadResult{Key: []byte("a"), Seq: rd.Reads[0].Seq})
	if rd = c.Ready(); len(rd.Unmaterialized) != 1 || !rd.Wake.Equal(at(150)) {
		t.Fatalf("after the window: unmaterialized %v, wake at %v, want one, at 150 ms", rd.Unmaterialized, rd.Wake.Sub(t0))
	}
	c.Tick(at(150))
	rd = c.Ready()
	c.ReadDone(at(151), ReadResult{Key: []byte("a"), Seq: rd.Reads[0].Seq, Found: true, Row: *row(v1, "late")})
	rd = c.Ready()
	if len(rd.Events) != 1 || len(rd.Rechecked) != 0 {
		t.Fatalf("recheck found the write: events %v, rechecked %+v, want one event, nothing reported before it is out", rd.Events, rd.Rechecked)
	}
	c.Published(at(152), rd.Events)
	rd = c.Ready()
	want := []Unmaterialized{{Key: []byte("a"), Versions: []uint64{v1}}}
	if !reflect.DeepEqual(rd.Rechecked, want) || rd.Commit != 1 {
		t.Fatalf("its event is out: rechecked %+v, commit %d, want %+v, 1", rd.Rechecked, rd.Commit, want)
	}
}

// TestCoreRecheckLettered: an event a recheck found that the bus refuses
// for good goes to the dead-letter queue, and is not reported as a late
// commit published.
func TestCoreRecheckLettered(t *testing.T) {
	t.Parallel()
	v1 := ver(0, 0)
	c := NewCore(Params{Table: "t", Window: 100 * time.Millisecond, Levels: 1, BackoffMin: 10 * time.Millisecond,
		BackoffMax: 40 * time.Millisecond, Recheck: 1}, 0, nil)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	c.Ingest(at(0), []Entry{put(0, "a", v1)})
	rd := c.Ready()
	c.ReadDone(at(100), ReadResult{Key: []byte("a"), Seq: rd.Reads[0].Seq})
	c.Ready()
	c.Tick(at(110))
	rd = c.Ready()
	c.ReadDone(at(111), ReadResult{Key: []byte("a"), Seq: rd.Reads[0].Seq})
	c.Ready()
	c.Tick(at(200))
	rd = c.Ready()
	c.ReadDone(at(201), ReadResult{Key: []byte("a"), Seq: rd.Reads[0].Seq, Found: true, Row: *row(v1, "late")})
	rd = c.Ready()
	if len(rd.Events) != 1 {
		t.Fatalf("recheck: events %v, want one", rd.Events)
	}
	c.PublishFailed(at(202), []PublishFailure{{Event: rd.Events[0], Err: errors.New("record too large"), Permanent: true, Alone: true}})
	rd = c.Ready()
	if len(rd.Letters) != 1 || len(rd.Rechecked) != 0 {
		t.Fatalf("event refused: letters %v, rechecked %+v, want one letter, nothing rechecked", rd.Letters, rd.Rechecked)
	}
	c.Lettered(at(203), rd.Letters)
	if rd = c.Ready(); len(rd.Rechecked) != 0 || rd.Commit != 1 {
		t.Fatalf("lettered: rechecked %+v, commit %d, want none, 1", rd.Rechecked, rd.Commit)
	}
}

// TestCoreRecheckPrompt: a key that waits for a recheck reads what comes
// meanwhile as an idle key does, whatever it is doing when it comes: a new
// intent at once (its backoff starting over), an ABORT at once at the
// strongest level. Neither waits for the recheck.
func TestCoreRecheckPrompt(t *testing.T) {
	t.Parallel()
	v1, v2, v3, v4 := ver(0, 0), ver(0, 1), ver(120, 0), ver(130, 0)
	base := Params{Window: 100 * time.Millisecond, Levels: 1, BackoffMin: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond, Recheck: 1}
	ev := func(k string, v uint64, n int) string { return fmt.Sprintf("%s=%d/%d", k, v, n) }
	// half: a's read asked at 109 finds v1, not v2: v1's event goes out,
	// v2 waits for its recheck at 200.
	half := []step{
		{ingest: []Entry{put(0, "a", v1), put(1, "a", v2)}, reads: []string{"a@0"}},
		{at: 99, read: res("a", nil)},
		{at: 109, tick: true, reads: []string{"a@0"}},
		{at: 110, read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}, unmat: []string{fmt.Sprintf("a:%d", v2)}},
	}
	// expired: a's only intent v1 waits for its recheck at 200, after
	// enough reads in its window that its backoff reached BackoffMax.
	expired := []step{
		{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
		{at: 1, read: res("a", nil)},
		{at: 11, tick: true, reads: []string{"a@0"}},
		{at: 12, read: res("a", nil)},
		{at: 32, tick: true, reads: []string{"a@0"}},
		{at: 33, read: res("a", nil)},
		{at: 73, tick: true, reads: []string{"a@0"}},
		{at: 74, read: res("a", nil)},
		{at: 114, tick: true, reads: []string{"a@0"}},
		{at: 115, read: res("a", nil), unmat: []string{fmt.Sprintf("a:%d", v1)}},
	}
	then := func(a []step, b ...step) []step { return append(a[:len(a):len(a)], b...) }
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "a new intent that comes while the event is out is read once it is",
			steps: then(half,
				step{at: 120, ingest: []Entry{put(2, "a", v3)}},
				step{at: 121, published: true, commit: 1, reads: []string{"a@0"}},
				step{at: 122, read: res("a", row(v3, "y")), events: []string{ev("a", v3, 2)}},
				step{at: 123, published: true, commit: 3},
			),
		},
		{
			name: "a new intent that comes while the event is retried is read once it is out",
			steps: then(half,
				step{at: 120, ingest: []Entry{put(2, "a", v3)}},
				step{at: 121, failed: []string{"a"}},
				step{at: 140, tick: true, events: []string{ev("a", v1, 1)}},
				step{at: 141, published: true, commit: 1, reads: []string{"a@0"}},
			),
		},
		{
			name: "an ABORT that comes while the event is out is settled once it is",
			steps: then(half,
				step{at: 120, ingest: []Entry{ent(2, "a", intent.Abort, v3)}},
				step{at: 121, published: true, commit: 1, reads: []string{"a@0"}},
				step{at: 122, read: res("a", nil)},
				step{at: 200, tick: true, reads: []string{"a@0"}},
				step{at: 201, read: res("a", nil), commit: 3},
			),
		},
		{
			name: "an ABORT that comes while a read is out is settled by the next read",
			steps: then(expired,
				step{at: 150, ingest: []Entry{ent(1, "a", intent.Abort, v3)}, reads: []string{"a@0"}},
				step{at: 151, ingest: []Entry{ent(2, "a", intent.Abort, v4)}},
				step{at: 152, read: res("a", nil), reads: []string{"a@0"}}, // asked before the second ABORT
				step{at: 153, read: res("a", nil)},
				step{at: 200, tick: true, reads: []string{"a@0"}},
				step{at: 201, read: res("a", nil), commit: 3},
			),
		},
		{
			name: "a new intent's backoff starts over",
			steps: then(expired,
				step{at: 150, ingest: []Entry{put(1, "a", v3)}, reads: []string{"a@0"}},
				step{at: 151, read: res("a", nil)},
				step{at: 161, tick: true, reads: []string{"a@0"}}, // BackoffMin, not BackoffMax
				step{at: 162, read: res("a", row(v3, "y")), events: []string{ev("a", v3, 2)}},
				step{at: 163, published: true, commit: 2},
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			run(t, base, 0, nil, tt.steps)
		})
	}
}

// TestCoreRecheckStats: the reads of an intent that expired into a recheck
// are not the next event's. A new intent read meanwhile starts a round of
// its own (its first read, its reads); the recheck read that finds a late
// write is no first read of it (no first-read wait).
func TestCoreRecheckStats(t *testing.T) {
	t.Parallel()
	v1, v2, v3 := ver(0, 0), ver(0, 1), ver(120, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	p := Params{Table: "t", Window: 100 * time.Millisecond, Levels: 1, BackoffMin: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond, Recheck: 1}
	ev := func(k string, v uint64, n int) string { return fmt.Sprintf("%s=%d/%d", k, v, n) }
	unmat := func(v uint64) []string { return []string{fmt.Sprintf("a:%d", v)} }
	tests := []struct {
		name  string
		steps []step
		want  EventStats
	}{
		{
			name: "a new intent read while the key waits for a recheck",
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
				{at: 1, read: res("a", nil)},
				{at: 11, tick: true, reads: []string{"a@0"}},
				{at: 12, read: res("a", nil)},
				{at: 32, tick: true, reads: []string{"a@0"}},
				{at: 33, read: res("a", nil)},
				{at: 73, tick: true, reads: []string{"a@0"}},
				{at: 74, read: res("a", nil)},
				{at: 114, tick: true, reads: []string{"a@0"}},
				{at: 115, read: res("a", nil), unmat: unmat(v1)},
				{at: 150, ingest: []Entry{put(1, "a", v3)}, reads: []string{"a@0"}},
				{at: 151, read: res("a", row(v3, "y")), events: []string{ev("a", v3, 2)}},
			},
			want: EventStats{FirstCreated: hlcTime(v3), FirstRead: at(150), Reads: 1},
		},
		{
			name: "the recheck read finds the late write after another event",
			steps: []step{
				{ingest: []Entry{put(0, "a", v1), put(1, "a", v2)}, reads: []string{"a@0"}},
				{at: 99, read: res("a", nil)},
				{at: 109, tick: true, reads: []string{"a@0"}},
				{at: 110, read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}, unmat: unmat(v2)},
				{at: 111, published: true, commit: 1},
				{at: 200, tick: true, reads: []string{"a@0"}},
				{at: 201, read: res("a", row(v2, "late")), events: []string{ev("a", v2, 1)}},
			},
			want: EventStats{FirstRead: at(200), Reads: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := run(t, p, 0, nil, tt.steps)
			if st, ok := stats(c, "a"); !ok || !reflect.DeepEqual(st, tt.want) {
				t.Fatalf("stats:\n got %+v\nwant %+v", st, tt.want)
			}
		})
	}
}

// TestRechecksOnly: a key whose every intent needing an event waits for
// its recheck is due at the earliest of their deadlines, in whatever
// order they are pending; an intent that needs an event and does not wait
// for a recheck (or none needing one) means the key is not rechecks only.
func TestRechecksOnly(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, tc := range []struct {
		name    string
		pending []pending
		want    time.Time
		ok      bool
	}{
		{"none", nil, time.Time{}, false},
		{"one", []pending{{needs: true, recheck: true, deadline: at(5)}}, at(5), true},
		{"earliest last", []pending{{needs: true, recheck: true, deadline: at(9)}, {needs: true, recheck: true, deadline: at(3)}}, at(3), true},
		{"earliest first", []pending{{needs: true, recheck: true, deadline: at(3)}, {needs: true, recheck: true, deadline: at(9)}}, at(3), true},
		{"earliest between", []pending{{needs: true, recheck: true, deadline: at(7)}, {needs: true, recheck: true, deadline: at(2)},
			{needs: true, recheck: true, deadline: at(8)}}, at(2), true},
		{"one not waiting for a recheck", []pending{{needs: true, recheck: true, deadline: at(3)}, {needs: true, deadline: at(1)}}, time.Time{}, false},
		{"not needing an event is left out", []pending{{deadline: at(1)}, {needs: true, recheck: true, deadline: at(4)}}, at(4), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks := &keyState{pending: tc.pending}
			got, ok := ks.rechecksOnly()
			if !got.Equal(tc.want) || ok != tc.ok {
				t.Fatalf("rechecksOnly = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
