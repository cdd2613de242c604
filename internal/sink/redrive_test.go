package sink

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/dlq"
)

// letters lists a sink's unsettled dead letters.
func letters(t *testing.T, m *Manager, name string) []*wailv1.DeadLetterEntry {
	t.Helper()
	q, err := m.DeadLetters(context.Background(), testTable, name)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := q.List(context.Background(), dlq.ListOptions{After: -1})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// received counts the events of key at version the endpoint took.
func received(ep *endpoint, key string, version uint64) int {
	n := 0
	for _, e := range ep.events() {
		if string(e.Key) == key && e.Version == version {
			n++
		}
	}
	return n
}

// TestSinkDeadLetterRedrive: an endpoint answering 500 with a 1 MiB body
// for one key gets that key's event dead-lettered (a SINK letter with the
// status and a bounded excerpt of the body); once the endpoint is fixed,
// redrive delivers it exactly once, and a second redrive sends nothing. A
// letter whose key had a newer event delivered since is settled
// SUPERSEDED and never sent; of two letters of one key, redrive --all
// sends only the newer. Per key, what the endpoint received never goes
// back in version.
func TestSinkDeadLetterRedrive(t *testing.T) {
	f := newFixture(t, 2)
	ep := newEndpoint(t, "")
	var failing atomic.Bool
	failing.Store(true)
	huge := strings.Repeat("E", 1<<20)
	ep.fail = func(w http.ResponseWriter, r *http.Request, b *wailv1.SinkBatch) bool {
		if !failing.Load() || string(b.Events[0].Key) != "poison" {
			return false
		}
		http.Error(w, huge, http.StatusInternalServerError)
		return true
	}
	m := f.manager()
	defer m.Close()
	ctx := context.Background()
	if _, _, err := m.Create(ctx, &wailv1.Sink{Table: testTable, Name: "r", Url: ep.url(), Start: "beginning",
		MaxBatchEvents: 1, MaxAttempts: 2, BackoffMinMs: 5, BackoffMaxMs: 10}); err != nil {
		t.Fatal(err)
	}
	waitLetters := func(n int) []*wailv1.DeadLetterEntry {
		var ls []*wailv1.DeadLetterEntry
		waitFor(t, "dead letters", time.Minute, func() bool { ls = letters(t, m, "r"); return len(ls) == n })
		return ls
	}
	redrive := func(sel dlq.Selection) []*wailv1.DeadLetterResolution {
		t.Helper()
		res, err := resolutions(m.Redrive(ctx, testTable, "r", sel))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	// 1. One letter, with the cause; the sink went on.
	f.publish(event("poison", 1), event("ok", 2))
	ls := waitLetters(1)
	l := ls[0].Letter
	if l.Kind != wailv1.DeadLetterKind_DEAD_LETTER_KIND_SINK || string(l.Key) != "poison" || l.Event.GetVersion() != 1 ||
		l.HttpStatus != 500 || l.Attempts != 2 || l.Sink != "r" || l.EventOffset < 0 {
		t.Fatalf("letter %v", l)
	}
	if !strings.Contains(l.Error, "HTTP 500: EEEE") || len(l.Error) > 1024 {
		t.Fatalf("error of %d bytes, want HTTP 500 and an excerpt of at most 1 KiB: %.200q", len(l.Error), l.Error)
	}
	waitFor(t, "the event after the poison one", time.Minute, func() bool { return received(ep, "ok", 2) == 1 })

	// 2. Not while paused; then fixed: delivered once, and a second
	// redrive sends nothing.
	if _, err := m.SetPaused(ctx, testTable, "r", true); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Redrive(ctx, testTable, "r", dlq.Selection{Offsets: []int64{ls[0].Offset}}); !errors.Is(err, ErrNotRunning) ||
		!strings.Contains(err.Error(), "wail sink resume") {
		t.Fatalf("redrive of a paused sink: %v, want ErrNotRunning saying to resume it", err)
	}
	if _, err := m.SetPaused(ctx, testTable, "r", false); err != nil {
		t.Fatal(err)
	}
	failing.Store(false)
	var res []*wailv1.DeadLetterResolution
	waitFor(t, "the sink to run again", time.Minute, func() bool {
		var err error
		res, err = resolutions(m.Redrive(ctx, testTable, "r", dlq.Selection{Offsets: []int64{ls[0].Offset}}))
		return !errors.Is(err, ErrNotRunning)
	})
	if len(res) != 1 || res[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN || res[0].RedriveVersion != 1 {
		t.Fatalf("redrive: %v", res)
	}
	if n := received(ep, "poison", 1); n != 1 {
		t.Fatalf("poison@1 received %d times, want once", n)
	}
	again := redrive(dlq.Selection{Offsets: []int64{ls[0].Offset}})
	if len(again) != 1 || again[0].AtUs != res[0].AtUs {
		t.Fatalf("second redrive: %v, want the first resolution as it was", again)
	}
	if n := received(ep, "poison", 1); n != 1 || len(letters(t, m, "r")) != 0 {
		t.Fatalf("after a second redrive poison@1 received %d times, want once", n)
	}

	// 3. Superseded: poison@3 dead-lettered, then poison@4 delivered.
	failing.Store(true)
	f.publish(event("poison", 3))
	ls = waitLetters(1)
	failing.Store(false)
	f.publish(event("poison", 4))
	waitFor(t, "poison@4", time.Minute, func() bool { return received(ep, "poison", 4) == 1 })
	res = redrive(dlq.Selection{All: true})
	if len(res) != 1 || res[0].Offset != ls[0].Offset || res[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_SUPERSEDED ||
		res[0].SupersededByVersion != 4 {
		t.Fatalf("redrive of a superseded letter: %v", res)
	}
	if received(ep, "poison", 3) != 0 {
		t.Fatal("a superseded letter was sent")
	}

	// 4. Two letters of one key: only the newer is sent.
	failing.Store(true)
	f.publish(event("poison", 5), event("poison", 6))
	waitLetters(2)
	failing.Store(false)
	res = redrive(dlq.Selection{All: true})
	if len(res) != 2 || res[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_SUPERSEDED || res[0].SupersededByVersion != 6 ||
		res[1].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN || res[1].RedriveVersion != 6 {
		t.Fatalf("redrive --all of two letters of a key: %v", res)
	}
	if received(ep, "poison", 5) != 0 || received(ep, "poison", 6) != 1 {
		t.Fatalf("received poison@5 %d times, @6 %d times; want 0 and 1", received(ep, "poison", 5), received(ep, "poison", 6))
	}
	checkOrder(t, ep.events())

	// 5. An unknown sink.
	for name, err := range map[string]error{
		"letters": func() error { _, err := m.DeadLetters(ctx, testTable, "nope"); return err }(),
		"redrive": func() error { _, err := m.Redrive(ctx, testTable, "nope", dlq.Selection{All: true}); return err }(),
	} {
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "wail sink ls "+testTable) {
			t.Errorf("%s of an unknown sink: %v, want ErrNotFound naming `wail sink ls`", name, err)
		}
	}
}

// TestSinkRedriveEndpointStillDown: a redrive while the endpoint still
// fails sends one attempt, reports the endpoint's answer and leaves the
// letter unsettled.
func TestSinkRedriveEndpointStillDown(t *testing.T) {
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	ep.fail = func(w http.ResponseWriter, r *http.Request, b *wailv1.SinkBatch) bool {
		if string(b.Events[0].Key) != "poison" {
			return false
		}
		http.Error(w, "still broken", http.StatusServiceUnavailable)
		return true
	}
	m := f.manager()
	defer m.Close()
	ctx := context.Background()
	if _, _, err := m.Create(ctx, &wailv1.Sink{Table: testTable, Name: "d", Url: ep.url(), Start: "beginning",
		MaxBatchEvents: 1, MaxAttempts: 1, BackoffMinMs: 5, BackoffMaxMs: 10}); err != nil {
		t.Fatal(err)
	}
	f.publish(event("poison", 1))
	var ls []*wailv1.DeadLetterEntry
	waitFor(t, "the dead letter", time.Minute, func() bool { ls = letters(t, m, "d"); return len(ls) == 1 })
	var err error
	waitFor(t, "the sink to hold its partition", time.Minute, func() bool {
		_, err = m.Redrive(ctx, testTable, "d", dlq.Selection{All: true})
		return !errors.Is(err, ErrNotRunning)
	})
	if !errors.Is(err, ErrEndpoint) || !strings.Contains(err.Error(), "HTTP 503: still broken") || !strings.Contains(err.Error(), "stays unsettled") {
		t.Fatalf("redrive against a failing endpoint: %v", err)
	}
	if got := letters(t, m, "d"); len(got) != 1 {
		t.Fatalf("%d unsettled letters after a failed redrive, want 1", len(got))
	}
}

// TestSinkLargeEventLetter: an event over maxLetterEvent is dead-lettered
// without its payload (event_stripped), and redrive sends it whole, read
// from the bus.
func TestSinkLargeEventLetter(t *testing.T) {
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	var failing atomic.Bool
	failing.Store(true)
	ep.fail = func(w http.ResponseWriter, r *http.Request, b *wailv1.SinkBatch) bool {
		if !failing.Load() {
			return false
		}
		http.Error(w, "no", http.StatusBadRequest)
		return true
	}
	m := f.manager()
	defer m.Close()
	ctx := context.Background()
	if _, _, err := m.Create(ctx, &wailv1.Sink{Table: testTable, Name: "big", Url: ep.url(), Start: "beginning", MaxBatchEvents: 1}); err != nil {
		t.Fatal(err)
	}
	big := event("big", 1)
	big.Value = []byte(strings.Repeat("v", maxLetterEvent+1))
	f.publish(big)
	var ls []*wailv1.DeadLetterEntry
	waitFor(t, "the dead letter", time.Minute, func() bool { ls = letters(t, m, "big"); return len(ls) == 1 })
	if l := ls[0].Letter; !l.EventStripped || l.Event.Value != nil || l.Event.Version != 1 || string(l.Event.Key) != "big" {
		t.Fatalf("letter of a large event: stripped %v, %d bytes of value, v%d", l.EventStripped, len(l.Event.Value), l.Event.Version)
	}
	failing.Store(false)
	var res []*wailv1.DeadLetterResolution
	var err error
	waitFor(t, "the sink to hold its partition", time.Minute, func() bool {
		res, err = resolutions(m.Redrive(ctx, testTable, "big", dlq.Selection{All: true}))
		return !errors.Is(err, ErrNotRunning)
	})
	if err != nil || len(res) != 1 || res[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN {
		t.Fatalf("redrive: %v, %v", res, err)
	}
	got := ep.events()
	if len(got) != 1 || len(got[0].Value) != maxLetterEvent+1 {
		t.Fatalf("the endpoint received %d events (want 1, with its %d bytes of value)", len(got), maxLetterEvent+1)
	}
}

// TestSinkRedriveHoldsThePartition: a newer event of the letter's key
// published after redrive read the bus, and before it sent the letter,
// is delivered after the letter, never before: redrive holds the
// partition. (Without the lock the runner delivers it during the 300 ms
// the hook waits, and the endpoint gets v1 after v2.)
func TestSinkRedriveHoldsThePartition(t *testing.T) {
	s := newRefusingSink(t, 1, "hold", func(key string) bool { return key == "hot" })
	f, ep, m, ctx := s.f, s.ep, s.m, context.Background()
	f.publish(event("hot", 1))
	waitFor(t, "the dead letter", time.Minute, func() bool { return len(letters(t, m, "hold")) == 1 })
	s.failing.Store(false)
	hooked := 0
	beforeResend = func() {
		hooked++
		f.publish(event("hot", 2))
		time.Sleep(300 * time.Millisecond) // the runner would deliver it now, were the partition not held
	}
	defer func() { beforeResend = func() {} }()
	var res []*wailv1.DeadLetterResolution
	var err error
	waitFor(t, "the redrive", time.Minute, func() bool {
		res, err = resolutions(m.Redrive(ctx, testTable, "hold", dlq.Selection{All: true}))
		return !errors.Is(err, ErrNotRunning)
	})
	if err != nil || len(res) != 1 || res[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN || hooked != 1 {
		t.Fatalf("redrive: %v, %v (hook ran %d times)", res, err, hooked)
	}
	waitFor(t, "hot@2", time.Minute, func() bool { return received(ep, "hot", 2) == 1 })
	checkOrder(t, ep.events())
	if got := ep.events(); len(got) != 2 || got[0].Version != 1 || got[1].Version != 2 {
		t.Fatalf("the endpoint received %v, want hot@1 then hot@2", got)
	}
}

// resolutions is the resolutions of an answer (a redrive's or a drop's),
// with its error.
func resolutions(a dlq.Answer, err error) ([]*wailv1.DeadLetterResolution, error) {
	return a.Resolutions, err
}
