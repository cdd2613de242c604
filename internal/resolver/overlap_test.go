package resolver

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
)

// gatePublisher holds each call until its gate opens: a job of events by
// the keys it carries ("a,b"), a commit by "commit", letters by
// "letters". It records the calls that started.
type gatePublisher struct {
	mu      sync.Mutex
	gates   map[string]chan struct{}
	started []string
}

func (p *gatePublisher) wait(ctx context.Context, name string) {
	p.mu.Lock()
	p.started = append(p.started, name)
	g := p.gate(name)
	p.mu.Unlock()
	select {
	case <-g:
	case <-ctx.Done():
	}
}

// gate returns the gate of name; the caller holds mu.
func (p *gatePublisher) gate(name string) chan struct{} {
	if p.gates == nil {
		p.gates = map[string]chan struct{}{}
	}
	g := p.gates[name]
	if g == nil {
		g = make(chan struct{})
		p.gates[name] = g
	}
	return g
}

func (p *gatePublisher) open(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.gate(name))
}

func (p *gatePublisher) events(ctx context.Context, evs []intent.Event, _ int64, _ bool) pubResult {
	p.wait(ctx, keysOf(evs))
	return pubResult{}
}

func (p *gatePublisher) letters(ctx context.Context, _ []*wailv1.DeadLetter, _ int64) (bool, error) {
	p.wait(ctx, "letters")
	return false, nil
}

func (p *gatePublisher) commit(ctx context.Context, _ int64) error {
	p.wait(ctx, "commit")
	return nil
}

// onTheirWay names the loop's jobs on their way: the first, the extra
// one and the commit apart ("-": none).
func onTheirWay(l *loop) string {
	name := func(j *pubJob) string {
		switch {
		case j == nil:
			return "-"
		case j.commitOnly:
			return fmt.Sprintf("commit@%d", j.offset)
		case len(j.letters) > 0:
			return "letters"
		}
		return keysOf(j.events)
	}
	return strings.Join([]string{name(l.job), name(l.extra), name(l.committing)}, " ")
}

// TestOverlapJobs: with overlap, a second job of events starts while the
// first is on its way (a third does not), a due commit goes apart from
// them, letters wait until no events are on their way and go first, and
// no events go beside letters. Without overlap the same steps run one
// job at a time, the commit in turn.
func TestOverlapJobs(t *testing.T) {
	t.Parallel()
	ev := func(k string) intent.Event {
		return intent.Event{Table: "t", Key: []byte(k), Op: intent.Upsert, Version: 1, Value: []byte("v")}
	}
	type step struct {
		do   string // "queue K", "commit", "letter", "open NAME"
		want string // onTheirWay after the step
	}
	cases := []struct {
		name    string
		overlap bool
		steps   []step
	}{
		{name: "overlap", overlap: true, steps: []step{
			{"queue a", "a - -"},
			{"queue b", "a b -"},
			{"queue c", "a b -"}, // two on their way: c waits
			{"commit", "a b commit@1"},
			{"letter", "a b commit@1"},
			{"open commit", "a b -"},
			{"open b", "a - -"}, // letters queued: no events beside a
			{"open a", "letters - -"},
			{"open letters", "c - -"},
			{"open c", "- - -"},
		}},
		{name: "one at a time", steps: []step{
			{"queue a", "a - -"},
			{"queue b", "a - -"},
			{"commit", "a - -"},
			{"letter", "a - -"},
			{"open a", "commit@1 - -"},
			{"open commit", "letters - -"},
			{"open letters", "b - -"},
			{"open b", "- - -"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := testLoop(t, Config{}, nil)
			pub := &gatePublisher{}
			l.pub, l.overlap = pub, c.overlap
			for i, s := range c.steps {
				verb, arg, _ := strings.Cut(s.do, " ")
				switch verb {
				case "queue":
					l.pubQ = append(l.pubQ, ev(arg))
					l.startJob()
				case "commit":
					l.core.Ingest(t0, []Entry{{Offset: int64(l.core.Next()), Invalid: true}})
					l.commitDue = true
					l.startJob()
				case "letter":
					k := []byte("l")
					l.letterQ = append(l.letterQ, Letter{ID: 1, Key: k, Kind: LetterPublish,
						Intents: []intent.Intent{{Table: "t", Key: k, Op: intent.Upsert, Version: 1}}, Offsets: []int64{9}})
					l.startJob()
				case "open":
					pub.open(arg)
					l.finished(<-l.jobDone)
				}
				if got := onTheirWay(l); got != s.want {
					t.Fatalf("step %d (%s): on their way %q, want %q (publisher calls %v)", i, s.do, got, s.want, pub.started)
				}
			}
			if l.commit != 1 || len(l.pubQ) > 0 || len(l.letterQ) > 0 || l.publishing() {
				t.Fatalf("at the end: committed %d, %d events and %d letters queued, publishing %v", l.commit, len(l.pubQ), len(l.letterQ), l.publishing())
			}
		})
	}
}

// TestOverlapCommitDue: with overlap, a due commit whose offset did not
// move is dropped (not started later when it moves), and one due while
// a commit is on its way starts when that one ends.
func TestOverlapCommitDue(t *testing.T) {
	t.Parallel()
	l := testLoop(t, Config{}, nil)
	pub := &gatePublisher{}
	l.pub, l.overlap = pub, true
	l.commitDue = true
	l.startJob()
	if l.commitDue || l.committing != nil {
		t.Fatalf("a due commit that did not move: due %v, on its way %v", l.commitDue, l.committing != nil)
	}
	l.core.Ingest(t0, []Entry{{Offset: 0, Invalid: true}})
	l.startJob()
	if l.committing != nil {
		t.Fatal("a commit started although none was due")
	}
	l.commitDue = true
	l.startJob()
	if l.committing == nil || l.committing.offset != 1 {
		t.Fatalf("due commit: %s", onTheirWay(l))
	}
	l.core.Ingest(t0, []Entry{{Offset: 1, Invalid: true}})
	l.commitDue = true
	l.startJob()
	if !l.commitDue || l.committing.offset != 1 {
		t.Fatalf("a commit due while one is on its way: due %v, %s", l.commitDue, onTheirWay(l))
	}
	pub.open("commit")
	l.finished(<-l.jobDone)
	if l.commit != 1 || l.committing == nil || l.committing.offset != 2 || l.commitDue {
		t.Fatalf("after the first commit: committed %d, %s, due %v; want 1, the next commit@2 on its way", l.commit, onTheirWay(l), l.commitDue)
	}
	l.finished(<-l.jobDone)
	if l.commit != 2 || l.publishing() {
		t.Fatalf("after the second commit: committed %d, publishing %v", l.commit, l.publishing())
	}
}

// splitBus is a real bus whose appends of several events write the first
// half of them and then fail (one event alone lands); an append whose first key is in hold waits,
// after its half landed, until that gate is closed (landed is told when
// it waits). With blind set, LastVersionsOf fails.
type splitBus struct {
	*eventbus.Bus
	mu     sync.Mutex
	hold   map[string]chan struct{}
	landed chan string
	blind  bool
}

func (b *splitBus) Publish(ctx context.Context, table string, evs []intent.Event) error {
	if len(evs) == 1 {
		return b.Bus.Publish(ctx, table, evs)
	}
	if err := b.Bus.Publish(ctx, table, evs[:len(evs)/2]); err != nil {
		return err
	}
	b.mu.Lock()
	g := b.hold[string(evs[0].Key)]
	b.mu.Unlock()
	if g != nil {
		b.landed <- string(evs[0].Key)
		<-g
	}
	return fmt.Errorf("after a partial write: %w", errFlaky)
}

func (b *splitBus) LastVersionsOf(ctx context.Context, table string, p int32, from int64, want func([]byte) bool) (eventbus.Retained, error) {
	b.mu.Lock()
	blind := b.blind
	b.mu.Unlock()
	if blind {
		return eventbus.Retained{}, errFlaky
	}
	return b.Bus.LastVersionsOf(ctx, table, p, from, want)
}

func (b *splitBus) setBlind(v bool) {
	b.mu.Lock()
	b.blind = v
	b.mu.Unlock()
}

// TestPlainPublisherOverlappingFailures: two appends of a plain publisher
// on their way at the same time fail after half of each landed; the one
// that started first fails last, while the events of the other are still
// uncertain (the check failed). Its check reads from where it started,
// the earlier end: what landed of both is known landed, and in the end
// every event is on the bus once.
func TestPlainPublisherOverlappingFailures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newTestEnv(ctx, t, "overlap")
	gate := make(chan struct{})
	bus := &splitBus{Bus: env.bus, hold: map[string]chan struct{}{"a": gate}, landed: make(chan string, 1)}
	r := New(env.log, env.st, bus, Config{Group: "g"})
	p := newPlainPublisher(r, env.tb.Name, 0)
	first := events(env.tb.Name, "a", "b", "c", "d")
	second := events(env.tb.Name, "e", "f", "g", "h")

	res := make(chan pubResult, 1)
	go func() { res <- p.events(ctx, first, 0, false) }()
	<-bus.landed // a, b landed; the first append has not returned yet
	bus.setBlind(true)
	r2 := p.events(ctx, second, 0, false)
	if r2.err == nil || !r2.uncertain || len(r2.failed) != 4 {
		t.Fatalf("second append, check blind: failed %q uncertain %v err %v; want all four, uncertain", keysOf(r2.failed), r2.uncertain, r2.err)
	}
	bus.setBlind(false)
	close(gate)
	r1 := <-res
	if r1.err == nil || r1.uncertain || keysOf(r1.failed) != "c,d" {
		t.Fatalf("first append: failed %q uncertain %v err %v; want c,d certain", keysOf(r1.failed), r1.uncertain, r1.err)
	}

	// Again: e, f are not appended again, g and c land, h and d fail;
	// then h and d land alone.
	again := []struct {
		evs  []intent.Event
		want string
	}{{r2.failed, "h"}, {r1.failed, "d"}, {r2.failed[3:], ""}, {r1.failed[1:], ""}}
	for _, a := range again {
		if res := p.events(ctx, a.evs, 0, false); keysOf(res.failed) != a.want || res.uncertain {
			t.Fatalf("again %s: failed %q uncertain %v, want %q", keysOf(a.evs), keysOf(res.failed), res.uncertain, a.want)
		}
	}
	got := onBus(ctx, t, env)
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		if got[k] != 1 {
			t.Errorf("key %s has %d events on the bus, want 1 (all: %v)", k, got[k], got)
		}
	}
}
