package resolver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// faultyBus is a real bus whose appends fail as told: an append with a
// poison key fails (before writing anything); with landHalf set, the next
// append writes its first half and then fails, as a log that timed out
// after a partial write does; with down set, every append fails; with
// blind set, LastVersions fails too. With maxBatch set, an append of more
// events fails whole with ErrTooLarge (a batch over the log's limit);
// with tooLargeTail set, an append of more than one event writes all but
// the last, which fails with ErrTooLarge (a producer batch of its own that
// the broker refused).
type faultyBus struct {
	*eventbus.Bus
	mu           sync.Mutex
	poison       map[string]error
	landHalf     bool
	down         bool
	blind        bool
	maxBatch     int
	tooLargeTail bool
	gate         chan struct{} // appends wait until it is closed
	appends      int
	failed       int // appends that failed
}

var errBatchTooLarge = fmt.Errorf("records take more than the max batch: %w", intentlog.ErrTooLarge)

var errFlaky = errors.New("injected bus failure")

func (b *faultyBus) Publish(ctx context.Context, table string, events []intent.Event) error {
	err := b.publish(ctx, table, events)
	b.mu.Lock()
	b.appends++
	if err != nil {
		b.failed++
	}
	b.mu.Unlock()
	return err
}

func (b *faultyBus) publish(ctx context.Context, table string, events []intent.Event) error {
	if b.gate != nil {
		select {
		case <-b.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	b.mu.Lock()
	half, down, maxBatch, tail := b.landHalf, b.down, b.maxBatch, b.tooLargeTail
	b.landHalf = false
	var poison error
	for _, e := range events {
		if err := b.poison[string(e.Key)]; err != nil {
			poison = err
		}
	}
	b.mu.Unlock()
	switch {
	case down:
		return errFlaky
	case poison != nil:
		return poison
	case maxBatch > 0 && len(events) > maxBatch:
		return errBatchTooLarge
	case half:
		if err := b.Bus.Publish(ctx, table, events[:len(events)/2]); err != nil {
			return err
		}
		return fmt.Errorf("after a partial write: %w", errFlaky)
	case tail && len(events) > 1:
		if err := b.Bus.Publish(ctx, table, events[:len(events)-1]); err != nil {
			return err
		}
		return errBatchTooLarge
	}
	return b.Bus.Publish(ctx, table, events)
}

func (b *faultyBus) counts() (appends, failed int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.appends, b.failed
}

func (b *faultyBus) LastVersionsOf(ctx context.Context, table string, p int32, from int64, want func([]byte) bool) (eventbus.Retained, error) {
	b.mu.Lock()
	blind := b.blind
	b.mu.Unlock()
	if blind {
		return eventbus.Retained{}, errFlaky
	}
	return b.Bus.LastVersionsOf(ctx, table, p, from, want)
}

func events(table string, keys ...string) []intent.Event {
	var out []intent.Event
	for i, k := range keys {
		out = append(out, intent.Event{Table: table, Key: []byte(k), Op: intent.Upsert, Version: uint64(100 + i), Value: []byte(k)})
	}
	return out
}

// readTopic returns every record of partition 0 of a topic.
func readTopic(ctx context.Context, t *testing.T, log intentlog.Log, topic string) []intentlog.Record {
	t.Helper()
	_, end, err := log.Bounds(ctx, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []intentlog.Record
	if end == 0 {
		return out
	}
	rd, err := log.NewReader(topic, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for rd.Position() < end {
		recs, err := rd.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recs...)
	}
	return out
}

// onBus returns how often each key has an event on the bus.
func onBus(ctx context.Context, t *testing.T, e *testEnv) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, r := range readTopic(ctx, t, e.log, eventbus.Topic(e.tb.Name)) {
		if r.Value != nil {
			got[string(r.Key)]++
		}
	}
	return got
}

func keysOf(evs []intent.Event) string {
	var ks []string
	for _, e := range evs {
		ks = append(ks, string(e.Key))
	}
	return strings.Join(ks, ",")
}

// TestPlainPublisherPartialAppend (R11, issue 19): an append that fails
// after part of the batch landed reports only the rest as failed; the rest
// is published once, and nothing twice.
func TestPlainPublisherPartialAppend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newTestEnv(ctx, t, "partial")
	bus := &faultyBus{Bus: env.bus, landHalf: true}
	r := New(env.log, env.st, bus, Config{Group: "g"})
	p := newPlainPublisher(r, env.tb.Name, 0)
	evs := events(env.tb.Name, "a", "b", "c", "d")

	res := p.events(ctx, evs, 0, false)
	if res.err == nil || res.uncertain || keysOf(res.failed) != "c,d" {
		t.Fatalf("partial append: failed %q uncertain %v err %v; want c,d certain", keysOf(res.failed), res.uncertain, res.err)
	}
	if res := p.events(ctx, res.failed, 0, false); res.err != nil {
		t.Fatal(res.err)
	}
	for k, n := range onBus(ctx, t, env) {
		if n != 1 {
			t.Errorf("key %s has %d events on the bus, want 1", k, n)
		}
	}

	// The same, but the check after the failure fails too: the events are
	// uncertain, and the next append of any of them checks first.
	bus.mu.Lock()
	bus.landHalf, bus.blind = true, true
	bus.mu.Unlock()
	evs = events(env.tb.Name, "e", "f", "g", "h")
	for i := range evs {
		evs[i].Version += 100
	}
	res = p.events(ctx, evs, 0, false)
	if res.err == nil || !res.uncertain || len(res.failed) != 4 {
		t.Fatalf("blind partial append: failed %q uncertain %v err %v; want all four, uncertain", keysOf(res.failed), res.uncertain, res.err)
	}
	bus.mu.Lock()
	bus.blind = false
	bus.mu.Unlock()
	if res := p.events(ctx, evs[1:2], 0, false); res.err != nil || len(res.failed) > 0 { // f landed: not appended again
		t.Fatalf("failed %q: %v", keysOf(res.failed), res.err)
	}
	if res := p.events(ctx, evs[2:], 0, false); res.err != nil || len(res.failed) > 0 { // g, h did not
		t.Fatalf("failed %q: %v", keysOf(res.failed), res.err)
	}
	if res := p.events(ctx, evs[:1], 0, false); res.err != nil || len(res.failed) > 0 { // e landed
		t.Fatalf("failed %q: %v", keysOf(res.failed), res.err)
	}
	got := onBus(ctx, t, env)
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		if got[k] != 1 {
			t.Errorf("key %s has %d events on the bus, want 1 (all: %v)", k, got[k], got)
		}
	}
}

// TestIsolateFailures: a batch with records the bus refuses is bisected so
// that every other event is published and each refused one fails alone;
// a bus that refuses everything costs three appends and nothing fails
// alone.
func TestIsolateFailures(t *testing.T) {
	t.Parallel()
	errBad := errors.New("record refused")
	tooLarge := fmt.Errorf("record 3 is 2000000 bytes: %w", intentlog.ErrTooLarge)
	keys := []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"}
	cases := []struct {
		name        string
		poison      map[string]error
		down        bool
		wantFailed  string
		wantAlone   bool
		wantPerm    bool
		wantAppends int
	}{
		{name: "one refused record", poison: map[string]error{"k3": errBad}, wantFailed: "k3", wantAlone: true},
		{name: "one record too large", poison: map[string]error{"k7": tooLarge}, wantFailed: "k7", wantAlone: true, wantPerm: true},
		{name: "one event that cannot be encoded", poison: map[string]error{"k0": fmt.Errorf("%w: invalid UTF-8", eventbus.ErrEncode)},
			wantFailed: "k0", wantAlone: true, wantPerm: true},
		{name: "two too large records in both halves", poison: map[string]error{"k1": tooLarge, "k8": tooLarge}, wantFailed: "k1,k8", wantAlone: true, wantPerm: true},
		{name: "bus down", down: true, wantFailed: strings.Join(keys, ","), wantAppends: 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			env := newTestEnv(ctx, t, "iso")
			bus := &faultyBus{Bus: env.bus, poison: c.poison, down: c.down}
			r := New(env.log, env.st, bus, Config{Group: "g"})
			l := newLoop(r, env.tb.Name, 0, nil)
			l.pub = newPlainPublisher(r, env.tb.Name, 0)
			j := &pubJob{events: events(env.tb.Name, keys...), committed: -1}
			l.runJob(ctx, j)
			var failed []intent.Event
			for _, f := range j.fails {
				failed = append(failed, f.Event)
				if f.Alone != c.wantAlone || f.Permanent != c.wantPerm || f.Uncertain {
					t.Errorf("failure of %s: alone %v permanent %v uncertain %v, want %v %v false", f.Event.Key, f.Alone, f.Permanent, f.Uncertain, c.wantAlone, c.wantPerm)
				}
			}
			if keysOf(failed) != c.wantFailed {
				t.Fatalf("failed %q, want %q", keysOf(failed), c.wantFailed)
			}
			if len(j.ok)+len(j.fails) != len(keys) {
				t.Fatalf("%d published + %d failed of %d", len(j.ok), len(j.fails), len(keys))
			}
			got := onBus(ctx, t, env)
			for _, e := range j.ok {
				if got[string(e.Key)] != 1 {
					t.Errorf("published %s is on the bus %d times", e.Key, got[string(e.Key)])
				}
			}
			if c.wantAppends > 0 && bus.appends != c.wantAppends {
				t.Errorf("%d appends, want %d", bus.appends, c.wantAppends)
			}
		})
	}
}

// TestBatchTooLargeIsNotTheRecords: an append that fails as a whole with
// ErrTooLarge (the batch over the log's limit, or a producer batch the
// broker refused while the others landed) says nothing about any one
// event: every event is published, none fails, so none is dead-lettered.
// Only an append of an event alone can blame it.
func TestBatchTooLargeIsNotTheRecords(t *testing.T) {
	t.Parallel()
	keys := []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"}
	cases := []struct {
		name         string
		maxBatch     int
		tooLargeTail bool
	}{
		{name: "the batch refused whole", maxBatch: 3},
		{name: "all but the last landed", tooLargeTail: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			env := newTestEnv(ctx, t, "batch")
			bus := &faultyBus{Bus: env.bus, maxBatch: c.maxBatch, tooLargeTail: c.tooLargeTail}
			r := New(env.log, env.st, bus, Config{Group: "g"})
			l := newLoop(r, env.tb.Name, 0, nil)
			l.pub = newPlainPublisher(r, env.tb.Name, 0)
			j := &pubJob{events: events(env.tb.Name, keys...), committed: -1}
			l.runJob(ctx, j)
			for _, f := range j.fails {
				t.Errorf("%s failed (alone %v, permanent %v): %v", f.Event.Key, f.Alone, f.Permanent, f.Err)
			}
			if _, failed := bus.counts(); failed == 0 {
				t.Fatal("no append failed: the case tests nothing")
			}
			got := onBus(ctx, t, env)
			for _, k := range keys {
				if got[k] != 1 {
					t.Errorf("key %s has %d events on the bus, want 1", k, got[k])
				}
			}
		})
	}
}

// scriptPublisher answers as its fields say and records the appends of
// events it was asked for (keys@offset, "apart" when asked to keep them
// apart).
type scriptPublisher struct {
	commitErr   error
	lettersDone bool // letters committed their offset
	lettersErr  error
	answer      func(evs []intent.Event) pubResult // nil: every event landed
	calls       []string
}

func (p *scriptPublisher) events(_ context.Context, evs []intent.Event, offset int64, apart bool) pubResult {
	call := fmt.Sprintf("%s@%d", keysOf(evs), offset)
	if apart {
		call += " apart"
	}
	p.calls = append(p.calls, call)
	if p.answer == nil {
		return pubResult{}
	}
	return p.answer(evs)
}

func (p *scriptPublisher) letters(context.Context, []*wailv1.DeadLetter, int64) (bool, error) {
	return p.lettersDone, p.lettersErr
}

func (p *scriptPublisher) commit(context.Context, int64) error { return p.commitErr }

// TestRunJob: what a job keeps of its publisher's answer: the offset
// committed (only when the publisher committed it), the error, and a
// failed membership as fatal (also from an append of a bisected part).
// The appends of the parts of a failed batch carry the offset committed
// without them.
func TestRunJob(t *testing.T) {
	t.Parallel()
	errDown := errors.New("bus down")
	errGone := fmt.Errorf("%w: t/0: the transaction's outcome is unknown", errMembership)
	letter := Letter{ID: 1, Key: []byte("l"), Kind: LetterRead, Intents: []intent.Intent{{Table: "t", Key: []byte("l"), Version: 1}}, Offsets: []int64{0}}
	failAll := func(err error) func([]intent.Event) pubResult {
		return func(evs []intent.Event) pubResult { return pubResult{failed: evs, err: err} }
	}
	// failKeys fails the events of keys in every append (with errDown, or
	// the error of the key), the others land.
	failKeys := func(keys map[string]error) func([]intent.Event) pubResult {
		return func(evs []intent.Event) pubResult {
			var res pubResult
			for _, e := range evs {
				if err, ok := keys[string(e.Key)]; ok {
					res.failed = append(res.failed, e)
					res.err = err
				}
			}
			return res
		}
	}
	// seq answers the nth append with the nth answer, and later ones with
	// the last.
	seq := func(answers ...func([]intent.Event) pubResult) func([]intent.Event) pubResult {
		n := 0
		return func(evs []intent.Event) pubResult {
			a := answers[min(n, len(answers)-1)]
			n++
			return a(evs)
		}
	}
	seqPublisher := func(answers ...func([]intent.Event) pubResult) scriptPublisher {
		return scriptPublisher{answer: seq(answers...)}
	}
	pubOK := func([]intent.Event) pubResult { return pubResult{} }
	errTooLarge := fmt.Errorf("record 2000000 bytes: %w", intentlog.ErrTooLarge)
	cases := []struct {
		name   string
		pub    scriptPublisher
		job    pubJob
		cancel bool // the job's context has ended
		// want
		committed int64
		err       error
		fatal     bool
		ok        string
		fails     string // key:alone:uncertain, in order
		calls     string
	}{
		{name: "a commit", job: pubJob{commitOnly: true, offset: 7}, committed: 7},
		{name: "a failed commit", pub: scriptPublisher{commitErr: errDown}, job: pubJob{commitOnly: true, offset: 7}, committed: -1, err: errDown},
		{name: "a commit that ends the membership", pub: scriptPublisher{commitErr: errGone}, job: pubJob{commitOnly: true, offset: 7},
			committed: -1, err: errGone, fatal: true},
		{name: "letters with their offset", pub: scriptPublisher{lettersDone: true}, job: pubJob{letters: []Letter{letter}, offset: 7}, committed: 7},
		{name: "letters without their offset", job: pubJob{letters: []Letter{letter}, offset: 7}, committed: -1},
		{name: "failed letters", pub: scriptPublisher{lettersDone: true, lettersErr: errDown}, job: pubJob{letters: []Letter{letter}, offset: 7},
			committed: -1, err: errDown},
		{name: "letters that end the membership", pub: scriptPublisher{lettersErr: errGone}, job: pubJob{letters: []Letter{letter}, offset: 7},
			committed: -1, err: errGone, fatal: true},
		{name: "events without their offset", job: pubJob{events: events("t", "a", "b"), offset: 7, base: 3}, committed: -1, ok: "a,b", calls: "[a,b@7]"},
		{name: "events apart", job: pubJob{events: events("t", "a"), offset: 7, base: 3, apart: true}, committed: -1, ok: "a", calls: "[a@7 apart]"},
		{name: "events with their offset", job: pubJob{events: events("t", "a", "b"), offset: 7},
			pub:       scriptPublisher{answer: func([]intent.Event) pubResult { return pubResult{committed: true} }},
			committed: 7, ok: "a,b", calls: "[a,b@7]"},
		{name: "events that end the membership", job: pubJob{events: events("t", "a", "b"), offset: 7},
			pub: scriptPublisher{answer: failAll(errGone)}, committed: -1, fatal: true, calls: "[a,b@7]"},
		{name: "one event refused: tried alone at the base", job: pubJob{events: events("t", "a", "b", "c"), offset: 7, base: 3},
			pub:       scriptPublisher{answer: failKeys(map[string]error{"b": errDown})},
			committed: -1, ok: "a,c", fails: "b:true:false", calls: "[a,b,c@7 b@3]"},
		{name: "one event refused, then landed alone", job: pubJob{events: events("t", "a", "b"), offset: 7, base: 3},
			pub: func() scriptPublisher {
				n := 0
				return scriptPublisher{answer: func(evs []intent.Event) pubResult {
					if n++; n == 1 {
						return pubResult{failed: evs[1:], err: errDown}
					}
					return pubResult{}
				}}
			}(),
			committed: -1, ok: "a,b", calls: "[a,b@7 b@3]"},
		{name: "an event alone that ends the membership", job: pubJob{events: events("t", "a", "b"), offset: 7, base: 3},
			pub:       scriptPublisher{answer: seq(failKeys(map[string]error{"b": errDown}), failAll(errGone))},
			committed: -1, ok: "a", fatal: true, calls: "[a,b@7 b@3]"},
		{name: "two refused by a bus that is down: not alone", job: pubJob{events: events("t", "a", "b", "c", "d"), offset: 7, base: 3},
			pub:       scriptPublisher{answer: failKeys(map[string]error{"a": errDown, "d": errDown})},
			committed: -1, ok: "b,c", fails: "a:false:false d:false:false", calls: "[a,b,c,d@7 a@3 d@3]"},
		{name: "two refused, one for good: each alone", job: pubJob{events: events("t", "a", "b", "c", "d"), offset: 7, base: 3},
			pub:       scriptPublisher{answer: failKeys(map[string]error{"a": errTooLarge, "d": errDown})},
			committed: -1, ok: "b,c", fails: "a:true:false d:true:false", calls: "[a,b,c,d@7 a@3 d@3]"},
		{name: "three refused, a half lands: the other half bisected", job: pubJob{events: events("t", "a", "b", "c", "d"), offset: 7, base: 3},
			pub: seqPublisher(failKeys(map[string]error{"a": errDown, "b": errDown, "c": errDown}), pubOK,
				failKeys(map[string]error{"c": errDown})),
			committed: -1, ok: "d,a,b", fails: "c:true:false", calls: "[a,b,c,d@7 a@3 b,c@3 c@3]"},
		{name: "a first half that ends the membership", job: pubJob{events: events("t", "a", "b", "c"), offset: 7, base: 3},
			pub:       scriptPublisher{answer: seq(failKeys(map[string]error{"a": errDown, "c": errDown}), failAll(errGone))},
			committed: -1, ok: "b", fatal: true, calls: "[a,b,c@7 a@3]"},
		{name: "a second half that ends the membership", job: pubJob{events: events("t", "a", "b", "c"), offset: 7, base: 3},
			pub:       scriptPublisher{answer: seq(failKeys(map[string]error{"a": errDown, "c": errDown}), failAll(errDown), failAll(errGone))},
			committed: -1, ok: "b", fatal: true, calls: "[a,b,c@7 a@3 c@3]"},
		{name: "the loop is stopping: uncertain, not bisected", job: pubJob{events: events("t", "a", "b"), offset: 7, base: 3},
			pub: scriptPublisher{answer: failAll(errDown)}, cancel: true,
			committed: -1, fails: "a:false:true b:false:true", calls: "[a,b@7]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if c.cancel {
				cancel()
			}
			p := c.pub
			l := &loop{pub: &p}
			j := c.job
			j.committed = -1
			if got := l.runJob(ctx, &j); got != &j {
				t.Fatal("runJob returned another job")
			}
			var fails []string
			for _, f := range j.fails {
				fails = append(fails, fmt.Sprintf("%s:%v:%v", f.Event.Key, f.Alone, f.Uncertain))
			}
			if j.committed != c.committed || !errors.Is(j.err, c.err) || (c.err == nil) != (j.err == nil) || (j.fatal != nil) != c.fatal {
				t.Fatalf("committed %d, err %v, fatal %v; want %d, %v, fatal %v", j.committed, j.err, j.fatal, c.committed, c.err, c.fatal)
			}
			if keysOf(j.ok) != c.ok || strings.Join(fails, " ") != c.fails {
				t.Fatalf("ok %q, fails %q; want %q, %q", keysOf(j.ok), fails, c.ok, c.fails)
			}
			if c.calls != "" && fmt.Sprint(p.calls) != c.calls {
				t.Fatalf("appends %v, want %v", p.calls, c.calls)
			}
		})
	}
}
