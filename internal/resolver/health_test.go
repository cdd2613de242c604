package resolver

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/health"
)

// healthCall is what a partition told its health sink: a condition set
// (reason) or cleared.
type healthCall struct {
	component, reason string
	cleared           bool
}

type recordingSink struct{ calls []healthCall }

func (s *recordingSink) Set(component string, st health.State, reason, _ string) {
	if st != health.Degraded {
		panic("only Degraded is raised")
	}
	s.calls = append(s.calls, healthCall{component: component, reason: reason})
}

func (s *recordingSink) Clear(component string) {
	s.calls = append(s.calls, healthCall{component: component, cleared: true})
}

// TestObserveHealth: a partition is degraded once its oldest unresolved
// intent has waited longer than stallAfter (at exactly stallAfter it is
// not stalled yet) or while one of its keys is parked, and cleared, once,
// when neither holds; with nothing unresolved nothing is raised.
func TestObserveHealth(t *testing.T) {
	t.Parallel()
	const stallAfter = 10 * time.Second
	seen := t0.Add(time.Second)
	stalled := "the oldest unresolved intent of table t partition 0 has waited"
	parked := "1 keys of table t partition 0 are parked"
	type check struct {
		name   string
		at     time.Time
		action func(l *loop, at time.Time) // before observing
		want   []healthCall                // the sink's calls since the previous check
	}
	checks := []check{
		{name: "nothing unresolved", at: t0.Add(time.Hour)},
		{name: "an intent seen", at: seen, action: func(l *loop, at time.Time) {
			l.core.Ingest(at, []Entry{put(0, "k", ver(0, 1))})
		}},
		{name: "waited exactly stallAfter", at: seen.Add(stallAfter)},
		{name: "waited longer", at: seen.Add(stallAfter + time.Nanosecond), want: []healthCall{{reason: stalled}}},
		{name: "its key resolved", at: seen.Add(stallAfter + 2*time.Nanosecond), action: func(l *loop, at time.Time) {
			r := l.core.Ready()
			l.core.ReadDone(at, ReadResult{Key: []byte("k"), Seq: r.Reads[0].Seq, Found: true, Row: *row(ver(0, 1), "v")})
			r = l.core.Ready()
			l.core.Published(at, r.Events)
		}, want: []healthCall{{cleared: true}}},
		{name: "still fine", at: seen.Add(stallAfter + 3*time.Nanosecond)},
		{name: "a key parked", at: seen.Add(2 * stallAfter), action: func(l *loop, at time.Time) {
			l.core.Ingest(at, []Entry{put(1, "p", ver(1, 1))})
			r := l.core.Ready()
			l.core.ReadDone(at, ReadResult{Key: []byte("p"), Seq: r.Reads[0].Seq, Err: errors.New("down")})
		}, want: []healthCall{{reason: parked}}},
	}
	sink := &recordingSink{}
	l := testLoop(t, Config{Health: sink}, nil)
	l.health.stallAfter = stallAfter
	for _, c := range checks {
		if c.action != nil {
			c.action(l, c.at)
		}
		sink.calls = nil
		l.observeHealth(c.at)
		if len(sink.calls) != len(c.want) {
			t.Fatalf("%s: the sink got %+v, want %+v", c.name, sink.calls, c.want)
		}
		for i, got := range sink.calls {
			w := c.want[i]
			if got.component != "resolver/t/0" || got.cleared != w.cleared || !strings.HasPrefix(got.reason, w.reason) {
				t.Fatalf("%s: the sink got %+v, want %+v", c.name, sink.calls, c.want)
			}
		}
	}
}

// TestStallFloor: a partition counts as stalled no sooner than twice what
// an intent may wait without a fault: its window and its recheck.
func TestStallFloor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		window  time.Duration
		recheck float64
		want    time.Duration
	}{
		{10 * time.Second, 0, 20 * time.Second},
		{10 * time.Second, 1, 40 * time.Second},
		{200 * time.Millisecond, 0.5, 600 * time.Millisecond},
	} {
		if got := stallFloor(tc.window, tc.recheck); got != tc.want {
			t.Errorf("stallFloor(%s, %g) = %s, want %s", tc.window, tc.recheck, got, tc.want)
		}
	}
}

// TestHealthSaysLettersUnwritten: a key whose dead letter cannot be
// written (the dead-letter topic full, over a limit, deleted) is parked,
// and the condition says so and what to do. It said that the key's store
// reads or publishes fail and that it would go to the dead-letter queue,
// which is what fails.
func TestHealthSaysLettersUnwritten(t *testing.T) {
	t.Parallel()
	sink := &recordingSink{}
	l := testLoop(t, Config{Health: sink}, nil)
	l.core.Ingest(t0, []Entry{put(0, "p", ver(0, 1))})
	r := l.core.Ready()
	l.core.ReadDone(t0, ReadResult{Key: []byte("p"), Seq: r.Reads[0].Seq, Found: true, Row: *row(ver(0, 1), "v")})
	r = l.core.Ready()
	l.core.PublishFailed(t0, []PublishFailure{{Event: r.Events[0], Err: errors.New("too big"), Permanent: true, Alone: true}})
	r = l.core.Ready()
	if len(r.Letters) != 1 {
		t.Fatalf("setup: %d letters", len(r.Letters))
	}
	l.finished(&pubJob{letters: r.Letters, committed: -1, err: errors.New("disk full")})
	l.observeHealth(t0)
	if len(sink.calls) != 1 || !strings.Contains(sink.calls[0].reason, "dead letters cannot be written") {
		t.Fatalf("the sink got %+v, want a condition saying the dead letters cannot be written", sink.calls)
	}
	// Written at last: the key is settled and the condition cleared.
	l.core.Ready()
	l.core.Tick(time.Now().Add(time.Minute)) // the loop hands the core its clock

	r = l.core.Ready()
	if len(r.Letters) != 1 {
		t.Fatalf("the letter is not written again: %+v", r)
	}
	l.finished(&pubJob{letters: r.Letters, committed: -1})
	sink.calls = nil
	l.observeHealth(t0.Add(time.Minute))
	if len(sink.calls) != 1 || !sink.calls[0].cleared {
		t.Fatalf("the sink got %+v, want the condition cleared", sink.calls)
	}
}
