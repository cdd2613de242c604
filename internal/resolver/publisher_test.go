package resolver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
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
		if res := p.events(ctx, again, 0, false); res.err != nil || len(res.failed) > 0 || res.uncertain {
			t.Fatalf("append of %s: failed %q uncertain %v err %v", keys, keysOf(res.failed), res.uncertain, res.err)
		}
	}
	got := onBus(ctx, t, env)
	for _, k := range []string{"a", "b", "e", "f", "g", "h", "x", "y"} {
		if got[k] != 1 {
			t.Errorf("key %s has %d events on the bus, want 1 (all: %v)", k, got[k], got)
		}
	}
}

// letterFailLog is the embedded log whose next append to a dead-letter
// topic fails: after writing its records when landed is set (a timeout
// after the write), else before.
type letterFailLog struct {
	*embedded.Log
	fail, landed bool
}

func (l *letterFailLog) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	if !strings.HasPrefix(topic, dlq.Topic("")) || !l.fail {
		return l.Log.Append(ctx, topic, recs)
	}
	l.fail = false
	if l.landed {
		if err := l.Log.Append(ctx, topic, recs); err != nil {
			return err
		}
	}
	return errors.New("injected: the append timed out")
}

// TestPlainPublisherLettersLanded: after an append of dead letters failed,
// the next append of them skips those that landed anyway and writes the
// others: every letter is in the topic once.
func TestPlainPublisherLettersLanded(t *testing.T) {
	t.Parallel()
	for _, landed := range []bool{true, false} {
		t.Run(fmt.Sprint("landed=", landed), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			env := newTestEnv(ctx, t, "dl")
			log := &letterFailLog{Log: env.log, fail: true, landed: landed}
			r := New(log, env.st, env.bus, Config{Group: "g"})
			p := newPlainPublisher(r, env.tb.Name, 0)
			l := newLoop(r, env.tb.Name, 0, nil)
			var ls []*wailv1.DeadLetter
			for i, k := range []string{"a", "b"} {
				ls = append(ls, l.deadLetters(&Letter{Key: []byte(k), Kind: LetterRead, Err: "boom", Attempts: 1,
					Intents: []intent.Intent{{Table: env.tb.Name, Key: []byte(k), Op: intent.Upsert, Version: 1}}, Offsets: []int64{int64(i)}}, time.Now())...)
			}
			if _, err := p.letters(ctx, ls, 0); err == nil {
				t.Fatal("the injected failure did not fire")
			}
			if _, err := p.letters(ctx, ls, 0); err != nil {
				t.Fatal(err)
			}
			got := readLetters(ctx, t, env.log, env.tb.Name)
			if len(got) != 2 || string(got[0].Key) != "a" || string(got[1].Key) != "b" {
				t.Fatalf("%d letters in the topic, want a and b once", len(got))
			}
		})
	}
}
