package resolver

import (
	"fmt"
	"testing"
	"time"
)

// TestCoreRetryTimeSkipsOutages: the time a key's reads failed for the
// store's outage (uncounted failures between two counted ones) is not
// retry time: a transient counted failure, a long outage of the key's
// level and one more counted failure dead-letter nothing; counted
// failures that follow each other without an outage between them
// dead-letter once they span MaxRetryTime (found by TestCoreRandomized,
// faults, seeds 152 and 157).
func TestCoreRetryTimeSkipsOutages(t *testing.T) {
	t.Parallel()
	p := failParams
	p.MaxAttempts, p.MaxRetryTime = 100, 60*time.Millisecond
	c := NewCore(p, 0, nil)
	v1 := ver(0, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	off := int64(0)
	// readOf returns the outstanding read of key among reqs.
	readOf := func(reqs []ReadRequest, key string) ReadRequest {
		t.Helper()
		for _, rq := range reqs {
			if string(rq.Key) == key && !rq.Probe {
				return rq
			}
		}
		t.Fatalf("no read of %s in %+v", key, reqs)
		return ReadRequest{}
	}
	// served: another key reads fine (the store serves), so a's next
	// plain failure counts.
	served := func(now time.Time) {
		k := fmt.Sprintf("k%d", off)
		c.Ingest(now, []Entry{put(off, k, v1)})
		off++
		rq := readOf(c.Ready().Reads, k)
		c.ReadDone(now, ReadResult{Key: rq.Key, Seq: rq.Seq, Found: true, Row: *row(v1, "k")})
		c.Published(now, c.Ready().Events)
	}
	// fail answers a's read (asked by a tick at now) with err; it
	// returns the letters that came of it.
	fail := func(now time.Time, res func(key string) *ReadResult) []Letter {
		c.Tick(now)
		rq := readOf(c.Ready().Reads, "a")
		r := res("a")
		r.Seq = rq.Seq
		c.ReadDone(now, *r)
		rd := c.Ready()
		for _, x := range rd.Reads {
			if x.Probe { // the store does not answer probes: no help
				c.ReadDone(now, ReadResult{Key: x.Key, Seq: x.Seq, Probe: true, Err: fmt.Errorf("down")})
			}
		}
		return rd.Letters
	}
	c.Ingest(at(0), []Entry{put(off, "a", v1)})
	off++
	first := readOf(c.Ready().Reads, "a")
	served(at(0))
	c.ReadDone(at(0), ReadResult{Key: []byte("a"), Seq: first.Seq, Err: fmt.Errorf("boom")}) // counted 1, at 0 ms
	c.Ready()
	for _, ms := range []int{50, 100, 150} { // the level cannot serve a: 150 ms of outage
		if ls := fail(at(ms), unavailableRes); len(ls) != 0 {
			t.Fatalf("%d ms: an outage dead-lettered %+v", ms, ls)
		}
	}
	served(at(190))
	if ls := fail(at(200), errRes); len(ls) != 0 { // counted 2: 200 ms after the first, 150 of them outage
		t.Fatalf("a counted failure after an outage dead-lettered a: %s (the outage counted as retry time)", ls[0].Err)
	}
	served(at(240))
	if ls := fail(at(250), errRes); len(ls) != 0 { // counted 3: 50 ms of retry time
		t.Fatalf("50 ms of retry time dead-lettered a: %s", ls[0].Err)
	}
	served(at(300))
	if ls := fail(at(310), errRes); len(ls) != 1 { // counted 4: 110 ms of retry time
		t.Fatalf("110 ms of retry time (MaxRetryTime 60 ms): %d letters, want 1", len(ls))
	}
}

// outageStarts: key a waits for its level (its first read answers
// unavailable, as a key with a replica down does); then outageRounds.
// letterAt > 0: the letterAt-th failure of a dead-letters it; else a
// reads fine at the end.
func outageStarts(outages, letterAt int, other func(string) *ReadResult, probeOK bool) []step {
	v1 := ver(0, 0)
	steps := []step{
		{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
		{read: unavailableRes("a"), parked: n(1)},
		{ingest: []Entry{put(1, "k", v1)}, reads: []string{"k@0"}},
		{read: res("k", row(v1, "k")), events: []string{ev("k", v1, 1)}},
		{published: true},
	}
	steps, at, off, lettered := outageRounds(steps, 0, 2, outages, letterAt, other, probeOK)
	if lettered {
		return steps
	}
	return append(steps,
		step{at: at + 40, tick: true, reads: []string{"a@0"}},
		step{at: at + 40, read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}, parked: n(0)},
		step{at: at + 40, published: true, commit: off})
}

// outageRounds: outages times, 40 ms apart from at on, the store serves
// another key, a's retry fails (a counted failure: the store served since
// a's previous round) and, after it, another key's read fails as other
// says: the store's outage starting, or that key's own trouble. Each
// failure of a asks for a probe, answered as probeOK says, after the other
// key's read. It returns the steps, the time and the next offset, and
// whether the letterAt-th failure of a dead-lettered it (then the steps
// end there).
func outageRounds(steps []step, at int, off int64, outages, letterAt int, other func(string) *ReadResult, probeOK bool) ([]step, int, int64, bool) {
	v1 := ver(0, 0)
	for i := 1; i <= outages; i++ {
		j := fmt.Sprintf("j%d", i)
		at += 40
		steps = append(steps, step{at: at, tick: true, reads: []string{"a@0"}})
		fail := step{at: at, read: errRes("a"), parked: n(1)}
		if i == letterAt {
			fail.letters = []string{letter("a", "read", v1)}
			return append(steps, fail, step{at: at, lettered: true, commit: off, parked: n(0)}), at, off, true
		}
		fail.reads = []string{"probe@0"}
		steps = append(steps, fail,
			// another key, read after a failed, fails too; the probe is out
			step{at: at, ingest: []Entry{put(off, j, v1)}, reads: []string{j + "@0"}},
			step{at: at, read: other(j), parked: n(2)},
			step{at: at, read: probeRes(probeOK)},
			// the store is back: the other key reads fine on its retry
			step{at: at + 10, tick: true, reads: []string{j + "@0"}},
			step{at: at + 10, read: res(j, row(v1, "j")), events: []string{ev(j, v1, 1)}, parked: n(1)},
			step{at: at + 10, published: true})
		off++
	}
	return steps, at, off, false
}

// retryTimeAroundOutages: a's own failure counts (the store served a read
// asked after a's), then outageRounds whose failures are taken back, then
// two more failures of a's own 40 ms apart, then a reads fine. The
// failures taken back add no retry time, and the time since the first is
// outage: 40 ms of retry time in all.
//
// With before, a fails once more on its own 20 ms after the first (20 ms
// of retry time), and one outage round follows: taking its failure back
// leaves those 20 ms.
func retryTimeAroundOutages(own int, before bool) []step {
	v1 := ver(0, 0)
	steps := []step{
		{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
		{ingest: []Entry{put(1, "k", v1)}, reads: []string{"k@0"}},
		{read: res("k", row(v1, "k")), events: []string{ev("k", v1, 1)}},
		{published: true},
		{read: errRes("a"), reads: []string{"probe@0"}, parked: n(1)},
		{read: probeRes(true)},
	}
	at, off, outages := 0, int64(2), 3
	if before {
		at, outages = 20, 1
		steps = append(steps,
			step{at: at, tick: true, reads: []string{"a@0"}},
			step{at: at, ingest: []Entry{put(off, "k0", v1)}, reads: []string{"k0@0"}},
			step{at: at, read: res("k0", row(v1, "k0")), events: []string{ev("k0", v1, 1)}},
			step{at: at, published: true},
			step{at: at, read: errRes("a"), reads: []string{"probe@0"}, parked: n(1)},
			step{at: at, read: probeRes(true)})
		off++
	}
	steps, at, off, _ = outageRounds(steps, at, off, outages, 0, errRes, false)
	for i := 1; i <= own; i++ {
		at += 40
		m := fmt.Sprintf("m%d", i)
		steps = append(steps,
			step{at: at, tick: true, reads: []string{"a@0"}},
			step{at: at, ingest: []Entry{put(off, m, v1)}, reads: []string{m + "@0"}},
			step{at: at, read: res(m, row(v1, "m")), events: []string{ev(m, v1, 1)}},
			step{at: at, published: true})
		off++
		if i == 3 { // 80 ms of retry time since the first (100 with before), MaxRetryTime
			return append(steps,
				step{at: at, read: errRes("a"), letters: []string{letter("a", "read", v1)}},
				step{at: at, lettered: true, commit: off, parked: n(0)})
		}
		steps = append(steps,
			step{at: at, read: errRes("a"), reads: []string{"probe@0"}, parked: n(1)},
			step{at: at, read: probeRes(true)})
	}
	return append(steps,
		step{at: at + 40, tick: true, reads: []string{"a@0"}},
		step{at: at + 40, read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}, parked: n(0)},
		step{at: at + 40, published: true, commit: off})
}

// TestCoreOutageStartUncounted: a key's failure that came first in a
// store outage counts when it comes (the store served since the key's
// previous round: the core cannot tell it from the key's own), but once
// two reads of other keys (a probe's included) asked after it fail too,
// before any read asked after it succeeded, it was the outage's: it is
// taken back. Before, a key kept parked by its level (a replica down)
// while short outages came and went counted the first failure of each and
// was dead-lettered though it was not poison (found by TestCoreRandomized,
// faults with ambiguous writes, seed 170). One other key failing may be
// its own trouble, and a failure that says the store cannot serve a key
// (unavailable) says nothing of the store: then the failures stand.
func TestCoreOutageStartUncounted(t *testing.T) {
	t.Parallel()
	v1 := ver(0, 0)
	timeBound := failParams
	timeBound.MaxAttempts, timeBound.MaxRetryTime = 100, 50*time.Millisecond
	longer := timeBound
	longer.MaxRetryTime = 100 * time.Millisecond
	tests := []struct {
		name  string
		p     Params
		steps []step
	}{
		{"another key and the probe failing after it take a failure back: outages never dead-letter", failParams, outageStarts(6, 0, errRes, false)},
		{"another key unavailable after it takes nothing back: a is dead-lettered at MaxAttempts", failParams, outageStarts(3, 3, unavailableRes, false)},
		{"a probe that succeeds after another key failed confirms it: a is dead-lettered at MaxAttempts", failParams, outageStarts(3, 3, errRes, true)},
		{"a failure taken back takes its retry time back, and its span is outage", timeBound, retryTimeAroundOutages(2, false)},
		{"the retry time of the key's own failures after it still adds up", timeBound, retryTimeAroundOutages(3, false)},
		{"a failure taken back takes back only the retry time it added", longer, retryTimeAroundOutages(3, true)},
		{"a success asked after a failure confirms it: other keys failing after that take nothing back", failParams, []step{
			{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
			{ingest: []Entry{put(1, "k", v1)}, reads: []string{"k@0"}},
			{read: res("k", row(v1, "k")), events: []string{ev("k", v1, 1)}},
			{published: true},
			{read: errRes("a"), reads: []string{"probe@0"}, parked: n(1)}, // 1 (k, read after a, served)
			{read: probeRes(true)},
			{at: 40, tick: true, reads: []string{"a@0"}},
			{at: 40, read: errRes("a"), reads: []string{"probe@0"}}, // 2, unsure
			{at: 40, read: probeRes(true)},                          // confirmed
			{at: 41, ingest: []Entry{put(2, "j1", v1), put(3, "j2", v1)}, reads: []string{"j1@0", "j2@0"}},
			{at: 41, read: errRes("j1"), reads: []string{"probe@0"}, parked: n(2)},
			{at: 41, read: errRes("j2"), parked: n(3)},
			{at: 80, tick: true, reads: []string{"j1@0", "j2@0", "a@0"}},
			{at: 80, read: errRes("a"), letters: []string{letter("a", "read", v1)}}, // 3
		}},
		{"a read asked before the failure came back does not confirm it", failParams, []step{
			{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
			{ingest: []Entry{put(1, "k", v1)}, reads: []string{"k@0"}},
			{read: res("k", row(v1, "k")), events: []string{ev("k", v1, 1)}},
			{published: true},
			{read: errRes("a"), reads: []string{"probe@0"}, parked: n(1)}, // 1
			{read: probeRes(true)},
			{at: 40, tick: true, reads: []string{"a@0"}},
			{at: 40, ingest: []Entry{put(2, "x", v1)}, reads: []string{"x@0"}},
			{at: 40, read: errRes("a"), reads: []string{"probe@0"}},                  // 2, unsure
			{at: 40, read: res("x", row(v1, "x")), events: []string{ev("x", v1, 1)}}, // asked before: no confirmation
			{at: 40, published: true},
			{at: 40, read: probeRes(false)}, // strike 1
			{at: 41, ingest: []Entry{put(3, "j", v1)}, reads: []string{"j@0"}},
			{at: 41, read: errRes("j"), reads: []string{"probe@0"}, parked: n(2)}, // strike 2: 2 taken back
			{at: 41, read: probeRes(true)},
			{at: 80, tick: true, reads: []string{"j@0", "a@0"}},
			{at: 80, read: errRes("a"), reads: []string{"probe@0"}}, // 2 again: no letter
		}},
		{"a read asked before the failure came back is no strike against it", failParams, []step{
			{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
			{ingest: []Entry{put(1, "k", v1)}, reads: []string{"k@0"}},
			{read: res("k", row(v1, "k")), events: []string{ev("k", v1, 1)}},
			{published: true},
			{read: errRes("a"), reads: []string{"probe@0"}, parked: n(1)}, // 1
			{read: probeRes(true)},
			{at: 40, tick: true, reads: []string{"a@0"}},
			{at: 40, ingest: []Entry{put(2, "x", v1)}, reads: []string{"x@0"}},
			{at: 40, read: errRes("a"), reads: []string{"probe@0"}}, // 2, unsure
			{at: 40, read: errRes("x"), parked: n(2)},               // asked before: no strike
			{at: 40, read: probeRes(false)},                         // strike 1 only: 2 stands
			{at: 79, ingest: []Entry{put(3, "k2", v1)}, reads: []string{"k2@0"}},
			{at: 79, read: res("k2", row(v1, "k2")), events: []string{ev("k2", v1, 1)}},
			{at: 79, published: true},
			{at: 80, tick: true, reads: []string{"x@0", "a@0"}},
			{at: 80, read: errRes("a"), letters: []string{letter("a", "read", v1)}}, // 3
		}},
		{"the key's own next failure is no other key's: with one probe failing after it, its failure stands", failParams, []step{
			{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
			{ingest: []Entry{put(1, "k", v1)}, reads: []string{"k@0"}},
			{read: res("k", row(v1, "k")), events: []string{ev("k", v1, 1)}},
			{published: true},
			{read: errRes("a"), reads: []string{"probe@0"}, parked: n(1)}, // 1 (k, read after a, served)
			{read: probeRes(true)},
			{at: 40, tick: true, reads: []string{"a@0"}},
			{at: 40, read: errRes("a"), reads: []string{"probe@0"}}, // 2, unsure
			{at: 40, read: probeRes(false)},
			{at: 80, tick: true, reads: []string{"a@0"}},
			{at: 80, read: errRes("a"), reads: []string{"probe@0"}}, // nothing served since: not counted
			{at: 80, read: probeRes(true)},
			{at: 120, tick: true, reads: []string{"a@0"}},
			{at: 120, read: errRes("a"), letters: []string{letter("a", "read", v1)}}, // 3
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run(t, tc.p, 0, nil, tc.steps)
		})
	}
}
