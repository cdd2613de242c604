package resolver

import "testing"

// TestCoreServedReadsOutOfOrder: reads answered out of order leave the
// newest successful read the store's: k1's, asked before k2's and served
// after it, does not hide k2's, asked after a's failed round, and a's next
// failure counts.
func TestCoreServedReadsOutOfOrder(t *testing.T) {
	t.Parallel()
	v1 := ver(0, 0)
	two := failParams
	two.MaxAttempts = 2
	run(t, two, 0, nil, []step{
		{ingest: []Entry{put(0, "b", v1)}, reads: []string{"b@0"}},
		{read: res("b", row(v1, "b")), events: []string{ev("b", v1, 1)}},
		{published: true, commit: 1},
		{ingest: []Entry{put(1, "a", v1)}, reads: []string{"a@0"}},
		{ingest: []Entry{put(2, "k1", v1)}, reads: []string{"k1@0"}},
		{read: errRes("a"), reads: []string{"probe@0"}, probe: "b", parked: n(1)}, // nothing served since a came: not counted
		{read: probeRes(false)},
		{ingest: []Entry{put(3, "k2", v1)}, reads: []string{"k2@0"}},
		{read: res("k2", row(v1, "k2")), events: []string{ev("k2", v1, 1)}}, // asked after a's round
		{published: true},
		{read: res("k1", row(v1, "k1")), events: []string{ev("k1", v1, 1)}}, // asked before it
		{published: true},
		{at: 40, tick: true, reads: []string{"a@0"}},
		{at: 40, read: errRes("a"), reads: []string{"probe@0"}, probe: "k1", parked: n(1)}, // counted (k2's), unsure: no letter
		{at: 40, read: probeRes(true)},
		{at: 80, tick: true, reads: []string{"a@0"}},
		{at: 80, read: errRes("a"), letters: []string{letter("a", "read", v1)}}, // the second counted
		{at: 80, lettered: true, commit: 4, parked: n(0)},
	})
}

// TestCoreProbeReadsTopLevelServedKey: a probe reads a key the strongest
// level served lately, not one only a weaker level served (whose read at
// the strongest level may fail as the key's own): with none, it reads
// the probe key.
func TestCoreProbeReadsTopLevelServedKey(t *testing.T) {
	t.Parallel()
	p := failParams
	p.Levels = 2
	v1 := ver(0, 0)
	run(t, p, 0, nil, []step{
		{ingest: []Entry{put(0, "k", v1)}, reads: []string{"k@0"}},
		{read: res("k", row(v1, "k")), events: []string{ev("k", v1, 1)}}, // level 0 serves k
		{published: true, commit: 1},
		{ingest: []Entry{put(1, "a", v1)}, reads: []string{"a@0"}},
		{read: errRes("a"), reads: []string{"a@1"}},
		{read: errRes("a"), reads: []string{"probe@1"}, probe: string(probeKey), parked: n(1)},
	})
}

// TestCoreLandedRowConfirmsNothing: a row handed over by a store write
// says nothing of whether the store serves reads: it does not confirm an
// unsure read failure, which a probe and another key failing after it
// then take back (TestCoreOutageStartUncounted, with y's row read).
func TestCoreLandedRowConfirmsNothing(t *testing.T) {
	t.Parallel()
	v1 := ver(0, 0)
	landed := res("y", row(v1, "y"))
	landed.Landed = true
	run(t, failParams, 0, nil, []step{
		{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
		{ingest: []Entry{put(1, "k", v1)}, reads: []string{"k@0"}},
		{read: res("k", row(v1, "k")), events: []string{ev("k", v1, 1)}},
		{published: true},
		{read: errRes("a"), reads: []string{"probe@0"}, parked: n(1)}, // 1
		{read: probeRes(true)},
		{at: 40, tick: true, reads: []string{"a@0"}},
		{at: 40, read: errRes("a"), reads: []string{"probe@0"}}, // 2, unsure
		{at: 40, ingest: []Entry{put(2, "y", v1)}, reads: []string{"y@0"}},
		{at: 40, read: landed, events: []string{ev("y", v1, 1)}}, // asked after 2: handed over, no confirmation
		{at: 40, published: true},
		{at: 40, read: probeRes(false)}, // strike 1
		{at: 41, ingest: []Entry{put(3, "j", v1)}, reads: []string{"j@0"}},
		{at: 41, read: errRes("j"), reads: []string{"probe@0"}, parked: n(2)}, // strike 2: 2 taken back
		{at: 41, read: probeRes(true)},
		{at: 80, tick: true, reads: []string{"j@0", "a@0"}},
		{at: 80, read: errRes("a"), reads: []string{"probe@0"}}, // 2 again: no letter
	})
}

// TestCoreWeakerLevelDecidesNothing: only reads at the strongest level
// decide unsure read failures (which failed there): y's read at a weaker
// level, asked after a's failure, does not confirm it, and the probe and
// j failing at the strongest level after it take it back.
func TestCoreWeakerLevelDecidesNothing(t *testing.T) {
	t.Parallel()
	p := failParams
	p.Levels, p.MaxAttempts = 2, 2
	v1 := ver(0, 0)
	run(t, p, 0, nil, []step{
		{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
		{ingest: []Entry{put(1, "k", v1)}, reads: []string{"k@0"}},
		{read: res("k", row(v1, "k")), events: []string{ev("k", v1, 1)}},
		{published: true},
		{read: errRes("a"), reads: []string{"a@1"}},
		{read: errRes("a"), reads: []string{"probe@1"}, parked: n(1)}, // 1 (k served level 0), unsure
		{ingest: []Entry{put(2, "y", v1)}, reads: []string{"y@0"}},
		{read: res("y", row(v1, "y")), events: []string{ev("y", v1, 1)}}, // level 0: no confirmation
		{published: true},
		{read: probeRes(false)}, // strike 1
		{at: 1, ingest: []Entry{put(3, "j", v1)}, reads: []string{"j@0"}},
		{at: 1, read: errRes("j"), reads: []string{"j@1"}},
		{at: 1, read: errRes("j"), reads: []string{"probe@1"}, parked: n(2)}, // strike 2: a's 1 taken back
		{at: 1, read: probeRes(true)},
		{at: 40, tick: true, reads: []string{"a@0", "j@0"}},
		{at: 40, read: errRes("a"), reads: []string{"a@1"}},
		{at: 40, read: errRes("a"), reads: []string{"probe@1"}}, // 1 again, unsure: no letter
	})
}
