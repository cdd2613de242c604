package resolver

import (
	"fmt"
	"testing"
)

// TestCoreLateProbeKeepsNewerReads: a probe's answer that comes after a
// read asked after the probe succeeded leaves the store's newest
// successful read as it is: it does not move it back to the probe's. Else
// a key whose round failed while the probe was out, with that later read
// served meanwhile, would not count its next failure though the store
// served another key since its round.
func TestCoreLateProbeKeepsNewerReads(t *testing.T) {
	t.Parallel()
	v1 := ver(0, 0)
	two := failParams
	two.MaxAttempts = 2
	run(t, two, 0, nil, []step{
		{ingest: []Entry{put(0, "b", v1)}, reads: []string{"b@0"}},
		{read: res("b", row(v1, "b")), events: []string{ev("b", v1, 1)}},
		{published: true, commit: 1},
		{ingest: []Entry{put(1, "a", v1)}, reads: []string{"a@0"}},
		{read: errRes("a"), reads: []string{"probe@0"}, probe: "b", parked: n(1)}, // nothing served since a came: not counted
		{at: 40, tick: true, reads: []string{"a@0"}},
		{at: 40, read: errRes("a"), parked: n(1)}, // the probe is still out: none asked; not counted
		{at: 40, ingest: []Entry{put(2, "k", v1)}, reads: []string{"k@0"}},
		{at: 40, read: res("k", row(v1, "k")), events: []string{ev("k", v1, 1)}}, // k, asked after a's round, served
		{at: 40, published: true},
		{at: 40, read: probeRes(true)}, // asked before k's read: k's still counts
		{at: 80, tick: true, reads: []string{"a@0"}},
		// counted (k served since a's round), but a's only counted failure
		// and unsure: no letter; the probe after it confirms it
		{at: 80, read: errRes("a"), reads: []string{"probe@0"}, probe: "k", parked: n(1)},
		{at: 80, read: probeRes(true)},
		{at: 120, tick: true, reads: []string{"a@0"}},
		{at: 120, read: errRes("a"), letters: []string{letter("a", "read", v1)}, parked: n(1)}, // the second counted
		{at: 120, lettered: true, commit: 3, parked: n(0)},
	})
}

// TestCoreSureFailureStands: a counted read failure is unsure only while
// no read asked after it has succeeded. When one did before its answer
// came (here k's, asked after a's), the store served while a failed: the
// failure is sure, and reads of other keys failing after it (the probe's
// and j's) do not take it back.
func TestCoreSureFailureStands(t *testing.T) {
	t.Parallel()
	v1 := ver(0, 0)
	two := failParams
	two.MaxAttempts = 2
	run(t, two, 0, nil, []step{
		{ingest: []Entry{put(0, "a", v1), put(1, "k", v1)}, reads: []string{"a@0", "k@0"}},
		{read: res("k", row(v1, "k")), events: []string{ev("k", v1, 1)}},
		{published: true},
		{read: errRes("a"), reads: []string{"probe@0"}, probe: "k", parked: n(1)}, // 1, sure
		{read: probeRes(false)},
		{at: 1, ingest: []Entry{put(2, "j", v1)}, reads: []string{"j@0"}},
		{at: 1, read: errRes("j"), reads: []string{"probe@0"}, parked: n(2)},
		{at: 1, read: probeRes(true)},
		{at: 40, tick: true, reads: []string{"a@0", "j@0"}},
		{at: 40, read: errRes("a"), letters: []string{letter("a", "read", v1)}}, // 2
	})
}

// TestCoreUncountedFailureNotDoubted: a read failure that does not count
// (nothing served since the key's previous round) is not among the
// unsure ones: other keys failing after it take back none of the key's
// counted failures.
func TestCoreUncountedFailureNotDoubted(t *testing.T) {
	t.Parallel()
	v1 := ver(0, 0)
	two := failParams
	two.MaxAttempts = 2
	run(t, two, 0, nil, []step{
		{ingest: []Entry{put(0, "a", v1), put(1, "k", v1)}, reads: []string{"a@0", "k@0"}},
		{read: res("k", row(v1, "k")), events: []string{ev("k", v1, 1)}},
		{published: true},
		{read: errRes("a"), reads: []string{"probe@0"}, probe: "k", parked: n(1)}, // 1, sure
		{read: probeRes(false)},
		{at: 40, tick: true, reads: []string{"a@0"}},
		{at: 40, read: errRes("a"), reads: []string{"probe@0"}}, // nothing served since: not counted
		{at: 40, read: probeRes(false)},
		{at: 41, ingest: []Entry{put(2, "j", v1)}, reads: []string{"j@0"}},
		{at: 41, read: errRes("j"), reads: []string{"probe@0"}, parked: n(2)},
		{at: 41, read: probeRes(true)},
		{at: 80, tick: true, reads: []string{"j@0", "a@0"}},
		{at: 80, read: errRes("a"), letters: []string{letter("a", "read", v1)}}, // 2
	})
}

// TestCoreUnavailableTopUncounted: a round whose read at the strongest
// level the store could not serve (unavailable) does not count, though
// its read at a weaker level failed otherwise while that level served
// other keys: it is the store's outage (a replica down), and the key is
// not dead-lettered for it however often it comes.
func TestCoreUnavailableTopUncounted(t *testing.T) {
	t.Parallel()
	p := failParams
	p.Levels = 2
	v1, v2 := ver(0, 0), ver(1, 0)
	steps := []step{{ingest: []Entry{put(0, "a", v2)}, reads: []string{"a@0"}}}
	at := 0
	for i := 1; i <= 4; i++ {
		k := fmt.Sprintf("k%d", i)
		steps = append(steps,
			step{at: at, ingest: []Entry{put(int64(i), k, v1)}, reads: []string{k + "@0"}},
			step{at: at, read: res(k, row(v1, "k")), events: []string{ev(k, v1, 1)}},
			step{at: at, published: true},
			step{at: at, read: errRes("a"), reads: []string{"a@1"}}, // level 0 served k: a failure there
			step{at: at, read: unavailableRes("a"), parked: n(1)})   // the top unavailable: no count, no probe
		at += 40
		steps = append(steps, step{at: at, tick: true, reads: []string{"a@0"}})
	}
	run(t, p, 0, nil, append(steps,
		step{at: at, read: res("a", row(v2, "new")), events: []string{ev("a", v2, 1)}, parked: n(0)},
		step{at: at, published: true, commit: 5}))
}

// TestCoreReadsAskedDuringTheRoundDoNotCount: a read failure counts only
// if a read asked after the key's previous failed round came back
// succeeded. j's read, asked while a's second read was out and served
// after it failed, does not make a's third failure count.
func TestCoreReadsAskedDuringTheRoundDoNotCount(t *testing.T) {
	t.Parallel()
	v1 := ver(0, 0)
	two := failParams
	two.MaxAttempts = 2
	run(t, two, 0, nil, []step{
		{ingest: []Entry{put(0, "a", v1), put(1, "k", v1)}, reads: []string{"a@0", "k@0"}},
		{read: res("k", row(v1, "k")), events: []string{ev("k", v1, 1)}},
		{published: true},
		{read: errRes("a"), reads: []string{"probe@0"}, parked: n(1)}, // 1, sure
		{read: probeRes(false)},
		{at: 40, tick: true, reads: []string{"a@0"}},
		{at: 40, ingest: []Entry{put(2, "j", v1)}, reads: []string{"j@0"}},
		{at: 40, read: errRes("a"), reads: []string{"probe@0"}}, // nothing served since round 1: not counted
		{at: 40, read: probeRes(false)},
		{at: 40, read: res("j", row(v1, "j")), events: []string{ev("j", v1, 1)}}, // asked before a's round 2 failed
		{at: 40, published: true},
		{at: 80, tick: true, reads: []string{"a@0"}},
		{at: 80, read: errRes("a"), reads: []string{"probe@0"}, parked: n(1)}, // not counted: no letter
		{at: 80, read: probeRes(true)},
		{at: 120, tick: true, reads: []string{"a@0"}},
		{at: 120, read: errRes("a"), letters: []string{letter("a", "read", v1)}}, // 2
	})
}
