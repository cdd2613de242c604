package resolver

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
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

func (b *hangBus) Recover(ctx context.Context, table string, p int32, since time.Time) (eventbus.Recovered, error) {
	rec, err := b.Bus.Recover(ctx, table, p, since)
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
	dir := t.TempDir()
	log, err := embedded.Open(filepath.Join(dir, "log"), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	st, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tb := catalog.Table{Name: "orph", Partitions: 1, VisibilityWindow: 5 * time.Second}
	inner := eventbus.New(log)
	bus := &hangBus{Bus: inner, orphan: intent.Event{Table: tb.Name, Key: []byte("k"), Op: intent.Upsert, Version: 1, Value: []byte("one")}}
	if err := log.CreateTopic(ctx, intent.Topic(tb.Name), 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := inner.CreateTable(ctx, tb.Name, 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTable(ctx, tb.Name); err != nil {
		t.Fatal(err)
	}
	// The intent of version 2, resolved by the hanging transaction's event
	// k@1 and a later one of k@2 that readers saw (Last): the hang's event
	// is above nothing, so its key is logged again.
	in := intent.Intent{Table: tb.Name, Key: []byte("k"), Op: intent.Upsert, Version: 2, CreatedAt: time.Now()}
	b, _ := in.Marshal()
	if err := log.Append(ctx, intent.Topic(tb.Name), []*intentlog.Record{{Key: in.Key, Value: b}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(ctx, tb.Name, []store.Mutation{{Key: []byte("k"), Value: []byte("two"), Version: 2}}); err != nil {
		t.Fatal(err)
	}
	r := New(log, st, bus, Config{Group: "g", BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		Horizon: time.Minute, CommitInterval: 10 * time.Millisecond, MaxUnresolved: 100})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx, []catalog.Table{tb}, nil) }()
	for {
		if c, _ := log.Committed(ctx, "g", intent.Topic(tb.Name)); c[0] == 2 { // both intents
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the resolver did not resolve the logged intent and the one for the hang")
		}
		time.Sleep(5 * time.Millisecond)
	}
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
