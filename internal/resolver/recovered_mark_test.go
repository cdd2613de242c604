package resolver

import "testing"

// TestCoreRecoveredKeyCountsFromThen: a key that got through (and stays,
// with an intent that came meanwhile) starts its next failure streak
// from then: its own read that succeeded before does
// not make its next failed round count, a probe that succeeds after that
// round does.
func TestCoreRecoveredKeyCountsFromThen(t *testing.T) {
	t.Parallel()
	v1, v2 := ver(0, 0), ver(1, 0)
	two := failParams
	two.MaxAttempts = 2
	run(t, two, 0, nil, []step{
		{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
		{read: res("a", row(v1, "a")), events: []string{ev("a", v1, 1)}},
		{ingest: []Entry{put(1, "a", v2)}},
		{published: true, commit: 1, reads: []string{"a@0"}},          // a's state lives on: it reads v2
		{read: errRes("a"), reads: []string{"probe@0"}, parked: n(1)}, // nothing served since a got through: not counted
		{read: probeRes(true)},
		{at: 40, tick: true, reads: []string{"a@0"}},
		{at: 40, read: errRes("a"), reads: []string{"probe@0"}, parked: n(1)}, // 1, unsure: no letter
		{at: 40, read: probeRes(true)},
		{at: 80, tick: true, reads: []string{"a@0"}},
		{at: 80, read: errRes("a"), letters: []string{letter("a", "read", v2)}}, // 2
	})
}
