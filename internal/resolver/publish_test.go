package resolver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

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
