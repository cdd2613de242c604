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
	"github.com/wail-cdc/wail/internal/eventbus"
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
// after the write), else before. appends counts the records of each
// append to a dead-letter topic that did not fail.
type letterFailLog struct {
	*embedded.Log
	fail, landed bool
	appends      []int
}

func (l *letterFailLog) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	if !strings.HasPrefix(topic, dlq.Topic("")) {
		return l.Log.Append(ctx, topic, recs)
	}
	if !l.fail {
		l.appends = append(l.appends, len(recs))
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

// TestTxnPublisher: a transactional publisher hands its records and the
// offset to the pump in one transaction (events on the event topic,
// letters on the dead-letter topic, a commit with no records); an abort,
// a transaction too large and the end of the caller's context come back
// as they are (the loop retries them), any other failure ends the
// membership.
func TestTxnPublisher(t *testing.T) {
	t.Parallel()
	errUnknown := errors.New("the transaction's outcome is unknown")
	tooLarge := fmt.Errorf("%w: records over max.message.bytes", intentlog.ErrTooLarge)
	type outcome struct {
		failed     string
		committed  bool
		err        error
		membership bool
	}
	cases := []struct {
		name   string
		err    error // of every transaction
		call   string
		cancel bool
		want   outcome
	}{
		{name: "events", call: "events", want: outcome{committed: true}},
		{name: "events aborted", call: "events", err: ErrAborted, want: outcome{failed: "a,b", err: ErrAborted}},
		{name: "events too large", call: "events", err: tooLarge, want: outcome{failed: "a,b", err: intentlog.ErrTooLarge}},
		{name: "events of an unknown outcome", call: "events", err: errUnknown, want: outcome{failed: "a,b", err: errUnknown, membership: true}},
		{name: "events that cannot be encoded", call: "bad events", want: outcome{failed: "a,b", err: eventbus.ErrEncode}},
		{name: "letters", call: "letters", want: outcome{committed: true}},
		{name: "letters aborted", call: "letters", err: ErrAborted, want: outcome{err: ErrAborted}},
		{name: "letters of an unknown outcome", call: "letters", err: errUnknown, want: outcome{err: errUnknown, membership: true}},
		{name: "a commit", call: "commit", want: outcome{committed: true}},
		{name: "a commit of an unknown outcome", call: "commit", err: errUnknown, want: outcome{err: errUnknown, membership: true}},
		{name: "a commit as the loop stops", call: "commit", err: errUnknown, cancel: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			env := newTestEnv(ctx, t, "txp")
			r := New(env.log, env.st, env.bus, Config{Group: "g"})
			g := &fakeGroup{err: c.err}
			pm := newPump(g, 0, 0, NewMetrics(nil).transactions)
			pctx, stopPump := context.WithCancel(context.Background())
			pumpDone := make(chan struct{})
			go func() { defer close(pumpDone); pm.run(pctx) }()
			defer func() { stopPump(); <-pumpDone }()
			p := &txnPublisher{r: r, pump: pm, table: "txp", topic: intent.Topic("txp"), part: 2, done: make(chan struct{})}
			l := newLoop(r, "txp", 2, nil)
			letter := l.deadLetters(&Letter{Key: []byte("a"), Kind: LetterRead, Err: "boom", Attempts: 1,
				Intents: []intent.Intent{{Table: "txp", Key: []byte("a"), Op: intent.Upsert, Version: 1}}, Offsets: []int64{4}}, time.Now())
			if c.cancel {
				cancel()
			}
			var got outcome
			var recsTopic string
			switch c.call {
			case "events", "bad events":
				evs := events("txp", "a", "b")
				if c.call == "bad events" {
					evs[1].Table = "txp\xff"
				}
				res := p.events(ctx, evs, 7, false)
				got = outcome{failed: keysOf(res.failed), committed: res.committed, err: res.err}
				recsTopic = eventbus.Topic("txp")
			case "letters":
				got.committed, got.err = p.letters(ctx, letter, 7)
				recsTopic = dlq.Topic("txp")
			case "commit":
				got.err = p.commit(ctx, 7)
				got.committed = got.err == nil
			}
			got.membership = errors.Is(got.err, errMembership)
			if c.cancel {
				// The transaction may have run before the pump saw the
				// end of the context: its error or the context's, never
				// the end of the membership.
				if got.err == nil || got.membership {
					t.Fatalf("commit as the loop stops: %v", got.err)
				}
				return
			}
			if got.failed != c.want.failed || got.committed != c.want.committed || got.membership != c.want.membership ||
				!errors.Is(got.err, c.want.err) || (got.err == nil) != (c.want.err == nil) {
				t.Fatalf("failed %q, committed %v, membership %v, err %v; want %+v", got.failed, got.committed, got.membership, got.err, c.want)
			}
			if c.call == "bad events" {
				if len(g.calls) != 0 {
					t.Fatalf("%d transactions for events that cannot be encoded", len(g.calls))
				}
				return
			}
			if len(g.calls) != 1 {
				t.Fatalf("%d transactions, want 1", len(g.calls))
			}
			txn := g.calls[0]
			if off := txn.offsets[intent.Topic("txp")]; len(txn.offsets) != 1 || len(off) != 1 || off[2] != 7 {
				t.Fatalf("the transaction commits %v, want %s partition 2 at 7", txn.offsets, intent.Topic("txp"))
			}
			n := 0
			for topic, rs := range txn.recs {
				if topic != recsTopic {
					t.Fatalf("records for %s, want only %q", topic, recsTopic)
				}
				n += len(rs)
			}
			if want := map[string]int{"events": 2, "letters": 1, "commit": 0}[c.call]; n != want {
				t.Fatalf("%d records in the transaction, want %d", n, want)
			}
		})
	}
}

// TestPlainPublisherLetterAppends: dead letters go in appends of at most
// the log's append limit (at least one letter each, however large), in
// order.
func TestPlainPublisherLetterAppends(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	keys := []string{"a", "b", "c"}
	letters := func(l *loop, table string) []*wailv1.DeadLetter {
		var ls []*wailv1.DeadLetter
		for i, k := range keys {
			ls = append(ls, l.deadLetters(&Letter{Key: []byte(k), Kind: LetterRead, Err: "boom", Attempts: 1,
				Intents: []intent.Intent{{Table: table, Key: []byte(k), Op: intent.Upsert, Version: 1}}, Offsets: []int64{int64(i)}}, time.Now())...)
		}
		return ls
	}
	probe := letters(newLoop(New(nil, nil, nil, Config{}), "dla", 0, nil), "dla")
	size := letterBytes(probe[0])
	for _, d := range probe[1:] {
		if letterBytes(d) != size {
			t.Fatalf("setup: letters of %d and %d bytes", size, letterBytes(d))
		}
	}
	cases := []struct {
		limit int
		want  []int
	}{
		{limit: 3 * size, want: []int{3}},
		{limit: 2 * size, want: []int{2, 1}},
		{limit: 2*size - 1, want: []int{1, 1, 1}},
		{limit: size - 1, want: []int{1, 1, 1}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint("limit=", c.limit), func(t *testing.T) {
			t.Parallel()
			env := newTestEnv(ctx, t, "dla")
			log := &letterFailLog{Log: env.log}
			r := New(log, env.st, env.bus, Config{Group: "g", Limits: limiter{n: c.limit}})
			p := newPlainPublisher(r, env.tb.Name, 0)
			if committed, err := p.letters(ctx, letters(newLoop(r, env.tb.Name, 0, nil), env.tb.Name), 0); err != nil || committed {
				t.Fatalf("letters: committed %v, %v", committed, err)
			}
			if fmt.Sprint(log.appends) != fmt.Sprint(c.want) {
				t.Fatalf("appends of %v letters, want %v", log.appends, c.want)
			}
			got := readLetters(ctx, t, env.log, env.tb.Name)
			var gotKeys []string
			for _, d := range got {
				gotKeys = append(gotKeys, string(d.Key))
			}
			if strings.Join(gotKeys, ",") != strings.Join(keys, ",") {
				t.Fatalf("letters %v in the topic, want %v", gotKeys, keys)
			}
		})
	}
}

// TestPlainPublisherChecksOnlyUncertain: an append of events none of
// which is uncertain does not read the bus first (a bus that cannot be
// read does not stop it); one of an uncertain event does.
func TestPlainPublisherChecksOnlyUncertain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newTestEnv(ctx, t, "certain")
	bus := &faultyBus{Bus: env.bus, blind: true}
	r := New(env.log, env.st, bus, Config{Group: "g"})
	p := newPlainPublisher(r, env.tb.Name, 0)
	if res := p.events(ctx, events(env.tb.Name, "a", "b"), 0, false); res.err != nil || len(res.failed) > 0 {
		t.Fatalf("append while the bus cannot be read: failed %q, %v", keysOf(res.failed), res.err)
	}
	// c is left uncertain: the next append of it must check first, and
	// fails while the bus cannot be read.
	bus.mu.Lock()
	bus.landHalf = true
	bus.mu.Unlock()
	evs := events(env.tb.Name, "x", "c")
	if res := p.events(ctx, evs, 0, false); !res.uncertain {
		t.Fatalf("blind partial append: failed %q uncertain %v err %v; want uncertain", keysOf(res.failed), res.uncertain, res.err)
	}
	if res := p.events(ctx, append(events(env.tb.Name, "d"), evs[1]), 0, false); !res.uncertain || res.err == nil {
		t.Fatalf("append of an uncertain event while the bus cannot be read: failed %q uncertain %v err %v; want uncertain", keysOf(res.failed), res.uncertain, res.err)
	}
	if got := onBus(ctx, t, env); got["a"] != 1 || got["b"] != 1 || got["d"] != 0 {
		t.Fatalf("on the bus: %v; want a and b, not d", got)
	}
}
