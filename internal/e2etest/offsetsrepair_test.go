package e2etest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

// TestRepairDamagedOffsetsFile: the resolvers' committed offsets file of a
// stopped instance is damaged at rest (here one flipped bit), so the log
// refuses to open. `wail log repair` (Repair) keeps the damaged bytes and
// starts the group again at each partition's first retained offset, below
// what it had committed; the restarted resolver resolves again every
// intent it had resolved, while writers write again. Every invariant
// holds: every acknowledged write has an event at or above its version
// (also those logged while the resolver was down), the replay publishes no
// version the bus has (per key, versions strictly increase), and the last
// event of each key is the store's state.
func TestRepairDamagedOffsetsFile(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	log, err := embedded.Open(logDir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	flaky := newFlakyStore(st, 50)
	b := Backends{Log: log, Store: st}
	bus := eventbus.New(log)
	cat := openCatalog(ctx, t, b, bus, catalog.Table{FailureMode: catalog.Transactional, VisibilityWindow: 2 * time.Second, Partitions: 4})
	tb, _, err := cat.Create(ctx, catalog.Table{Name: table})
	if err != nil {
		t.Fatal(err)
	}
	clock, _ := hlc.New(7, nil)
	opts := Options{Writers: 4, HotKeys: 8, ColdKeys: 2000}
	h := &history{}
	writing := func(log intentlog.Log) (stop func()) {
		px := proxy.New(log, flaky, cat, clock, proxy.Limits{MaxKeyBytes: 4096, MaxValueBytes: 1 << 20, MaxBatch: 1000}, nil)
		var done atomic.Bool
		var wg sync.WaitGroup
		for w := range opts.Writers {
			wg.Go(func() { h.write(ctx, px, opts, tb.Name, int64(w), &done) })
		}
		return func() { done.Store(true); wg.Wait() }
	}

	// Before: the resolver publishes and commits, then stops while writes
	// go on (intents it never saw), and the instance stops.
	res := startResolver(ctx, b, bus, tb, "before")
	stop := writing(log)
	h.progress(t, "with the resolver running")
	waitFor(t, "commits of the resolver", func() bool {
		c, err := log.Committed(ctx, groupOf(tb.Name), intent.Topic(tb.Name))
		if err != nil || len(c) < int(tb.Partitions) {
			return false
		}
		for _, o := range c {
			if o == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond)
	h.progress(t, "after the first commits")
	res.stop(t)
	h.progress(t, "with the resolver stopped")
	stop()
	committed, err := log.Committed(ctx, groupOf(tb.Name), intent.Topic(tb.Name))
	if err != nil {
		t.Fatal(err)
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}

	// The damage: a bit of the file flips at rest. The log refuses it.
	path := filepath.Join(logDir, intent.Topic(tb.Name), "offsets", groupOf(tb.Name))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-6] ^= 0x04 // the last partition's offset
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err := embedded.Open(logDir, embedded.Options{}); !errors.Is(err, intentlog.ErrCorrupt) {
		if err == nil {
			l.Close()
		}
		t.Fatalf("Open of the damaged offsets file: %v, want ErrCorrupt", err)
	}
	rep, err := embedded.Repair(logDir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Offsets) != 1 || rep.Offsets[0].Group != groupOf(tb.Name) || rep.Offsets[0].Topic != intent.Topic(tb.Name) || len(rep.Lost) != 0 {
		t.Fatalf("repair: %+v, want the resolvers' offsets file of %s replaced and nothing lost", rep, intent.Topic(tb.Name))
	}

	// After: the instance starts again; the resolver replays from the
	// start while writers write.
	log, err = embedded.Open(logDir, embedded.Options{})
	if err != nil {
		t.Fatalf("Open after the repair: %v", err)
	}
	t.Cleanup(func() { log.Close() })
	restart, err := log.Committed(ctx, groupOf(tb.Name), intent.Topic(tb.Name))
	if err != nil {
		t.Fatal(err)
	}
	for p := range tb.Partitions {
		if restart[p] > committed[p] || restart[p] != rep.Offsets[0].Start[p] {
			t.Fatalf("partition %d starts again at %d (report %v); it had committed %d", p, restart[p], rep.Offsets[0].Start, committed[p])
		}
	}
	t.Logf("committed before the damage %v, after the repair %v", committed, restart)
	b.Log = log
	bus = eventbus.New(log)
	res = startResolver(ctx, b, bus, tb, "after")
	stop = writing(log)
	h.progress(t, "after the repair")
	time.Sleep(500 * time.Millisecond)
	h.progress(t, "after the repair, again")
	stop()
	waitSettled(t, ctx, log, tb)
	res.stop(t)

	t.Logf("%d writes acknowledged", h.acked)
	for off, l := range readDeadLetters(t, ctx, log, tb.Name).letters {
		t.Errorf("dead letter at %d: key %q %v: %s", off, l.Key, l.Kind, l.Error)
	}
	Check(t, h.writes, readEvents(t, ctx, log, tb), flaky.check, finalState(t, ctx, st, tb.Name, flaky.keys()), nil)
}
