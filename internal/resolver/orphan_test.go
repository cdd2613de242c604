package resolver

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/store"
)

// hangBus is a bus whose first recovery reports a hanging transaction
// with one orphan event; it notes the order of publishes and the abort.
type hangBus struct {
	*eventbus.Bus
	orphan intent.Event

	mu    sync.Mutex
	once  bool
	steps []string
}

func (b *hangBus) step(s string) {
	b.mu.Lock()
	b.steps = append(b.steps, s)
	b.mu.Unlock()
}

func (b *hangBus) Recover(ctx context.Context, table string, p int32, since time.Time, w eventbus.RecoverWaits) (eventbus.Recovered, error) {
	rec, err := b.Bus.Recover(ctx, table, p, since, w)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil && !b.once {
		b.once = true
		rec.Orphans = []intent.Event{b.orphan}
		rec.Unblock = func(context.Context) error { b.step("unblock"); return nil }
	}
	return rec, err
}

func (b *hangBus) Publish(ctx context.Context, table string, events []intent.Event) error {
	for _, e := range events {
		b.step(string(e.Key) + "@" + string(rune('0'+e.Version)))
	}
	return b.Bus.Publish(ctx, table, events)
}

// TestRecoverOrphans: the keys of a hanging transaction's events are
// logged again before the hang is aborted, the abort comes before any
// publish to the partition, and the keys resolve to their current state.
func TestRecoverOrphans(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "orph")
	log, tb := env.log, env.tb
	bus := &hangBus{Bus: env.bus, orphan: intent.Event{Table: tb.Name, Key: []byte("k"), Op: intent.Upsert, Version: 1, Value: []byte("one")}}
	// One intent, of the store's version 2. The hang's event k@1 is above
	// what readers saw (nothing), so its key is logged again.
	env.write(ctx, t, "k", 2, "two")
	r := New(log, env.st, bus, Config{Group: "g", BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		Horizon: time.Minute, CommitInterval: 10 * time.Millisecond, MaxUnresolved: 100})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx, []catalog.Table{tb}, nil) }()
	waitUntil(ctx, t, "the intent and the one logged for the hang resolved", func() bool {
		c, _ := log.Committed(ctx, "g", intent.Topic(tb.Name))
		return c[0] == 2
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	bus.mu.Lock()
	defer bus.mu.Unlock()
	if got, want := strings.Join(bus.steps, " "), "unblock k@2"; got != want {
		t.Fatalf("steps %q, want %q", got, want)
	}
	rd, err := log.NewReader(intent.Topic(tb.Name), 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	recs, err := rd.Next(ctx)
	if err != nil || len(recs) != 1 {
		t.Fatalf("intents after the first: %d, %v; want the one logged for the hang", len(recs), err)
	}
	if got, err := intent.UnmarshalIntent(recs[0].Value); err != nil || string(got.Key) != "k" || got.Version != 1 || !strings.HasPrefix(got.ID, "unhang:") {
		t.Errorf("intent logged for the hang = %+v, %v; want k@1 with an unhang: id", got, err)
	}
}

// TestRecoverOrphansOfAnIdlePartition: a partition with no intent after
// its committed offset still recovers at start: its hanging transaction
// is aborted (and its key logged again) without waiting for a new intent,
// and the partition goes on without a restart.
func TestRecoverOrphansOfAnIdlePartition(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "idle")
	bus := &hangBus{Bus: env.bus, orphan: intent.Event{Table: env.tb.Name, Key: []byte("k"), Op: intent.Upsert, Version: 1, Value: []byte("one")}}
	if _, err := env.st.Apply(ctx, env.tb.Name, []store.Mutation{{Key: []byte("k"), Value: []byte("one"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	logger, logs := testLogger()
	run := start(ctx, New(env.log, env.st, bus, testConfig(logger, nil)), env.tb)
	defer run.stop(t)
	waitUntil(ctx, t, "the hang aborted", func() bool {
		bus.mu.Lock()
		defer bus.mu.Unlock()
		return len(bus.steps) > 0 && bus.steps[0] == "unblock"
	})
	if _, end, err := env.log.Bounds(ctx, intent.Topic(env.tb.Name), 0); err != nil || end != 1 {
		t.Fatalf("intent log end %d (%v), want 1: the orphan's key logged again", end, err)
	}
	waitUntil(ctx, t, "the key logged again resolved", func() bool { return committedAt(ctx, t, env.log, env.tb) == 1 })
	if strings.Contains(logs.String(), "restarting") {
		t.Fatalf("the partition restarted:\n%s", logs)
	}
}
