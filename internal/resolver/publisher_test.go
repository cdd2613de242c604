package resolver

import (
	"context"
	"testing"

	"github.com/wail-cdc/wail/internal/intent"
)

// TestPlainPublisherUncertainOfOtherKeys: events left uncertain by a
// failed append stay checked from that append on, even when an append of
// other keys fails after it: what the first one wrote is found, and
// nothing is appended twice.
func TestPlainPublisherUncertainOfOtherKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newTestEnv(ctx, t, "uncertain")
	bus := &faultyBus{Bus: env.bus}
	r := New(env.log, env.st, bus, Config{Group: "g"})
	p := newPlainPublisher(r, env.tb.Name, 0)
	if res := p.events(ctx, events(env.tb.Name, "a", "b"), 0, false); res.err != nil {
		t.Fatal(res.err)
	}

	// e and f land, g and h do not; the check fails: all four uncertain.
	bus.mu.Lock()
	bus.landHalf, bus.blind = true, true
	bus.mu.Unlock()
	first := events(env.tb.Name, "e", "f", "g", "h")
	if res := p.events(ctx, first, 0, false); res.err == nil || !res.uncertain || len(res.failed) != 4 {
		t.Fatalf("blind partial append: failed %q uncertain %v err %v; want all four, uncertain", keysOf(res.failed), res.uncertain, res.err)
	}
	// An append of other keys: x lands, y does not; the check succeeds.
	bus.mu.Lock()
	bus.landHalf, bus.blind = true, false
	bus.mu.Unlock()
	res := p.events(ctx, events(env.tb.Name, "x", "y"), 0, false)
	if res.err == nil || res.uncertain || keysOf(res.failed) != "y" {
		t.Fatalf("partial append: failed %q uncertain %v err %v; want y, certain", keysOf(res.failed), res.uncertain, res.err)
	}
	// What failed for certain, and what was uncertain, is published again.
	byKey := map[string]intent.Event{}
	for _, e := range append(first, events(env.tb.Name, "x", "y")...) {
		byKey[string(e.Key)] = e
	}
	for _, keys := range [][]string{{"y"}, {"e"}, {"f"}, {"g", "h"}} {
		var again []intent.Event
		for _, k := range keys {
			again = append(again, byKey[k])
		}
		if res := p.events(ctx, again, 0, false); res.err != nil {
			t.Fatal(res.err)
		}
	}
	got := onBus(ctx, t, env)
	for _, k := range []string{"a", "b", "e", "f", "g", "h", "x", "y"} {
		if got[k] != 1 {
			t.Errorf("key %s has %d events on the bus, want 1 (all: %v)", k, got[k], got)
		}
	}
}
