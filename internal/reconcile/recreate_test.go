package reconcile

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// recreate drops the rig's table "t" and creates it again with partitions
// (as `wail table drop` and `create` do: the store's rows, the intent and
// event topics), then writes key at version, publishes it and resolves
// it in the new table: the bus has the key's stored state.
func (r *rig) recreate(partitions int32, key string, version uint64) {
	r.t.Helper()
	ctx := r.t.Context()
	if err := r.store.DropTable(ctx, "t"); err != nil {
		r.t.Fatal(err)
	}
	for _, topic := range []string{intent.Topic("t"), eventbus.Topic("t")} {
		if err := r.log.DeleteTopic(ctx, topic); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := r.store.CreateTable(ctx, "t"); err != nil {
		r.t.Fatal(err)
	}
	if err := r.log.CreateTopic(ctx, intent.Topic("t"), partitions, intentlog.TopicOptions{}); err != nil {
		r.t.Fatal(err)
	}
	if err := r.bus.CreateTable(ctx, "t", partitions, 0); err != nil {
		r.t.Fatal(err)
	}
	old := r.table
	r.table = Table{Name: "t", Partitions: partitions}
	r.logIntent(key, version)
	r.write(key, version, false)
	r.publish(key, version)
	r.resolveAll()
	r.table = old
}

// TestRecreatedMidRun: a reconcile or a redrive (Keys) that started on a
// table dropped and created again while it ran (it read the catalog entry
// before) fails with ErrRecreated and logs nothing. Before, it went on with
// the old table's partition count, or with what it had scanned of the old
// table's topics, against the new ones: it fenced and scanned the wrong
// partition (or the old bus), found no event of a key the new bus has at
// its stored version, and logged an intent for it with a published_floor
// below that event. A resolver that no longer remembered the event (past
// its dedupe horizon) then published the version a second time.
func TestRecreatedMidRun(t *testing.T) {
	t.Parallel()
	t.Run("another partition count", func(t *testing.T) {
		t.Parallel()
		for _, keys := range []bool{false, true} {
			r := newRig(t, 1)
			r.write("d", 5, false) // "d" is on partition 1 of 2
			r.publish("d", 5)
			r.resolveAll()
			r.log.mu.Lock()
			r.log.onCommitted = func() { r.recreate(2, "d", 9) } // at the first fence
			r.log.mu.Unlock()
			var err error
			if keys {
				_, err = Keys(t.Context(), r.opts(), r.table, [][]byte{[]byte("d")})
			} else {
				_, err = Run(t.Context(), r.opts(), r.table, nil)
			}
			if !errors.Is(err, ErrRecreated) {
				t.Errorf("keys %v: err = %v, want ErrRecreated", keys, err)
			}
			r.table = Table{Name: "t", Partitions: 2}
			if got := r.intents()["d"]; len(got) != 1 {
				t.Errorf("keys %v: intents of d %+v, want only its write's", keys, got)
			}
		}
	})
	t.Run("same partition count", func(t *testing.T) {
		t.Parallel()
		r, o, clock := newClockedRig(t) // "k" stored at 7, a minute's horizon
		for v := uint64(1); v <= 3; v++ {
			r.logIntent("x", v)
			r.publish("x", v)
		}
		r.resolveAll()
		// The first read is slow (the batch is fenced again) and meets
		// the table created again.
		once := atomic.Bool{}
		o.Store = &slowStore{Store: r.store, get: func() {
			if !once.Swap(true) {
				r.recreate(1, "k", 9)
				clock.Add(int64(20 * time.Second))
			}
		}}
		// The clock moves only with the reads: a wait on it that does not
		// end fails at this deadline instead of hanging.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, err := Keys(ctx, o, r.table, [][]byte{[]byte("k")})
		if !errors.Is(err, ErrRecreated) {
			t.Errorf("err = %v, want ErrRecreated", err)
		}
		if got := r.intents()["k"]; len(got) != 1 {
			t.Errorf("intents of k %+v, want only its write's", got)
		}
	})
}
