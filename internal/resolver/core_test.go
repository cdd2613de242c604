package resolver

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/store"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// ver returns a version stamped ms milliseconds after t0 (logical n).
func ver(ms int, n uint64) uint64 { return hlc.At(t0.Add(time.Duration(ms)*time.Millisecond)) + n<<10 }

func ent(off int64, key string, op intent.Op, v uint64) Entry {
	return Entry{Offset: off, Intent: intent.Intent{
		Table: "t", Key: []byte(key), Op: op, Version: v, CreatedAt: hlc.Time(v),
	}}
}

func put(off int64, key string, v uint64) Entry { return ent(off, key, intent.Upsert, v) }

// step is one input to the core and what Ready must then say.
type step struct {
	at int // ms after t0

	ingest    []Entry
	read      *ReadResult // Seq 0 means "the key's last read"
	published bool        // acknowledge every event returned so far (but those in failed)
	failed    []string    // keys whose unacknowledged events fail (reported after the acknowledged ones)
	hold      bool        // keep the events neither acknowledged nor failed for a later step (else dropped)
	fail      pubFail     // how they fail
	lettered  bool        // acknowledge every letter returned so far
	unwritten bool        // every letter returned so far fails to be written
	tick      bool

	reads    []string // "key@level"
	events   []string // "key=version" or "key=version(D)" for deletes, "/n" covered count
	anyOrder bool     // events and letters may come in any order (keys whose retries are due together)
	commit   int64    // expected Commit; 0 means "-1" unless commitSet
	commit0  bool     // the expected commit is really 0
	unmat    []string // "key:v1,v2"
	letters  []string // "key/kind:v1,v2"
	parked   *int     // expected Parked() (nil: not checked)
	retries  *[2]int  // expected ReadRetries and PublishRetries (nil: not checked)
	probe    string   // the key the step's probe reads ("": not checked)
}

// pubFail says how the failed events of a step fail.
type pubFail struct {
	permanent, together, uncertain bool
}

func n(i int) *int { return &i }

func row(v uint64, value string) *store.Row { return &store.Row{Version: v, Value: []byte(value)} }

func res(key string, r *store.Row) *ReadResult {
	rr := &ReadResult{Key: []byte(key)}
	if r != nil {
		rr.Row, rr.Found = *r, true
	}
	return rr
}

func errRes(key string) *ReadResult {
	return &ReadResult{Key: []byte(key), Err: fmt.Errorf("boom")}
}

// unavailableRes answers a read of key with an error that says the store
// cannot serve the level now (as a Cassandra read at ALL with a replica
// down does, wrapped by the store as the driver's error is).
func unavailableRes(key string) *ReadResult {
	return &ReadResult{Key: []byte(key), Err: fmt.Errorf("cassandra: get %q at all: %w: Cannot achieve consistency level ALL", key, store.ErrUnavailable)}
}

// probeRes answers the last probe: the store served it or not.
func probeRes(served bool) *ReadResult {
	r := &ReadResult{Key: []byte("probe"), Probe: true}
	if !served {
		r.Err = fmt.Errorf("down")
	}
	return r
}

type harness struct {
	t       *testing.T
	c       *Core
	lastSeq map[string]uint64
	unacked []intent.Event
	unwrote []Letter
}

func run(t *testing.T, p Params, start int64, last map[string]uint64, steps []step) *Core {
	t.Helper()
	if p.Table == "" {
		p.Table = "t"
	}
	h := &harness{t: t, c: NewCore(p, start, last), lastSeq: map[string]uint64{}}
	for i, s := range steps {
		now := t0.Add(time.Duration(s.at) * time.Millisecond)
		if s.ingest != nil {
			h.c.Ingest(now, s.ingest)
		}
		if s.read != nil {
			r := *s.read
			if r.Seq == 0 {
				r.Seq = h.lastSeq[string(r.Key)]
			}
			h.c.ReadDone(now, r)
		}
		if s.published || s.failed != nil {
			var ok, kept []intent.Event
			var fails []PublishFailure
			for _, e := range h.unacked {
				if slices.Contains(s.failed, string(e.Key)) {
					fails = append(fails, PublishFailure{Event: e, Err: errors.New("bus says no"), Permanent: s.fail.permanent,
						Alone: !s.fail.together, Uncertain: s.fail.uncertain})
				} else if s.published {
					ok = append(ok, e)
				} else if s.hold {
					kept = append(kept, e)
				}
			}
			h.unacked = kept
			h.c.Published(now, ok)
			h.c.PublishFailed(now, fails)
		}
		if s.lettered {
			h.c.Lettered(now, h.unwrote)
			h.unwrote = nil
		}
		if s.unwritten {
			h.c.LetterFailed(now, h.unwrote, errors.New("dlq says no"))
			h.unwrote = nil
		}
		if s.tick {
			h.c.Tick(now)
		}
		h.check(i, h.c.Ready(), s)
	}
	return h.c
}

func (h *harness) check(i int, r Ready, s step) {
	h.t.Helper()
	var reads, events, unmat, letters []string
	for _, rq := range r.Reads {
		k := string(rq.Key)
		if rq.Probe {
			k = "probe"
		}
		reads = append(reads, fmt.Sprintf("%s@%d", k, rq.Level))
		h.lastSeq[k] = rq.Seq
	}
	for _, e := range r.Events {
		d := ""
		if e.Op == intent.Delete {
			d = "(D)"
		}
		events = append(events, fmt.Sprintf("%s=%d%s/%d", e.Key, e.Version, d, e.CoveredIntents))
		h.unacked = append(h.unacked, e)
	}
	for _, u := range r.Unmaterialized {
		var vs []string
		for _, v := range u.Versions {
			vs = append(vs, fmt.Sprint(v))
		}
		unmat = append(unmat, fmt.Sprintf("%s:%s", u.Key, strings.Join(vs, ",")))
	}
	for _, u := range r.Rechecked {
		if len(u.Versions) == 0 {
			h.t.Fatalf("step %d: key %s reported rechecked without versions", i, u.Key)
		}
	}
	for _, l := range r.Letters {
		var vs []string
		for i, in := range l.Intents {
			if string(in.Key) != string(l.Key) || in.Table != "t" || l.Offsets[i] < 0 {
				h.t.Fatalf("step %d: letter %+v: intent %d is not of its key and table", i, l, i)
			}
			v := fmt.Sprint(in.Version)
			if in.Op == intent.Abort {
				v += "(A)"
			}
			vs = append(vs, v)
		}
		letters = append(letters, fmt.Sprintf("%s/%s:%s", l.Key, l.Kind, strings.Join(vs, ",")))
		h.unwrote = append(h.unwrote, l)
	}
	if s.anyOrder {
		slices.Sort(events)
		slices.Sort(letters)
	}
	want := s.commit
	if want == 0 && !s.commit0 {
		want = -1
	}
	if !reflect.DeepEqual(reads, s.reads) || !reflect.DeepEqual(events, s.events) ||
		r.Commit != want || !reflect.DeepEqual(unmat, s.unmat) || !reflect.DeepEqual(letters, s.letters) {
		h.t.Fatalf("step %d: got reads=%v events=%v commit=%d unmat=%v letters=%v\nwant reads=%v events=%v commit=%d unmat=%v letters=%v",
			i, reads, events, r.Commit, unmat, letters, s.reads, s.events, want, s.unmat, s.letters)
	}
	if s.parked != nil && h.c.Parked() != *s.parked {
		h.t.Fatalf("step %d: %d keys parked, want %d", i, h.c.Parked(), *s.parked)
	}
	if got := [2]int{r.ReadRetries, r.PublishRetries}; s.retries != nil && got != *s.retries {
		h.t.Fatalf("step %d: read and publish retries %v, want %v", i, got, *s.retries)
	}
	if s.probe != "" {
		var probed []string
		for _, rq := range r.Reads {
			if rq.Probe {
				probed = append(probed, string(rq.Key))
			}
		}
		if len(probed) != 1 || probed[0] != s.probe {
			h.t.Fatalf("step %d: probes read %q, want %q", i, probed, s.probe)
		}
	}
}

func TestCore(t *testing.T) {
	t.Parallel()
	v1, v2, v3 := ver(0, 0), ver(1, 0), ver(2, 0)
	base := Params{Window: 100 * time.Millisecond, Levels: 1, BackoffMin: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond}
	twoLevels := base
	twoLevels.Levels = 2
	ev := func(k string, v uint64, n int) string { return fmt.Sprintf("%s=%d/%d", k, v, n) }

	tests := []struct {
		name  string
		p     Params
		start int64
		last  map[string]uint64
		steps []step
	}{
		{
			name: "one intent, state covers it, publish then commit",
			p:    base,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
				{read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
				{published: true, commit: 1},
			},
		},
		{
			name: "coalescing: three intents of one key in one batch make one read and one event",
			p:    base,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1), put(1, "a", v2), put(2, "a", v3)}, reads: []string{"a@0"}},
				{read: res("a", row(v3, "z")), events: []string{ev("a", v3, 3)}},
				{published: true, commit: 3},
			},
		},
		{
			name: "first read waits for the store write, then coalesces what arrived meanwhile",
			p:    withDelay(base, 2*time.Millisecond),
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}},                                        // created at 0ms: read at 2ms
				{at: 1, ingest: []Entry{put(1, "a", v2)}},                                 // joins the wait
				{at: 1, ingest: []Entry{put(2, "b", ver(-5, 0))}, reads: []string{"b@0"}}, // old intent: read now
				{at: 2, tick: true, reads: []string{"a@0"}},
				{at: 2, read: res("a", row(v2, "y")), events: []string{ev("a", v2, 2)}},
				{at: 2, published: true, commit: 2}, // b is still being read
			},
		},
		{
			name: "intents of the proxy in this process are read at once: the loop holds the read until its write returned",
			p:    local(withDelay(base, 2*time.Millisecond), 7),
			steps: []step{
				{ingest: []Entry{from(put(0, "a", v1), 7)}, reads: []string{"a@0"}},
				{ingest: []Entry{from(put(1, "b", v1), 3)}}, // another proxy's: read at 2ms
				{at: 1, read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
				{at: 2, tick: true, reads: []string{"b@0"}},
				{at: 2, read: res("b", row(v1, "y")), events: []string{ev("b", v1, 1)}},
				{at: 3, published: true, commit: 2},
			},
		},
		{
			name: "without a serving proxy here, an intent of the same proxy id waits the delay",
			p:    withDelay(base, 2*time.Millisecond), // LocalProxy 0, LocalLanding unset
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}}, // proxy 0
				{at: 2, tick: true, reads: []string{"a@0"}},
				{at: 2, read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
				{at: 3, published: true, commit: 1},
			},
		},
		{
			name: "coalescing: intents arriving during a read ride on it",
			p:    base,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
				{ingest: []Entry{put(1, "a", v2)}},
				{read: res("a", row(v2, "y")), events: []string{ev("a", v2, 2)}},
				{published: true, commit: 2},
			},
		},
		{
			name: "partial coverage publishes what is covered and keeps waiting for the rest",
			p:    base,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1), put(1, "a", v3)}, reads: []string{"a@0"}},
				{read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
				{published: true, commit: 1}, // retry is due 10ms later
				{at: 10, tick: true, reads: []string{"a@0"}},
				{at: 11, read: res("a", row(v3, "z")), events: []string{ev("a", v3, 1)}},
				{at: 12, published: true, commit: 2},
			},
		},
		{
			name: "stale read backs off exponentially then publishes",
			p:    base,
			steps: []step{
				{ingest: []Entry{put(0, "a", v2)}, reads: []string{"a@0"}},
				{read: res("a", nil)},
				{at: 9, tick: true},
				{at: 10, tick: true, reads: []string{"a@0"}},
				{at: 11, read: res("a", row(v1, "old"))}, // next backoff: 20ms
				{at: 30, tick: true},
				{at: 31, tick: true, reads: []string{"a@0"}},
				{at: 32, read: res("a", row(v2, "y")), events: []string{ev("a", v2, 1)}},
				{at: 33, published: true, commit: 1},
			},
		},
		{
			name: "window expiry: unmaterialized, no event, commit moves on",
			p:    base,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1), put(1, "b", v1)}, reads: []string{"a@0", "b@0"}},
				{read: res("b", row(v1, "b")), events: []string{ev("b", v1, 1)}},
				{published: true},
				{at: 99, read: res("a", nil)},
				{at: 109, tick: true, reads: []string{"a@0"}},
				{at: 110, read: res("a", nil), unmat: []string{fmt.Sprintf("a:%d", v1)}, commit: 2},
			},
		},
		{
			name: "a slow key does not hold back the commit beyond itself",
			p:    base,
			steps: []step{
				{ingest: []Entry{put(0, "b", v1), put(1, "slow", v1), put(2, "c", v1)}, reads: []string{"b@0", "slow@0", "c@0"}},
				{read: res("b", row(v1, "b")), events: []string{ev("b", v1, 1)}},
				{read: res("c", row(v1, "c")), events: []string{ev("c", v1, 1)}},
				{published: true, commit: 1},
				{read: res("slow", row(v1, "s")), events: []string{ev("slow", v1, 1)}},
				{published: true, commit: 3},
			},
		},
		{
			name: "abort resolves at once with one read at the strongest level",
			p:    twoLevels,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
				{read: res("a", nil), reads: []string{"a@1"}},
				{read: res("a", nil)}, // backing off
				{ingest: []Entry{ent(1, "a", intent.Abort, v1)}, reads: []string{"a@1"}},
				{read: res("a", nil), commit: 2},
			},
		},
		{
			name: "abort of a write that landed anyway publishes it",
			p:    base,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
				{ingest: []Entry{ent(1, "a", intent.Abort, v1)}},
				{read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
				{published: true, commit: 2},
			},
		},
		{
			name: "abort during a read that predates the write: one more read settles it",
			p:    base,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}}, // runs before the store write
				{ingest: []Entry{ent(1, "a", intent.Abort, v1)}},           // the write landed, the proxy saw an error
				{read: res("a", nil), reads: []string{"a@0"}},              // the old read cannot settle the ABORT
				{read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
				{published: true, commit: 2},
			},
		},
		{
			name: "abort of an already published key needs no read",
			p:    base,
			last: map[string]uint64{"a": v2},
			steps: []step{
				{ingest: []Entry{ent(0, "a", intent.Abort, v1)}, commit: 1},
			},
		},
		{
			name: "progressive consistency: stale replica escalates to the primary",
			p:    twoLevels,
			steps: []step{
				{ingest: []Entry{put(0, "a", v2)}, reads: []string{"a@0"}},
				{read: res("a", row(v1, "old")), reads: []string{"a@1"}},
				{read: res("a", row(v2, "new")), events: []string{ev("a", v2, 1)}},
				{published: true, commit: 1},
			},
		},
		{
			name: "progressive consistency: a current replica needs no escalation",
			p:    twoLevels,
			steps: []step{
				{ingest: []Entry{put(0, "a", v2)}, reads: []string{"a@0"}},
				{read: res("a", row(v2, "new")), events: []string{ev("a", v2, 1)}},
				{published: true, commit: 1},
			},
		},
		{
			name: "read errors escalate, back off and never expire the window",
			p:    twoLevels,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
				{read: errRes("a"), reads: []string{"a@1"}},
				{at: 500, read: errRes("a"), reads: []string{"probe@1"}},
				{at: 510, tick: true, reads: []string{"a@0"}},
				{at: 511, read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
				{at: 512, published: true, commit: 1},
			},
		},
		{
			name: "delete publishes a delete event from the tombstone",
			p:    base,
			steps: []step{
				{ingest: []Entry{ent(0, "a", intent.Delete, v1)}, reads: []string{"a@0"}},
				{read: res("a", &store.Row{Version: v1, Deleted: true}), events: []string{fmt.Sprintf("a=%d(D)/1", v1)}},
				{published: true, commit: 1},
			},
		},
		{
			name:  "duplicates after restart: versions already on the bus are not published again",
			p:     base,
			start: 5,
			last:  map[string]uint64{"a": v2},
			steps: []step{
				// re-read after restart: both intents are covered by what is on the bus
				{ingest: []Entry{put(5, "a", v1), put(6, "a", v2)}, commit: 7},
				// a newer intent is read and published as usual
				{ingest: []Entry{put(7, "a", v3)}, reads: []string{"a@0"}},
				{read: res("a", row(v3, "z")), events: []string{ev("a", v3, 1)}},
				{published: true, commit: 8},
			},
		},
		{
			name: "a read showing the last published version publishes nothing",
			p:    base,
			last: map[string]uint64{"a": v2},
			steps: []step{
				{ingest: []Entry{put(0, "a", v3)}, reads: []string{"a@0"}},
				{read: res("a", row(v2, "y"))},
				{at: 10, tick: true, reads: []string{"a@0"}},
				{at: 11, read: res("a", row(v3, "z")), events: []string{ev("a", v3, 1)}},
				{at: 12, published: true, commit: 1},
			},
		},
		{
			name: "undecodable records resolve at once",
			p:    base,
			steps: []step{
				{ingest: []Entry{{Offset: 0, Invalid: true}, put(1, "a", v1)}, reads: []string{"a@0"}, commit: 1},
				{read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
				{published: true, commit: 2},
			},
		},
		{
			name: "an intent of the version on its way joins its event: no read",
			p:    base,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
				{read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
				{ingest: []Entry{put(1, "a", v1), ent(2, "a", intent.Abort, v1)}},
				{published: true, commit: 3},
			},
		},
		{
			name: "abort of exactly the last published version needs no read",
			p:    base,
			last: map[string]uint64{"a": v1},
			steps: []step{
				{ingest: []Entry{ent(0, "a", intent.Abort, v1)}, commit: 1},
			},
		},
		{
			name: "a timer of an earlier wait does not fire a read",
			p:    withDelay(base, 5*time.Millisecond),
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}},                                              // first read at 5ms
				{at: 1, ingest: []Entry{ent(1, "a", intent.Abort, v1)}, reads: []string{"a@0"}}, // settles at once
				{at: 1, ingest: []Entry{put(2, "a", v2)}},
				{at: 2, read: res("a", nil)}, // v2 not there yet: back off until 12ms
				{at: 5, tick: true},          // the first wait's timer is stale
				{at: 12, tick: true, reads: []string{"a@0"}},
				{at: 13, read: res("a", row(v2, "y")), events: []string{ev("a", v2, 2)}},
				{at: 14, published: true, commit: 3},
			},
		},
		{
			name: "a timer of a resolved key's earlier state does not fire for its next intent",
			p:    withDelay(base, 5*time.Millisecond),
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}}, // first read at 5ms
				{at: 1, ingest: []Entry{ent(1, "a", intent.Abort, v1)}, reads: []string{"a@0"}},
				{at: 2, read: res("a", nil), commit: 2},          // resolved and forgotten
				{at: 3, ingest: []Entry{put(2, "a", ver(3, 0))}}, // first read at 8ms
				{at: 5, tick: true},
				{at: 8, tick: true, reads: []string{"a@0"}},
				{at: 9, read: res("a", row(ver(3, 0), "y")), events: []string{ev("a", ver(3, 0), 1)}},
				{at: 10, published: true, commit: 3},
			},
		},
		{
			name:  "offsets without records before the first intent: the commit moves when it resolves",
			p:     base,
			start: 5,
			steps: []step{
				{ingest: []Entry{put(7, "a", v1)}, reads: []string{"a@0"}},
				{read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
				{published: true, commit: 8},
			},
		},
		{
			name: "re-delivered offsets are ignored",
			p:    base,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
				{ingest: []Entry{put(0, "a", v1)}},
				{read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
				{published: true, commit: 1},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run(t, tc.p, tc.start, tc.last, tc.steps)
		})
	}
}

func withDelay(p Params, d time.Duration) Params {
	p.FirstReadDelay = d
	return p
}

// local makes proxy the one whose store writes the loop knows in flight.
func local(p Params, proxy uint32) Params {
	p.LocalProxy, p.LocalLanding = proxy, true
	return p
}

// from makes e an intent of proxy.
func from(e Entry, proxy uint32) Entry {
	e.Intent.ProxyID = proxy
	return e
}

// TestCoreWindowStartsWhenTheIntentIsSeen: an intent that reaches the log
// long after it was stamped (the append waited out a log outage) still gets
// its whole window, because the proxy writes the store only afterwards.
func TestCoreWindowStartsWhenTheIntentIsSeen(t *testing.T) {
	t.Parallel()
	old := ver(0, 0) // stamped at t0
	late := 7000     // ms: the append returned 7 s later
	run(t, Params{Window: 100 * time.Millisecond, Levels: 1, BackoffMin: 10 * time.Millisecond, BackoffMax: 10 * time.Millisecond}, 0, nil, []step{
		{at: late, ingest: []Entry{put(0, "a", old)}, reads: []string{"a@0"}},
		{at: late + 1, read: res("a", nil)}, // the proxy has not written the store yet
		{at: late + 11, tick: true, reads: []string{"a@0"}},
		{at: late + 12, read: res("a", row(old, "x")), events: []string{fmt.Sprintf("a=%d/1", old)}},
		{at: late + 13, published: true, commit: 1},
	})
}

func TestCoreStaleResultsIgnored(t *testing.T) {
	t.Parallel()
	c := NewCore(Params{Table: "t", Window: time.Second, Levels: 1}, 0, nil)
	c.Ingest(t0, []Entry{put(0, "a", ver(0, 0))})
	r := c.Ready()
	c.ReadDone(t0, ReadResult{Key: []byte("a"), Seq: r.Reads[0].Seq + 99, Found: true, Row: store.Row{Version: ver(0, 0)}})
	if got := c.Ready(); len(got.Events) != 0 {
		t.Fatalf("a result for another read published %v", got.Events)
	}
	c.ReadDone(t0, ReadResult{Key: []byte("zz"), Seq: r.Reads[0].Seq})
	if got := c.Ready(); len(got.Events)+len(got.Reads) != 0 {
		t.Fatalf("a result for an unknown key did something: %+v", got)
	}
}

func TestCoreEvictsIdleKeysPastHorizon(t *testing.T) {
	t.Parallel()
	c := NewCore(Params{Table: "t", Window: time.Second, Levels: 1, Horizon: time.Second}, 0, nil)
	v := ver(0, 0)
	c.Ingest(t0, []Entry{put(0, "a", v)})
	r := c.Ready()
	c.ReadDone(t0, ReadResult{Key: []byte("a"), Seq: r.Reads[0].Seq, Found: true, Row: store.Row{Version: v}})
	c.Published(t0, c.Ready().Events)
	if c.LastPublished([]byte("a")) != v {
		t.Fatal("last published version not remembered")
	}
	// An intent of another key 500ms later keeps it; 2s later evicts it.
	c.Ingest(t0.Add(500*time.Millisecond), []Entry{put(1, "b", ver(500, 0))})
	if c.LastPublished([]byte("a")) != v {
		t.Fatal("evicted inside the horizon")
	}
	c.Ingest(t0.Add(2*time.Second), []Entry{put(2, "c", ver(2000, 0))})
	if c.LastPublished([]byte("a")) != 0 || len(c.pubLog) != 0 {
		t.Fatalf("not evicted past the horizon: last published %d, %d records of publishes", c.LastPublished([]byte("a")), len(c.pubLog))
	}

	// Without a horizon, nothing is forgotten.
	c = NewCore(Params{Table: "t", Window: time.Second, Levels: 1}, 0, map[string]uint64{"a": v})
	c.Ingest(t0, []Entry{put(0, "b", ver(3_600_000, 0))})
	if c.LastPublished([]byte("a")) != v {
		t.Fatal("evicted without a horizon")
	}
}

// TestCoreExpiresOnlyOnReadsIssuedAfterTheDeadline: a strongest-level read
// issued before an intent's deadline may predate its store write, which the
// proxy bounds to commit before the window ends; its answer, however late,
// must not expire the intent. The next read, issued after the deadline,
// decides: it finds the write (an event), or proves it unmaterialized.
func TestCoreExpiresOnlyOnReadsIssuedAfterTheDeadline(t *testing.T) {
	t.Parallel()
	v1 := ver(0, 0)
	p := Params{Window: 100 * time.Millisecond, Levels: 1, BackoffMin: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond}
	// reads at 0, 11, 32, 73 (backoff 10, 20, 40 ms); the read issued at
	// 73 runs before the write lands and answers at 150, after the
	// deadline at 100.
	slow := []step{
		{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
		{at: 1, read: res("a", nil)},
		{at: 11, tick: true, reads: []string{"a@0"}},
		{at: 12, read: res("a", nil)},
		{at: 32, tick: true, reads: []string{"a@0"}},
		{at: 33, read: res("a", nil)},
		{at: 73, tick: true, reads: []string{"a@0"}},
		{at: 150, read: res("a", nil)}, // issued at 73: proves nothing about the write
		{at: 189, tick: true},
	}
	t.Run("the next read finds the write", func(t *testing.T) {
		t.Parallel()
		run(t, p, 0, nil, append(slices.Clone(slow),
			step{at: 190, tick: true, reads: []string{"a@0"}},
			step{at: 191, read: res("a", row(v1, "x")), events: []string{fmt.Sprintf("a=%d/1", v1)}},
			step{at: 192, published: true, commit: 1},
		))
	})
	t.Run("the next read proves it unmaterialized", func(t *testing.T) {
		t.Parallel()
		run(t, p, 0, nil, append(slices.Clone(slow),
			step{at: 190, tick: true, reads: []string{"a@0"}},
			step{at: 191, read: res("a", nil), unmat: []string{fmt.Sprintf("a:%d", v1)}, commit: 1},
		))
	})
	// With two levels the strongest read is issued when the replica's
	// answer escalates: that is when its snapshot starts.
	two := p
	two.Levels = 2
	t.Run("an escalation issued before the deadline", func(t *testing.T) {
		t.Parallel()
		run(t, two, 0, nil, []step{
			{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
			{at: 99, read: res("a", nil), reads: []string{"a@1"}},
			{at: 120, read: res("a", nil)}, // issued at 99
			{at: 130, tick: true, reads: []string{"a@0"}},
			{at: 131, read: res("a", nil), reads: []string{"a@1"}},
			{at: 132, read: res("a", nil), unmat: []string{fmt.Sprintf("a:%d", v1)}, commit: 1},
		})
	})
}

// TestCoreParams: zero or negative settings take their defaults, bounds
// below their minimum are raised to it, and what is set is kept.
func TestCoreParams(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	tests := []struct {
		name string
		in   Params
		want Params
	}{
		{name: "zero: the defaults", in: Params{},
			want: Params{Levels: 1, BackoffMin: ms, BackoffMax: ms, MaxAttempts: DefaultMaxAttempts, MaxRetryTime: DefaultMaxRetryTime,
				RetryMin: DefaultRetryMin, RetryMax: DefaultRetryMax}},
		{name: "negative: the defaults", in: Params{Levels: -1, BackoffMin: -ms, BackoffMax: -ms, MaxAttempts: -1, MaxRetryTime: -ms, RetryMin: -ms, RetryMax: -ms},
			want: Params{Levels: 1, BackoffMin: ms, BackoffMax: ms, MaxAttempts: DefaultMaxAttempts, MaxRetryTime: DefaultMaxRetryTime,
				RetryMin: DefaultRetryMin, RetryMax: DefaultRetryMax}},
		{name: "set: kept", in: Params{Levels: 2, BackoffMin: 3 * ms, BackoffMax: 9 * ms, MaxAttempts: 1, MaxRetryTime: ms, RetryMin: ms, RetryMax: ms},
			want: Params{Levels: 2, BackoffMin: 3 * ms, BackoffMax: 9 * ms, MaxAttempts: 1, MaxRetryTime: ms, RetryMin: ms, RetryMax: ms}},
		{name: "maxima below their minima", in: Params{Levels: 1, BackoffMin: 7 * ms, BackoffMax: 2 * ms, RetryMin: 8 * time.Second, RetryMax: ms},
			want: Params{Levels: 1, BackoffMin: 7 * ms, BackoffMax: 7 * ms, MaxAttempts: DefaultMaxAttempts, MaxRetryTime: DefaultMaxRetryTime,
				RetryMin: 8 * time.Second, RetryMax: 8 * time.Second}},
		{name: "a retry minimum below the default maximum", in: Params{Levels: 1, RetryMin: 2 * time.Second, RetryMax: ms},
			want: Params{Levels: 1, BackoffMin: ms, BackoffMax: ms, MaxAttempts: DefaultMaxAttempts, MaxRetryTime: DefaultMaxRetryTime,
				RetryMin: 2 * time.Second, RetryMax: DefaultRetryMax}},
	}
	for _, tc := range tests {
		if got := NewCore(tc.in, 0, nil).p; got != tc.want {
			t.Errorf("%s: NewCore(%+v) params %+v, want %+v", tc.name, tc.in, got, tc.want)
		}
	}
}

// TestCoreAlreadySettled: intents that durable dead letters settled before
// a restart, from the start on, resolve when ingested, without a read;
// the others are read as usual, another intent at a letter's offset too
// (the log lost its tail, and new intents took the offsets again).
func TestCoreAlreadySettled(t *testing.T) {
	t.Parallel()
	c := NewCore(Params{Table: "t", Window: time.Second, Levels: 1}, 5, nil)
	v := ver(0, 0)
	c.AlreadySettled([]Settled{{4, "x", v}, {5, "a", v}, {7, "c", v}, {8, "gone", v}, {9, "e", v + 1}})
	c.Ingest(t0, []Entry{put(5, "a", v), put(6, "b", v), put(7, "c", v), put(8, "d", v), put(9, "e", v)})
	r := c.Ready()
	if keys := keysOfReads(r.Reads); keys != "b d e" || r.Commit != 6 || c.Unresolved() != 3 {
		t.Fatalf("reads of %q, commit %d, %d unresolved; want reads of b d e, commit 6, 3 unresolved", keys, r.Commit, c.Unresolved())
	}
}

func keysOfReads(rs []ReadRequest) string {
	var ks []string
	for _, r := range rs {
		ks = append(ks, string(r.Key))
	}
	slices.Sort(ks)
	return strings.Join(ks, " ")
}

// TestCoreReusesResolvedKeyStates: the states of resolved keys are kept
// for the next keys, at most maxFreeKeys of them, and a reused state
// starts clean.
func TestCoreReusesResolvedKeyStates(t *testing.T) {
	t.Parallel()
	c := NewCore(Params{Table: "t", Window: time.Second, Levels: 1}, 0, nil)
	const keys = maxFreeKeys + 10
	entries := make([]Entry, keys)
	for i := range entries {
		entries[i] = put(int64(i), fmt.Sprintf("k%d", i), ver(0, 0))
	}
	c.Ingest(t0, entries)
	resolved := map[*keyState]bool{}
	for _, ks := range c.keys {
		resolved[ks] = true
	}
	for _, rq := range c.Ready().Reads {
		c.ReadDone(t0, ReadResult{Key: rq.Key, Seq: rq.Seq, Found: true, Row: store.Row{Version: ver(0, 0)}})
	}
	c.Published(t0, c.Ready().Events)
	if c.ActiveKeys() != 0 || c.Unresolved() != 0 || len(resolved) != keys {
		t.Fatalf("%d active keys, %d unresolved intents of %d keys: want all %d resolved", c.ActiveKeys(), c.Unresolved(), len(resolved), keys)
	}
	if len(c.free) != maxFreeKeys {
		t.Fatalf("%d resolved key states kept for reuse, want %d (maxFreeKeys)", len(c.free), maxFreeKeys)
	}
	reused := c.free[len(c.free)-1]
	if !resolved[reused] {
		t.Fatal("a key state kept for reuse is not one of the resolved keys'")
	}
	c.Ingest(t0, []Entry{put(keys, "next", ver(1, 0))})
	r := c.Ready()
	if ks := c.keys["next"]; ks != reused || len(c.free) != maxFreeKeys-1 {
		t.Fatalf("the next key got state %p with %d kept, want the last kept state %p and %d kept", ks, len(c.free), reused, maxFreeKeys-1)
	}
	if ks := c.keys["next"]; ks.name != "next" || len(ks.pending) != 1 || ks.pending[0].version != ver(1, 0) || ks.event != nil ||
		ks.reads != 1 || len(r.Reads) != 1 || string(r.Reads[0].Key) != "next" || r.Reads[0].Level != 0 {
		t.Fatalf("reused state %+v, reads %v: want the new key's intent alone and one read of it at level 0", ks, r.Reads)
	}
}
