package resolver

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

// countingStore counts the resolver's reads: Gets, and GetManys with the
// keys they read. Without multi it hides GetMany (a store that reads one
// key per call).
type countingStore struct {
	st    *pebble.Store
	mu    sync.Mutex
	gets  int
	manys []int // keys per GetMany
}

func (c *countingStore) Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error) {
	c.mu.Lock()
	c.gets++
	c.mu.Unlock()
	return c.st.Get(ctx, table, key, level)
}

func (c *countingStore) Levels() []string { return c.st.Levels() }

type countingMultiStore struct{ *countingStore }

func (c countingMultiStore) GetMany(ctx context.Context, table string, keys [][]byte, level store.Level) ([]store.KeyRead, error) {
	c.mu.Lock()
	c.manys = append(c.manys, len(keys))
	c.mu.Unlock()
	return c.st.GetMany(ctx, table, keys, level)
}

// TestReadsAndEventsInBatches: intents of many keys that arrive together
// are read back with a few GetManys (not one Get per key) on a store that
// has it, and their events go out in a few appends; a store without
// GetMany is read one Get per key, with the same events.
func TestReadsAndEventsInBatches(t *testing.T) {
	t.Parallel()
	const keys = 600
	for _, multi := range []bool{true, false} {
		t.Run(fmt.Sprintf("multi=%v", multi), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			env := newTestEnv(ctx, t, "batches")
			// One append of the intents and one store write, as a merged
			// batch of the proxy; created a while ago, so that the first
			// reads are not delayed.
			created := time.Now().Add(-time.Minute)
			recs := make([]*intentlog.Record, keys)
			muts := make([]store.Mutation, keys)
			for i := range keys {
				key := fmt.Appendf(nil, "k%04d", i)
				in := intent.Intent{Table: env.tb.Name, Key: key, Op: intent.Upsert, Version: uint64(100 + i), CreatedAt: created}
				b, err := in.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				recs[i] = &intentlog.Record{Key: key, Value: b}
				muts[i] = store.Mutation{Key: key, Value: []byte("v"), Version: uint64(100 + i)}
			}
			if _, err := env.st.Apply(ctx, env.tb.Name, muts); err != nil {
				t.Fatal(err)
			}
			if err := env.log.Append(ctx, intent.Topic(env.tb.Name), recs); err != nil {
				t.Fatal(err)
			}
			cs := &countingStore{st: env.st}
			var st Store = cs
			if multi {
				st = countingMultiStore{cs}
			}
			bus := &faultyBus{Bus: env.bus}
			cfg := testConfig(nil, NewMetrics(nil))
			cfg.Concurrency = 4
			r := New(env.log, st, bus, cfg)
			run := start(ctx, r, env.tb)
			waitUntil(ctx, t, "every key published", func() bool { return len(onBus(ctx, t, env)) == keys })
			run.stop(t)
			for k, n := range onBus(ctx, t, env) {
				if n != 1 {
					t.Errorf("key %s: %d events, want 1", k, n)
				}
			}
			cs.mu.Lock()
			gets, manys := cs.gets, cs.manys
			cs.mu.Unlock()
			bus.mu.Lock()
			appends := bus.appends
			bus.mu.Unlock()
			read := gets
			for _, n := range manys {
				read += n
			}
			t.Logf("%d Gets, %d GetManys %v, %d event appends", gets, len(manys), manys, appends)
			if read < keys {
				t.Errorf("%d keys read for %d keys", read, keys)
			}
			if multi {
				// Keys the intent reader hands over in one piece are read
				// together (maxReadBatch at most per call).
				if gets > 1 || len(manys) > keys/50 {
					t.Errorf("%d Gets and %d GetManys for %d keys; want the keys read in a few GetManys", gets, len(manys), keys)
				}
				if appends > keys/50 {
					t.Errorf("%d event appends for %d keys read in %d GetManys; want about one per GetMany", appends, keys, len(manys))
				}
				return
			}
			if len(manys) > 0 || gets < keys {
				t.Errorf("a store without GetMany: %d Gets and %d GetManys for %d keys", gets, len(manys), keys)
			}
		})
	}
}
