package resolver

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/store"
)

// heldBus is a bus on which, once armed, the next Hanging reports a
// hanging transaction; the Recover after it finds the hang, with the
// orphan event j@1, and notes the abort.
type heldBus struct {
	*eventbus.Bus
	mu       sync.Mutex
	armed    bool
	reported bool
	after    int // checks asked after the hang was reported
	steps    []string
}

func (b *heldBus) Hanging(ctx context.Context, table string, p int32) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.reported {
		b.after++
	}
	if b.armed && !b.reported {
		b.reported = true
		return true, nil
	}
	return false, nil
}

func (b *heldBus) Recover(ctx context.Context, table string, p int32, since time.Time, w eventbus.RecoverWaits) (eventbus.Recovered, error) {
	rec, err := b.Bus.Recover(ctx, table, p, since, w)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.steps = append(b.steps, "recover")
	if err == nil && b.reported {
		rec.Orphans = []intent.Event{{Table: table, Key: []byte("j"), Op: intent.Upsert, Version: 1, Value: []byte("one")}}
		rec.Unblock = func(context.Context) error {
			b.mu.Lock()
			b.steps = append(b.steps, "unblock")
			b.mu.Unlock()
			return nil
		}
	}
	return rec, err
}

func (b *heldBus) Publish(ctx context.Context, table string, events []intent.Event) error {
	b.mu.Lock()
	for _, e := range events {
		b.steps = append(b.steps, string(e.Key)+"@"+string(rune('0'+e.Version)))
	}
	b.mu.Unlock()
	return b.Bus.Publish(ctx, table, events)
}

func (b *heldBus) arm() {
	b.mu.Lock()
	b.armed = true
	b.mu.Unlock()
}

// TestHangWhileRunning: a hanging transaction that holds the event
// partition of a running resolver (its producers publish nothing more
// there, so nothing else would end it before the next take-over) is found
// by the partition's own check. The partition starts again, and its
// recovery logs the hang's keys again and aborts it; the partition then
// goes on resolving.
func TestHangWhileRunning(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "held")
	bus := &heldBus{Bus: env.bus}
	if _, err := env.st.Apply(ctx, env.tb.Name, []store.Mutation{{Key: []byte("j"), Value: []byte("one"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	env.write(ctx, t, "k", 1, "one")
	logger, logs := testLogger()
	cfg := testConfig(logger, nil)
	cfg.HangCheck = 5 * time.Millisecond
	run := start(ctx, New(env.log, env.st, bus, cfg), env.tb)
	defer run.stop(t)
	waitUntil(ctx, t, "k resolved", func() bool { return committedAt(ctx, t, env.log, env.tb) == 1 })
	bus.arm()
	// The hang's key, logged again, resolves: intent 1 is the one logged
	// for it. Then the partition takes intents as before.
	waitUntil(ctx, t, "the hang's key resolved", func() bool { return committedAt(ctx, t, env.log, env.tb) == 2 })
	env.write(ctx, t, "k", 2, "two")
	waitUntil(ctx, t, "a later intent resolved", func() bool { return committedAt(ctx, t, env.log, env.tb) == 3 })
	waitUntil(ctx, t, "a check after the restart", func() bool {
		bus.mu.Lock()
		defer bus.mu.Unlock()
		return bus.after > 0
	})

	bus.mu.Lock()
	defer bus.mu.Unlock()
	if got, want := strings.Join(bus.steps, " "), "recover k@1 recover unblock j@1 k@2"; got != want {
		t.Errorf("steps %q, want %q", got, want)
	}
	if !strings.Contains(logs.String(), "starts again to end it") || strings.Contains(logs.String(), "restarting") {
		t.Errorf("logs: want the hang's warning and no restart after an error:\n%s", logs)
	}
}

// TestHangCheckOneAtATime: while a check is on its way, no other starts,
// however many ticks pass; the loop goes on meanwhile, and stopping waits
// for the check (its context ends).
func TestHangCheckOneAtATime(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "slowcheck")
	bus := &slowCheckBus{Bus: env.bus, entered: make(chan struct{}, 100)}
	cfg := testConfig(nil, nil)
	cfg.HangCheck = time.Millisecond
	run := start(ctx, New(env.log, env.st, bus, cfg), env.tb)
	select {
	case <-bus.entered:
	case <-ctx.Done():
		t.Fatal("no check started")
	}
	env.write(ctx, t, "k", 1, "one")
	waitUntil(ctx, t, "k resolved during the check", func() bool { return committedAt(ctx, t, env.log, env.tb) == 1 })
	run.stop(t)
	if n := len(bus.entered); n != 0 {
		t.Errorf("%d more checks started while one was on its way", n)
	}
	if !bus.ended.Load() {
		t.Error("the resolver stopped before its check returned")
	}
}

// slowCheckBus's Hanging waits for its context to end.
type slowCheckBus struct {
	*eventbus.Bus
	entered chan struct{}
	ended   atomic.Bool
}

func (b *slowCheckBus) Hanging(ctx context.Context, table string, p int32) (bool, error) {
	b.entered <- struct{}{}
	<-ctx.Done()
	time.Sleep(20 * time.Millisecond) // a check slow to notice
	b.ended.Store(true)
	return false, ctx.Err()
}

// failingCheckBus's Hanging fails.
type failingCheckBus struct {
	*eventbus.Bus
	asked atomic.Int64
}

func (b *failingCheckBus) Hanging(context.Context, string, int32) (bool, error) {
	b.asked.Add(1)
	return false, errors.New("TOPIC_AUTHORIZATION_FAILED")
}

// TestHangCheckFailing: a check that fails is asked again, and the
// partition goes on; checks that keep failing are reported (they leave
// hangs unfound) from the third in a row on (the first warning says 3),
// one failure alone is not.
func TestHangCheckFailing(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "failcheck")
	bus := &failingCheckBus{Bus: env.bus}
	logger, logs := testLogger()
	cfg := testConfig(logger, nil)
	cfg.HangCheck = 5 * time.Millisecond
	run := start(ctx, New(env.log, env.st, bus, cfg), env.tb)
	defer run.stop(t)
	waitUntil(ctx, t, "checks failed in a row", func() bool { return bus.asked.Load() > hangFailuresWarn })
	env.write(ctx, t, "k", 1, "one")
	waitUntil(ctx, t, "k resolved", func() bool { return committedAt(ctx, t, env.log, env.tb) == 1 })
	if !strings.Contains(logs.String(), "cannot check the event partition for hanging Kafka transactions") ||
		!strings.Contains(logs.String(), "TOPIC_AUTHORIZATION_FAILED") || !strings.Contains(logs.String(), "failed=3 ") {
		t.Errorf("no warning of the failing checks:\n%s", logs)
	}
	if strings.Contains(logs.String(), "starts again") || strings.Contains(logs.String(), "restarting") {
		t.Errorf("a failed check restarted the partition:\n%s", logs)
	}
}
