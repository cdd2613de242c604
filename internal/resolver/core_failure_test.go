package resolver

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/store"
)

// failParams: three counted failures dead-letter; retries wait at most
// 10, 20, 40, 40 ... ms.
var failParams = Params{Window: 100 * time.Millisecond, Levels: 1, BackoffMin: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond,
	MaxAttempts: 3, MaxRetryTime: time.Hour, RetryMin: 10 * time.Millisecond, RetryMax: 40 * time.Millisecond, Seed: 1}

func ev(k string, v uint64, n int) string { return fmt.Sprintf("%s=%d/%d", k, v, n) }

func letter(k, kind string, vs ...uint64) string {
	s := k + "/" + kind + ":"
	for i, v := range vs {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprint(v)
	}
	return s
}

// flowingPublishFailures: key a's event fails tries times (as how says),
// and before each failure another key's event gets through. With
// letterAt > 0, the letterAt-th failure must dead-letter a; otherwise a
// gets through after the last one.
func flowingPublishFailures(how pubFail, tries, letterAt int) []step {
	v1 := ver(0, 0)
	steps := []step{
		{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
		{read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
	}
	at := 0
	for i := 1; i <= tries; i++ {
		k := fmt.Sprintf("k%d", i)
		steps = append(steps,
			step{at: at, ingest: []Entry{put(int64(i), k, v1)}, reads: []string{k + "@0"}},
			step{at: at, read: res(k, row(v1, "k")), events: []string{ev(k, v1, 1)}})
		fail := step{at: at, published: true, failed: []string{"a"}, fail: how, parked: n(1)}
		if i == letterAt {
			fail.letters = []string{letter("a", "publish", v1)}
			return append(steps, fail, step{at: at, lettered: true, commit: int64(i + 1), parked: n(0)})
		}
		at += 40
		steps = append(steps, fail, step{at: at, tick: true, events: []string{ev("a", v1, 1)}})
	}
	return append(steps, step{at: at, published: true, commit: int64(tries + 1), parked: n(0)})
}

// flowingReadFailures: key a's reads fail tries times; before each failure
// another key is read (and published) if others; each failed round asks
// for a probe, answered as probeOK says.
func flowingReadFailures(tries, letterAt int, others, probeOK bool) []step {
	return flowingReadErrors(tries, letterAt, others, probeOK, errRes)
}

// flowingReadErrors is flowingReadFailures with a's failed reads answered
// by fail. A failure that says the store cannot serve now asks for no
// probe (it never counts).
func flowingReadErrors(tries, letterAt int, others, probeOK bool, fail func(string) *ReadResult) []step {
	probes := !errors.Is(fail("a").Err, store.ErrUnavailable)
	v1 := ver(0, 0)
	steps := []step{{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}}}
	at, off := 0, int64(1)
	for i := 1; i <= tries; i++ {
		if others {
			k := fmt.Sprintf("k%d", i)
			steps = append(steps,
				step{at: at, ingest: []Entry{put(off, k, v1)}, reads: []string{k + "@0"}},
				step{at: at, read: res(k, row(v1, "k")), events: []string{ev(k, v1, 1)}},
				step{at: at, published: true})
			off++
		}
		fail := step{at: at, read: fail("a"), parked: n(1)}
		if i == letterAt {
			fail.letters = []string{letter("a", "read", v1)}
			return append(steps, fail, step{at: at, lettered: true, commit: off, parked: n(0)})
		}
		at += 40
		if probes {
			fail.reads = []string{"probe@0"}
			steps = append(steps, fail, step{at: at, read: probeRes(probeOK)})
		} else {
			steps = append(steps, fail)
		}
		steps = append(steps, step{at: at, tick: true, reads: []string{"a@0"}})
	}
	return append(steps,
		step{at: at, read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}, parked: n(0)},
		step{at: at, published: true, commit: off})
}

// primaryFailures: key a needs version 2 (two levels); four times other
// keys read fine at the replica level while a's replica read answers
// replica and its primary read fails, and the probe of the primary fails
// too: none of it counts. Then a reads fine.
func primaryFailures(replica *ReadResult) []step {
	v1, v2 := ver(0, 0), ver(1, 0)
	steps := []step{{ingest: []Entry{put(0, "a", v2)}, reads: []string{"a@0"}}}
	at := 0
	for i := 1; i <= 4; i++ {
		k := fmt.Sprintf("k%d", i)
		steps = append(steps,
			step{at: at, ingest: []Entry{put(int64(i), k, v1)}, reads: []string{k + "@0"}},
			step{at: at, read: res(k, row(v1, "k")), events: []string{ev(k, v1, 1)}},
			step{at: at, published: true},
			step{at: at, read: replica, reads: []string{"a@1"}},
			step{at: at, read: errRes("a"), reads: []string{"probe@1"}, parked: n(1)},
			step{at: at, read: probeRes(false)})
		at += 40
		steps = append(steps, step{at: at, tick: true, reads: []string{"a@0"}})
	}
	return append(steps,
		step{at: at, read: res("a", row(v2, "new")), events: []string{ev("a", v2, 1)}, parked: n(0)},
		step{at: at, published: true, commit: 5})
}

func TestCoreFailures(t *testing.T) {
	t.Parallel()
	v1, v2, v3 := ver(0, 0), ver(1, 0), ver(2, 0)
	twoLevels := failParams
	twoLevels.Levels = 2
	timeBound := failParams
	timeBound.MaxAttempts, timeBound.MaxRetryTime = 100, 50*time.Millisecond
	floor := func(e Entry, f uint64) Entry { e.Intent.PublishedFloor = f; return e }
	timeBoundExact := timeBound
	timeBoundExact.MaxRetryTime = 80 * time.Millisecond
	oneAttempt := failParams
	oneAttempt.MaxAttempts = 1

	tests := []struct {
		name  string
		p     Params
		steps []step
	}{
		{
			name: "a permanent publish failure dead-letters the covered intents at once; the partition flows on",
			p:    failParams,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1), put(1, "b", v1)}, reads: []string{"a@0", "b@0"}},
				{read: res("a", row(v1, "too big")), events: []string{ev("a", v1, 1)}},
				{read: res("b", row(v1, "b")), events: []string{ev("b", v1, 1)}},
				{published: true, failed: []string{"a"}, fail: pubFail{permanent: true}, letters: []string{letter("a", "publish", v1)}, parked: n(1)},
				{lettered: true, commit: 2, parked: n(0)}, // settled only once the letter is durable
			},
		},
		{
			name:  "counted publish failures (alone, while the bus takes other events) dead-letter at MaxAttempts",
			p:     failParams,
			steps: flowingPublishFailures(pubFail{}, 3, 3),
		},
		{
			name:  "the time bound dead-letters at the first counted failure past MaxRetryTime",
			p:     timeBound,
			steps: flowingPublishFailures(pubFail{}, 3, 3),
		},
		{
			name:  "the time bound is inclusive: a counted failure exactly MaxRetryTime after the first dead-letters",
			p:     timeBoundExact,
			steps: flowingPublishFailures(pubFail{}, 3, 3), // counted failures at 0, 40 and 80 ms
		},
		{
			name:  "failures together with other events never count: the key is retried, not dead-lettered",
			p:     failParams,
			steps: flowingPublishFailures(pubFail{together: true}, 5, 0),
		},
		{
			name:  "a failure that may have landed never counts",
			p:     failParams,
			steps: flowingPublishFailures(pubFail{uncertain: true}, 5, 0),
		},
		{
			name:  "a permanent failure together with others is not yet known to be its own: retried",
			p:     failParams,
			steps: flowingPublishFailures(pubFail{permanent: true, together: true}, 4, 0),
		},
		{
			name: "a bus outage (nothing else gets through) never dead-letters",
			p:    failParams,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
				{read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
				{failed: []string{"a"}, parked: n(1)},
				{at: 10, tick: true, events: []string{ev("a", v1, 1)}},
				{at: 10, failed: []string{"a"}},
				{at: 30, tick: true, events: []string{ev("a", v1, 1)}},
				{at: 30, failed: []string{"a"}},
				{at: 70, tick: true, events: []string{ev("a", v1, 1)}},
				{at: 70, failed: []string{"a"}},
				{at: 110, tick: true, events: []string{ev("a", v1, 1)}},
				{at: 110, published: true, commit: 1, parked: n(0)},
			},
		},
		{
			name:  "counted read failures (the store serves other keys) dead-letter at MaxAttempts",
			p:     failParams,
			steps: flowingReadFailures(3, 3, true, false),
		},
		{
			name:  "reads the store cannot serve now (store.ErrUnavailable) never count, even while other keys read fine",
			p:     failParams,
			steps: flowingReadErrors(6, 0, true, true, unavailableRes),
		},
		{
			name:  "a store outage (no other read or probe succeeds) never dead-letters",
			p:     failParams,
			steps: flowingReadFailures(5, 0, false, false),
		},
		{
			name:  "in a quiet partition, probes that succeed make the failures count",
			p:     failParams,
			steps: flowingReadFailures(4, 4, false, true), // the first failure has no probe before it
		},
		{
			name:  "a replica level that cannot serve the key (unavailable) while it serves others does not make a failing primary count",
			p:     twoLevels,
			steps: primaryFailures(unavailableRes("a")),
		},
		{
			name:  "a primary outage while the replica serves does not count",
			p:     twoLevels,
			steps: primaryFailures(res("a", row(ver(0, 0), "old"))),
		},
		{
			name: "a parked key's later intents queue behind it; other keys flow; the commit stays below it",
			p:    failParams,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
				{read: errRes("a"), reads: []string{"probe@0"}, parked: n(1)},
				{at: 1, ingest: []Entry{put(1, "a", v2), put(2, "b", v2)}, reads: []string{"b@0"}},
				{at: 1, read: res("b", row(v2, "b")), events: []string{ev("b", v2, 1)}},
				{at: 1, published: true},
				{at: 10, tick: true, reads: []string{"a@0"}},
				{at: 10, read: res("a", row(v2, "y")), events: []string{ev("a", v2, 2)}, parked: n(0)},
				{at: 10, published: true, commit: 3},
			},
		},
		{
			name: "a letter that cannot be written is written again; its intents wait for it",
			p:    failParams,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1), put(1, "b", v1)}, reads: []string{"a@0", "b@0"}},
				{read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
				{read: res("b", row(v1, "b")), events: []string{ev("b", v1, 1)}},
				{published: true, failed: []string{"a"}, fail: pubFail{permanent: true}, letters: []string{letter("a", "publish", v1)}},
				{unwritten: true, parked: n(1)},
				{at: 20, tick: true, letters: []string{letter("a", "publish", v1)}},
				{at: 20, unwritten: true},
				{at: 60, tick: true, letters: []string{letter("a", "publish", v1)}},
				{at: 60, lettered: true, commit: 2, parked: n(0)},
			},
		},
		{
			name: "intents that arrive while a letter is written start afresh after it",
			p:    failParams,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
				{read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
				{failed: []string{"a"}, fail: pubFail{permanent: true}, letters: []string{letter("a", "publish", v1)}},
				{at: 1, ingest: []Entry{put(1, "a", v2)}},
				{at: 1, lettered: true, reads: []string{"a@0"}, commit: 1},
				{at: 1, read: res("a", row(v2, "y")), events: []string{ev("a", v2, 1)}},
				{at: 1, published: true, commit: 2},
			},
		},
		{
			name: "an older intent that arrives while its covering event is retried joins it, and its letter",
			p:    failParams,
			steps: []step{
				{ingest: []Entry{put(0, "a", v2)}, reads: []string{"a@0"}},
				{read: res("a", row(v2, "y")), events: []string{ev("a", v2, 1)}},
				{failed: []string{"a"}},
				{at: 1, ingest: []Entry{put(1, "a", v1), ent(2, "a", intent.Abort, v1)}}, // no read: the event covers them
				{at: 10, tick: true, events: []string{ev("a", v2, 1)}},
				{at: 10, failed: []string{"a"}, fail: pubFail{permanent: true}, letters: []string{letter("a", "publish", v2, v1) + fmt.Sprintf(",%d(A)", v1)}},
				{at: 10, lettered: true, commit: 3},
			},
		},
		{
			name: "a version the bus has (published floor, from redrive or reconcile) is not published again",
			p:    failParams,
			steps: []step{
				{ingest: []Entry{floor(put(0, "a", v2), v2)}, commit: 1},
				{ingest: []Entry{put(1, "a", v1)}, commit: 2}, // below the floor: covered too
				{ingest: []Entry{floor(put(2, "a", v3), v2)}, reads: []string{"a@0"}},
				{read: res("a", row(v2, "y"))}, // the floor's version: nothing to publish, wait for v3
				{at: 10, tick: true, reads: []string{"a@0"}},
				{at: 10, read: res("a", row(v3, "z")), events: []string{ev("a", v3, 1)}},
				{at: 10, published: true, commit: 3},
			},
		},
		{
			name: "a probe reads a key that read fine lately at the strongest level; a failed round is one read retry",
			p:    failParams,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1), put(1, "b", v1)}, reads: []string{"a@0", "b@0"}},
				{read: res("b", row(v1, "b")), events: []string{ev("b", v1, 1)}},
				{read: errRes("a"), reads: []string{"probe@0"}, probe: "b", retries: &[2]int{1, 0}, parked: n(1)},
			},
		},
		{
			name: "with no key read fine lately, a probe reads the absent probe key",
			p:    failParams,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
				{read: errRes("a"), reads: []string{"probe@0"}, probe: string(probeKey), retries: &[2]int{1, 0}, parked: n(1)},
			},
		},
		{
			name: "a probe never reads the failing key itself, though it read fine last",
			p:    failParams,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
				{read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
				{published: true, commit: 1},
				{ingest: []Entry{put(1, "a", v2)}, reads: []string{"a@0"}},
				{read: errRes("a"), reads: []string{"probe@0"}, probe: string(probeKey), parked: n(1)},
			},
		},
		{
			name: "a failed publish that is retried is one publish retry",
			p:    failParams,
			steps: []step{
				{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
				{read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
				{failed: []string{"a"}, retries: &[2]int{0, 1}, parked: n(1)},
			},
		},
		{
			name: "a letter made durable is the bus serving: the next failure alone of a parked key counts",
			p:    oneAttempt,
			steps: []step{
				{ingest: []Entry{put(0, "c", v1)}, reads: []string{"c@0"}},
				{read: res("c", row(v1, "c")), events: []string{ev("c", v1, 1)}},
				{published: true, commit: 1},
				{ingest: []Entry{put(1, "a", v1)}, reads: []string{"a@0"}},
				{read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
				{failed: []string{"a"}, parked: n(1)}, // nothing got through since a came: not counted
				{ingest: []Entry{put(2, "b", v1)}, reads: []string{"b@0"}},
				{read: res("b", row(v1, "too big")), events: []string{ev("b", v1, 1)}},
				{failed: []string{"b"}, fail: pubFail{permanent: true}, letters: []string{letter("b", "publish", v1)}, parked: n(2)},
				{lettered: true, parked: n(1)},
				{at: 10, tick: true, events: []string{ev("a", v1, 1)}},
				// counted, but a's only counted failure and unsure: no
				// letter yet (TestCoreOneAttemptOutageStart)
				{at: 10, failed: []string{"a"}},
				{at: 10, ingest: []Entry{put(3, "d", v1)}, reads: []string{"d@0"}},
				{at: 10, read: res("d", row(v1, "d")), events: []string{ev("d", v1, 1)}},
				{at: 10, published: true},
				{at: 50, tick: true, events: []string{ev("a", v1, 1)}},
				{at: 50, failed: []string{"a"}, letters: []string{letter("a", "publish", v1)}},
				{at: 50, lettered: true, commit: 4, parked: n(0)},
			},
		},
		{
			// R8 (issue 19): the replica shows v1, the pending set holds
			// v2's ABORT; v2 landed on the primary (reported failed,
			// committed anyway). Publishing v1 from the replica and
			// settling would leave v2 without an event.
			name: "an ABORT escalates to the strongest level even when the replica covers what is needed",
			p:    withDelay(twoLevels, 2*time.Millisecond),
			steps: []step{
				{ingest: []Entry{put(0, "a", v1), put(1, "a", ver(0, 1)), ent(2, "a", intent.Abort, ver(0, 1))}},
				{at: 2, tick: true, reads: []string{"a@0"}},
				{at: 2, read: res("a", row(v1, "x")), reads: []string{"a@1"}},
				{at: 2, read: res("a", row(ver(0, 1), "y")), events: []string{ev("a", ver(0, 1), 2)}},
				{at: 2, published: true, commit: 3},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run(t, tc.p, 0, nil, tc.steps)
		})
	}
}

// TestCoreKeepsLastPublishedOfActiveKeys (R9, issue 19): past the horizon,
// the last published version of a key that is active again must stay, or
// a late ABORT below it makes the core publish that version twice.
func TestCoreKeepsLastPublishedOfActiveKeys(t *testing.T) {
	t.Parallel()
	v1, far := ver(0, 0), ver(5000, 0)
	p := Params{Window: time.Minute, Levels: 1, BackoffMin: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond, Horizon: time.Second}
	c := run(t, p, 0, nil, []step{
		{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
		{read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
		{published: true, commit: 1},
		{at: 1, ingest: []Entry{put(1, "a", far)}, reads: []string{"a@0"}}, // past the horizon, a is active again
		{at: 1, ingest: []Entry{ent(2, "a", intent.Abort, v1)}},            // a late ABORT of v1
		{at: 2, read: res("a", row(v1, "x"))},                              // must not publish v1 again
		{at: 12, tick: true, reads: []string{"a@0"}},
		{at: 12, read: res("a", row(far, "y")), events: []string{ev("a", far, 1)}},
		{at: 12, published: true, commit: 3},
	})
	if c.LastPublished([]byte("a")) != far {
		t.Fatalf("last published %d, want %d", c.LastPublished([]byte("a")), far)
	}
}

// TestCoreCommitAfter: a transaction carrying events or letters can commit
// the offset their acknowledgement will move the commit to, and no further.
func TestCoreCommitAfter(t *testing.T) {
	t.Parallel()
	c := NewCore(failParams, 0, nil)
	v := ver(0, 0)
	c.Ingest(t0, []Entry{put(0, "a", v), put(1, "b", v), put(2, "c", v)})
	seqs := map[string]uint64{}
	for _, r := range c.Ready().Reads {
		seqs[string(r.Key)] = r.Seq
	}
	for _, k := range []string{"a", "b"} {
		c.ReadDone(t0, ReadResult{Key: []byte(k), Seq: seqs[k], Found: true, Row: *row(v, k)})
	}
	c.Ready()
	cases := []struct {
		keys []string
		want int64
	}{
		{nil, 0},
		{[]string{"b"}, 0},      // a holds it
		{[]string{"a"}, 1},      // b is still on its way
		{[]string{"a", "b"}, 2}, // c is being read
		{[]string{"c"}, 0},      // not in flight
	}
	for _, tc := range cases {
		var keys [][]byte
		for _, k := range tc.keys {
			keys = append(keys, []byte(k))
		}
		if got := c.CommitAfter(keys); got != tc.want {
			t.Errorf("CommitAfter(%v) = %d, want %d", tc.keys, got, tc.want)
		}
	}
}

// TestCoreParkedKeyDoesNotHoldBackpressure: the intents of other keys
// that resolved behind a parked key do not count as unresolved, so the
// partition keeps reading.
func TestCoreParkedKeyDoesNotHoldBackpressure(t *testing.T) {
	t.Parallel()
	c := NewCore(failParams, 0, nil)
	c.Ingest(t0, []Entry{put(0, "stuck", ver(0, 0)), put(1, "stuck too", ver(0, 0))})
	c.Ready()
	// The resolved slots behind the parked keys are dropped in batches,
	// once they pass twice the unresolved ones plus 1024: memory follows
	// the unresolved intents, and the dropping is amortized.
	const most = 2*2 + 1024 // at most, after an ingest
	kept, dropped := 0, 0
	for i := 2; i <= 5000; i++ {
		// covered at once: an event above them is already out
		c.lastPub["k"] = ver(10, 0)
		c.Ingest(t0, []Entry{put(int64(i), "k", ver(0, 0))})
		switch n := len(c.slots); {
		case n > most:
			t.Fatalf("%d slots kept for %d unresolved intents", n, c.live)
		case n < kept:
			if n != c.live || kept != most {
				t.Fatalf("dropped from %d slots to %d; want from %d to the %d unresolved", kept, n, most, c.live)
			}
			dropped++
		}
		kept = len(c.slots)
	}
	if c.Unresolved() != 2 || c.Committed() != 0 || dropped != 4999/(most-1) {
		t.Fatalf("unresolved %d, committed %d, dropped %d times: want 2, 0 and %d", c.Unresolved(), c.Committed(), dropped, 4999/(most-1))
	}
}
