package resolver

import (
	"testing"
	"time"
)

// catchUp is an intent of reconcile or redrive: the stored version v, the
// key's last version on the bus when it was decided (floor, at least 1:
// intent.NoEventFloor), logged at created (ms after t0).
func catchUp(off int64, key string, v, floor uint64, created int) Entry {
	e := put(off, key, v)
	e.Intent.PublishedFloor = floor
	e.Intent.CreatedAt = t0.Add(time.Duration(created) * time.Millisecond)
	e.Intent.ID = "reconcile-1"
	return e
}

// TestCoreLateCatchUpIntent: an intent of reconcile or redrive is safe to
// resolve only while the core still remembers every event published since
// the bus was scanned for its floor (DESIGN.md, "Redrive and reconcile").
// One whose append landed minutes late, after the core forgot the key's
// newer event, would publish that event's version a second time: the core
// dead-letters it instead (redrive it: that fences, scans and logs again).
func TestCoreLateCatchUpIntent(t *testing.T) {
	t.Parallel()
	p := Params{Table: "t", Window: 10 * time.Second, Levels: 1, Horizon: 2 * time.Minute, BackoffMin: time.Millisecond}
	v1, v2, v3 := ver(0, 0), ver(1000, 0), ver(3000, 0)
	later := ver(180_000, 0) // 3 min: the core forgets a's v3 (horizon 2 min)
	tests := []struct {
		name  string
		steps []step
	}{{
		// Reconcile scanned the bus (a's last event v1), read v2 from the
		// store and logged its intent at 2 s; the append hung. a was
		// written again (v3, published), and forgotten past the horizon.
		// The intent landing at 4 min would republish v3.
		name: "landed after the core forgot the key: dead-lettered, not published again",
		steps: []step{
			{at: 3000, ingest: []Entry{put(0, "a", v3)}, reads: []string{"a@0"}},
			{at: 3000, read: res("a", row(v3, "x")), events: []string{ev("a", v3, 1)}},
			{at: 3000, published: true, commit: 1},
			{at: 180_000, ingest: []Entry{put(1, "b", later)}, reads: []string{"b@0"}},
			{at: 180_000, read: res("b", row(later, "y")), events: []string{ev("b", later, 1)}},
			{at: 180_000, published: true, commit: 2},
			{at: 240_000, ingest: []Entry{catchUp(2, "a", v2, v1, 2000)}, reads: []string{"a@0"}},
			{at: 240_000, read: res("a", row(v3, "x")), letters: []string{letter("a", "read", v2)}},
			{at: 240_000, lettered: true, commit: 3},
		},
	}, {
		name: "landed in time: published",
		steps: []step{
			{at: 3000, ingest: []Entry{catchUp(0, "a", v2, v1, 2000)}, reads: []string{"a@0"}},
			{at: 3000, read: res("a", row(v2, "x")), events: []string{ev("a", v2, 1)}},
			{at: 3000, published: true, commit: 1},
		},
	}, {
		// The key has no event on the bus (floor 1, intent.NoEventFloor): the
		// same holds.
		name: "no event on the bus, landed late: dead-lettered",
		steps: []step{
			{at: 3000, ingest: []Entry{put(0, "a", v3)}, reads: []string{"a@0"}},
			{at: 3000, read: res("a", row(v3, "x")), events: []string{ev("a", v3, 1)}},
			{at: 3000, published: true, commit: 1},
			{at: 180_000, ingest: []Entry{put(1, "b", later)}, reads: []string{"b@0"}},
			{at: 180_000, read: res("b", row(later, "y")), events: []string{ev("b", later, 1)}},
			{at: 180_000, published: true, commit: 2},
			{at: 240_000, ingest: []Entry{catchUp(2, "a", v2, 1, 2000)}, reads: []string{"a@0"}},
			{at: 240_000, read: res("a", row(v3, "x")), letters: []string{letter("a", "read", v2)}},
			{at: 240_000, lettered: true, commit: 3},
		},
	}, {
		// Late, but a write of the key pending with it: its event is as
		// safe as any (the write's own intent asks for it).
		name: "late, covered together with a write's intent: published",
		steps: []step{
			{at: 180_000, ingest: []Entry{put(0, "b", later)}, reads: []string{"b@0"}},
			{at: 180_000, read: res("b", row(later, "y")), events: []string{ev("b", later, 1)}},
			{at: 180_000, published: true, commit: 1},
			{at: 240_000, ingest: []Entry{put(1, "a", ver(239_000, 0)), catchUp(2, "a", v2, v1, 2000)}, reads: []string{"a@0"}},
			{at: 240_000, read: res("a", row(ver(239_000, 0), "z")), events: []string{ev("a", ver(239_000, 0), 2)}},
			{at: 240_000, published: true, commit: 3},
		},
	}, {
		// Late, but the core remembers an event at or above its version:
		// covered at once.
		name: "late, covered by a remembered event: resolved at once",
		steps: []step{
			{at: 180_000, ingest: []Entry{put(0, "a", later)}, reads: []string{"a@0"}},
			{at: 180_000, read: res("a", row(later, "x")), events: []string{ev("a", later, 1)}},
			{at: 180_000, published: true, commit: 1},
			{at: 240_000, ingest: []Entry{catchUp(1, "a", v2, v1, 2000)}, commit: 2},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			run(t, p, 0, nil, tt.steps)
		})
	}
}

// TestCoreLateCatchUpAfterRestart: after a restart the core remembers the
// events from when it recovered the bus on (RememberSince): an intent
// logged a quarter horizon or more before that is late too.
func TestCoreLateCatchUpAfterRestart(t *testing.T) {
	t.Parallel()
	p := Params{Table: "t", Window: 10 * time.Second, Levels: 1, Horizon: 2 * time.Minute, BackoffMin: time.Millisecond}
	v1, v2, v3 := ver(0, 0), ver(1000, 0), ver(3000, 0)
	for _, tt := range []struct {
		name      string
		recovered int // ms after t0: the bus was recovered from then on
		want      step
	}{
		{"recovered from a quarter horizon before the intent's scan", -100_000, step{events: []string{ev("a", v3, 1)}}},
		{"recovered from after events it may need", -60_000, step{letters: []string{letter("a", "read", v2)}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewCore(p, 0, nil)
			c.RememberSince(t0.Add(time.Duration(tt.recovered) * time.Millisecond))
			h := &harness{t: t, c: c, lastSeq: map[string]uint64{}}
			now := t0.Add(200 * time.Second)
			c.Ingest(now, []Entry{catchUp(0, "a", v2, v1, 2000)})
			h.check(0, c.Ready(), step{reads: []string{"a@0"}})
			c.ReadDone(now, ReadResult{Key: []byte("a"), Seq: h.lastSeq["a"], Found: true, Row: *row(v3, "x")})
			h.check(1, c.Ready(), tt.want)
		})
	}
}
