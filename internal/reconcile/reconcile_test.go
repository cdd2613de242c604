package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	now := time.Now()
	old := hlc.At(now.Add(-time.Hour))
	recent := hlc.At(now)
	tests := []struct {
		name string
		f    Facts
		want Verdict
	}{
		{"absent", Facts{}, UpToDate},
		{"published", Facts{Found: true, Version: 5, LastEvent: 5}, UpToDate},
		{"bus_ahead", Facts{Found: true, Version: 5, LastEvent: 7}, UpToDate},
		{"behind", Facts{Found: true, Version: 9, LastEvent: 5}, Behind},
		{"behind_tombstone", Facts{Found: true, Version: 9, Deleted: true, LastEvent: 5}, Behind},
		{"behind_compacted", Facts{Found: true, Version: 9, LastEvent: 5, Compacted: true}, Behind},
		{"never_published", Facts{Found: true, Version: 9}, Behind},
		{"never_published_tombstone", Facts{Found: true, Version: 9, Deleted: true}, Behind},
		{"in_flight", Facts{Found: true, Version: 9, LastEvent: 5, Pending: true}, InFlight},
		// On a compacted bus that lost nothing to time retention, no
		// record at all means the key's last record was a tombstone
		// compaction removed, or it never had one: a consumer sees it
		// deleted, as the store does (it was expired, and held GAP
		// letters open).
		{"compacted_tombstone", Facts{Found: true, Version: 9, Deleted: true, Compacted: true}, UpToDate},
		// Time retention (compact,delete) may have removed its only
		// upsert while its delete was never published.
		{"compacted_tombstone_retention", Facts{Found: true, Version: recent, Deleted: true, Compacted: true, RetainedSince: now.Add(-time.Hour)}, Expired},
		{"compacted_tombstone_older_than_retained", Facts{Found: true, Version: old, Deleted: true, Compacted: true, RetainedSince: now.Add(-time.Minute)}, Expired},
		{"compacted_upsert", Facts{Found: true, Version: 9, Compacted: true}, Behind},
		{"older_than_retained", Facts{Found: true, Version: old, RetainedSince: now.Add(-time.Minute)}, Expired},
		{"within_skew_of_retained", Facts{Found: true, Version: recent, RetainedSince: now.Add(-30 * time.Second)}, Expired},
		{"newer_than_retained", Facts{Found: true, Version: recent, RetainedSince: now.Add(-time.Hour)}, Behind},
		{"retention_irrelevant_with_event", Facts{Found: true, Version: old + 1, LastEvent: old, RetainedSince: now}, Behind},
	}
	for _, tc := range tests {
		if got := Decide(tc.f); got != tc.want {
			t.Errorf("%s: Decide(%+v) = %v, want %v", tc.name, tc.f, got, tc.want)
		}
	}
}

// rig is a table on an embedded log and a Pebble store, with no resolver:
// tests publish events and commit offsets themselves.
type rig struct {
	t     testing.TB
	log   *hookLog
	bus   *eventbus.Bus
	store *pebble.Store
	table Table
}

const group = "g"

// hookLog runs onCommitted (once) and everyCommitted when Committed is
// called.
type hookLog struct {
	*embedded.Log
	mu             sync.Mutex
	onCommitted    func()
	everyCommitted func()
	committed      atomic.Int64
}

func (l *hookLog) Committed(ctx context.Context, g, topic string) (map[int32]int64, error) {
	l.committed.Add(1)
	l.mu.Lock()
	f, every := l.onCommitted, l.everyCommitted
	l.onCommitted = nil
	l.mu.Unlock()
	if f != nil {
		f()
	}
	if every != nil {
		every()
	}
	return l.Log.Committed(ctx, g, topic)
}

func newRig(t testing.TB, partitions int32) *rig {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	el, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { el.Close() })
	st, err := pebble.Open(t.TempDir(), pebble.Options{NoSync: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &rig{t: t, log: &hookLog{Log: el}, store: st, table: Table{Name: "t", Partitions: partitions}}
	r.bus = eventbus.New(r.log)
	ctx := t.Context()
	if err := st.CreateTable(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if err := el.CreateTopic(ctx, intent.Topic("t"), partitions, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.bus.CreateTable(ctx, "t", partitions, 0); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) opts() Options {
	return Options{Log: r.log, Bus: r.bus, Store: r.store, Group: group, CatchUp: 2 * time.Second}
}

func (r *rig) write(key string, version uint64, deleted bool) {
	r.t.Helper()
	m := store.Mutation{Key: []byte(key), Value: []byte(fmt.Sprintf("%s@%d", key, version)), Version: version, Delete: deleted}
	if _, err := r.store.Apply(r.t.Context(), "t", []store.Mutation{m}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) publish(key string, version uint64) {
	r.t.Helper()
	e := intent.Event{Table: "t", Key: []byte(key), Op: intent.Upsert, Version: version, Value: []byte("x")}
	if err := r.bus.Publish(r.t.Context(), "t", []intent.Event{e}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) logIntent(key string, version uint64) {
	r.t.Helper()
	in := intent.Intent{Table: "t", Key: []byte(key), Op: intent.Upsert, Version: version, ID: "test"}
	b, _ := in.Marshal()
	if err := r.log.Append(context.Background(), intent.Topic("t"), []*intentlog.Record{{Key: in.Key, Value: b}}); err != nil {
		r.t.Fatal(err)
	}
}

// resolveAll commits every intent partition's end, as a resolver that
// resolved everything would.
func (r *rig) resolveAll() {
	r.t.Helper()
	ctx := r.t.Context()
	offs := map[int32]int64{}
	for p := range r.table.Partitions {
		_, end, err := r.log.Bounds(ctx, intent.Topic("t"), p)
		if err != nil {
			r.t.Fatal(err)
		}
		offs[p] = end
	}
	if err := r.log.Commit(ctx, group, intent.Topic("t"), offs); err != nil {
		r.t.Fatal(err)
	}
}

// intents returns every intent logged, by key.
func (r *rig) intents() map[string][]intent.Intent {
	r.t.Helper()
	out := map[string][]intent.Intent{}
	for p := range r.table.Partitions {
		recs, _ := r.records(intent.Topic("t"), p, 0)
		for _, rec := range recs {
			in, err := intent.UnmarshalIntent(rec.Value)
			if err != nil {
				r.t.Fatal(err)
			}
			out[string(in.Key)] = append(out[string(in.Key)], in)
		}
	}
	return out
}

// records returns the records of topic's partition p from offset from to
// its end, and that end.
func (r *rig) records(topic string, p int32, from int64) ([]intentlog.Record, int64) {
	r.t.Helper()
	ctx := r.t.Context()
	_, end, err := r.log.Bounds(ctx, topic, p)
	if err != nil {
		r.t.Fatal(err)
	}
	rd, err := r.log.NewReader(topic, p, from)
	if err != nil {
		r.t.Fatal(err)
	}
	defer rd.Close()
	var out []intentlog.Record
	for rd.Position() < end {
		recs, err := rd.Next(ctx)
		if err != nil {
			r.t.Fatal(err)
		}
		out = append(out, recs...)
	}
	return out, end
}

func TestRun(t *testing.T) {
	t.Parallel()
	r := newRig(t, 3)
	// Published and current; behind with an older event; never published;
	// a tombstone never published; the bus ahead (a restored store).
	r.write("current", 10, false)
	r.publish("current", 10)
	r.write("behind", 20, false)
	r.publish("behind", 15)
	r.write("lost", 30, false)
	r.write("gone", 40, true)
	r.write("restored", 50, false)
	r.publish("restored", 55)
	r.resolveAll()
	for _, dry := range []bool{true, false} {
		o := r.opts()
		o.DryRun = dry
		rep, err := Run(t.Context(), o, r.table, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Scanned != 5 || rep.Behind != 3 || len(rep.Keys) != 3 || rep.InFlight != 0 || rep.Expired != 0 {
			t.Fatalf("dry run %v: report %+v", dry, rep)
		}
		for _, k := range rep.Keys {
			if (k.Logged != 0) == dry || k.Verdict != Behind || k.Partition != intentlog.Partition(k.Key, 3) {
				t.Errorf("dry run %v: key %+v", dry, k)
			}
		}
		if got := r.intents(); dry && len(got) != 0 {
			t.Fatalf("a dry run logged %v", got)
		}
	}
	got := r.intents()
	want := map[string]intent.Intent{
		"behind": {Op: intent.Upsert, Version: 20, PublishedFloor: 15},
		"lost":   {Op: intent.Upsert, Version: 30, PublishedFloor: intent.NoEventFloor},
		"gone":   {Op: intent.Delete, Version: 40, PublishedFloor: intent.NoEventFloor},
	}
	if len(got) != len(want) {
		t.Errorf("intents for %d keys, want %d: %v", len(got), len(want), got)
	}
	for k, w := range want {
		ins := got[k]
		if len(ins) != 1 || ins[0].Op != w.Op || ins[0].Version != w.Version || ins[0].PublishedFloor != w.PublishedFloor ||
			!strings.HasPrefix(ins[0].ID, "reconcile-") || ins[0].Table != "t" {
			t.Errorf("key %s: intents %+v, want one %+v", k, ins, w)
		}
	}
}

// TestRunChunks: a chunk budget far below the table's keys gives the same
// answer, in several passes.
func TestRunChunks(t *testing.T) {
	t.Parallel()
	r := newRig(t, 2)
	for i := range 300 {
		k := fmt.Sprintf("k%03d", i)
		r.write(k, uint64(100+i), false)
		if i%3 != 0 {
			r.publish(k, uint64(100+i))
		}
	}
	r.resolveAll()
	o := r.opts()
	o.ChunkBytes = 1 // every page of the scan is a chunk
	o.DryRun = true
	before := r.log.committed.Load()
	rep, err := Run(t.Context(), o, r.table, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Scanned != 300 || rep.Behind != 100 {
		t.Errorf("report %+v, want 300 scanned, 100 behind", rep)
	}
	if fences := r.log.committed.Load() - before; fences < 2 {
		t.Errorf("%d fences: the chunks were not separate passes", fences)
	}
	only, err := Run(t.Context(), o, r.table, []int32{1})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range only.Keys {
		if k.Partition != 1 {
			t.Errorf("partition filter 1: key %q of partition %d", k.Key, k.Partition)
		}
	}
	if only.Scanned == 0 || only.Scanned == 300 {
		t.Errorf("partition filter 1 scanned %d keys", only.Scanned)
	}
}

// TestInFlight: a key whose stored version's intent was logged after the
// fence is left to the resolver.
func TestInFlight(t *testing.T) {
	t.Parallel()
	r := newRig(t, 1)
	r.write("k", 7, false)
	r.publish("k", 3)
	r.resolveAll()
	// The write of version 7 is logged right after the fence (the resolver
	// has yet to resolve it).
	r.log.onCommitted = func() { r.logIntent("k", 7) }
	got, err := Keys(t.Context(), r.opts(), r.table, [][]byte{[]byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Verdict != InFlight || got[0].Logged != 0 || got[0].Stored != 7 || got[0].LastEvent != 3 {
		t.Errorf("key %+v, want in flight", got[0])
	}
	if n := len(r.intents()["k"]); n != 1 {
		t.Errorf("%d intents of k, want only the write's", n)
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	r := newRig(t, 4)
	r.write("a", 5, false)
	r.write("b", 6, true)
	r.publish("b", 6)
	r.resolveAll()
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("absent"), []byte("a")}
	got, err := Keys(t.Context(), r.opts(), r.table, keys)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		v      Verdict
		logged uint64
	}{{Behind, 5}, {UpToDate, 0}, {UpToDate, 0}, {Behind, 5}}
	for i, w := range want {
		if got[i].Verdict != w.v || got[i].Logged != w.logged || string(got[i].Key) != string(keys[i]) {
			t.Errorf("key %q: %+v, want %v logged %d", keys[i], got[i], w.v, w.logged)
		}
	}
	if n := len(r.intents()["a"]); n != 1 {
		t.Errorf("a duplicate key logged %d intents", n)
	}
}

func TestNotCaughtUp(t *testing.T) {
	t.Parallel()
	r := newRig(t, 1)
	r.write("k", 7, false)
	r.logIntent("k", 7) // never resolved: no resolver runs
	o := r.opts()
	o.CatchUp = 50 * time.Millisecond
	_, err := Keys(t.Context(), o, r.table, [][]byte{[]byte("k")})
	if !errors.Is(err, ErrNotCaughtUp) || !strings.Contains(err.Error(), "resolved up to 0") {
		t.Fatalf("err = %v, want ErrNotCaughtUp naming the offsets", err)
	}
	if n := len(r.intents()["k"]); n != 1 {
		t.Errorf("%d intents of k after a failed fence, want 1", n)
	}
	// It asked for the committed offsets every 20ms (pollEvery), not in a
	// busy loop.
	if n := r.log.committed.Load(); n > 10 {
		t.Errorf("%d reads of the committed offsets in 50ms", n)
	}
}

// newClockedRig is a one-partition rig with key k stored at 7 and
// resolved, and options on a clock the test moves; the horizon is a
// minute (budget 15 s; a fence may wait 7.5 s).
func newClockedRig(t *testing.T) (*rig, Options, *atomic.Int64) {
	r := newRig(t, 1)
	r.write("k", 7, false)
	r.resolveAll()
	clock := &atomic.Int64{}
	clock.Store(time.Now().UnixNano())
	o := r.opts()
	o.Horizon = time.Minute
	o.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	return r, o, clock
}

// TestSlowReads: reads that outlast a quarter of the horizon make the
// partition fence again before anything is logged, and give up after a
// few tries.
func TestSlowReads(t *testing.T) {
	t.Parallel()
	r, o, clock := newClockedRig(t)
	slow := &slowStore{Store: r.store, get: func() { clock.Add(int64(20 * time.Second)) }}
	o.Store = slow
	before := r.log.committed.Load()
	// The clock moves only with the reads: a wait on it that does not
	// end fails at this deadline instead of hanging.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := Keys(ctx, o, r.table, [][]byte{[]byte("k")})
	if err == nil || !strings.Contains(err.Error(), "took longer than 15s") {
		t.Fatalf("err = %v, want the reads to take too long", err)
	}
	if fences := r.log.committed.Load() - before; fences != 1+maxRefences {
		t.Errorf("%d fences, want %d", fences, 1+maxRefences)
	}
	if n := len(r.intents()["k"]); n != 0 {
		t.Errorf("%d intents logged past the budget", n)
	}
	// Once, then fast: the second fence's reads are in time.
	slowOnce := atomic.Bool{}
	slow.get = func() {
		if !slowOnce.Swap(true) {
			clock.Add(int64(20 * time.Second))
		}
	}
	got, err := Keys(ctx, o, r.table, [][]byte{[]byte("k")})
	if err != nil || got[0].Logged != 7 {
		t.Fatalf("after one slow read: %+v, %v", got, err)
	}
}

type slowStore struct {
	store.Store
	get func()
}

func (s *slowStore) Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error) {
	s.get()
	return s.Store.Get(ctx, table, key, level)
}

func TestNoScanner(t *testing.T) {
	t.Parallel()
	r := newRig(t, 1)
	o := r.opts()
	o.Store = &slowStore{Store: r.store, get: func() {}}
	if _, err := Run(t.Context(), o, r.table, nil); !errors.Is(err, ErrNoScan) {
		t.Errorf("err = %v, want ErrNoScan", err)
	}
}

// TestSlowFence: a fence whose wait for the resolvers eats more than half
// the budget is taken again; when every wait is that slow, reconcile gives
// up (the resolvers are too far behind for it to be safe).
func TestSlowFence(t *testing.T) {
	t.Parallel()
	r, o, clock := newClockedRig(t)
	r.log.mu.Lock()
	waits := atomic.Int32{}
	r.log.everyCommitted = func() { // on the goroutine of Keys
		if waits.Add(1) > 100 {
			t.Fatal("fenced again and again: a fence taken again without end")
		}
		clock.Add(int64(10 * time.Second))
	}
	r.log.mu.Unlock()
	before := r.log.committed.Load()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // a fence taken again without end fails too
	defer cancel()
	_, err := Keys(ctx, o, r.table, [][]byte{[]byte("k")})
	if !errors.Is(err, ErrNotCaughtUp) || !strings.Contains(err.Error(), "took 10s to resolve what was logged before the fence, 4 times in a row; reconcile needs less than 7.5s (an eighth of the dedupe horizon)") {
		t.Fatalf("err = %v, want ErrNotCaughtUp: the resolvers are too slow, by how much", err)
	}
	if fences := r.log.committed.Load() - before; fences != 1+maxRefences {
		t.Errorf("%d fences, want %d", fences, 1+maxRefences)
	}
	slow := atomic.Int32{}
	r.log.mu.Lock()
	r.log.everyCommitted = func() {
		if slow.Add(1) == 1 {
			clock.Add(int64(10 * time.Second))
		}
	}
	r.log.mu.Unlock()
	got, err := Keys(t.Context(), o, r.table, [][]byte{[]byte("k")})
	if err != nil || got[0].Logged != 7 || slow.Load() != 2 {
		t.Fatalf("one slow wait: %+v, %v after %d waits; want the key logged after a second fence", got, err, slow.Load())
	}
	// A wait of an eighth of the horizon exactly is not over it: one fence.
	eighth := atomic.Int32{}
	r.log.mu.Lock()
	r.log.everyCommitted = func() {
		if eighth.Add(1) == 1 {
			clock.Add(int64(o.Horizon / 8))
		}
	}
	r.log.mu.Unlock()
	r.write("k", 8, false)
	r.resolveAll() // the intent of 7 logged above
	got, err = Keys(t.Context(), o, r.table, [][]byte{[]byte("k")})
	if err != nil || got[0].Logged != 8 || eighth.Load() != 1 {
		t.Fatalf("a wait of an eighth of the horizon: %+v, %v after %d waits; want the key logged after one fence", got, err, eighth.Load())
	}
}

// TestReadsWithinTheBudget: reads that end a quarter of the horizon after
// the fence exactly are still within it: the batch is logged against that
// fence, and so is the partition's next batch, whose reads take no time.
func TestReadsWithinTheBudget(t *testing.T) {
	t.Parallel()
	r, o, clock := newClockedRig(t) // budget 15s
	keys := [][]byte{[]byte("k")}
	for i := range pageKeys {
		k := fmt.Sprintf("b%04d", i)
		r.write(k, 7, false)
		keys = append(keys, []byte(k))
	}
	once := atomic.Bool{}
	o.Store = &slowStore{Store: r.store, get: func() {
		if !once.Swap(true) {
			clock.Add(int64(o.Horizon / 4))
		}
	}}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	before := r.log.committed.Load()
	got, err := Keys(ctx, o, r.table, keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range got {
		if k.Logged != 7 {
			t.Fatalf("key %s: %+v, want logged at 7", k.Key, k)
		}
	}
	if fences := r.log.committed.Load() - before; fences != 1 {
		t.Errorf("%d fences, want 1", fences)
	}
}

// TestCatchUpDefault: a zero Options.CatchUp waits DefaultCatchUp for the
// resolvers, not no time at all.
func TestCatchUpDefault(t *testing.T) {
	t.Parallel()
	r := newRig(t, 1)
	r.write("k", 7, false)
	r.logIntent("k", 7) // resolved 100ms later
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		time.Sleep(100 * time.Millisecond)
		r.resolveAll()
	})
	o := r.opts()
	o.CatchUp = 0
	got, err := Keys(t.Context(), o, r.table, [][]byte{[]byte("k")})
	if err != nil || got[0].Verdict != Behind {
		t.Fatalf("keys with a zero CatchUp: %+v, %v; want k behind once the resolvers caught up", got, err)
	}
}

// slowAppends is the rig's log whose appends take 20s on the test's
// clock.
type slowAppends struct {
	*hookLog
	clock *atomic.Int64
}

func (l slowAppends) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	l.clock.Add(int64(20 * time.Second))
	return l.hookLog.Append(ctx, topic, recs)
}

// TestWholePagesFencedOnce: a partition whose keys fill whole batches
// ends with its last batch: a slow append of that batch's intents (past
// the budget) does not fence the partition again, which would wait for
// the resolvers, and could fail the run, with nothing left to log.
func TestWholePagesFencedOnce(t *testing.T) {
	t.Parallel()
	r, o, clock := newClockedRig(t)
	keys := [][]byte{[]byte("k")}
	for i := range pageKeys - 1 {
		k := fmt.Sprintf("b%04d", i)
		r.write(k, 7, false)
		keys = append(keys, []byte(k))
	}
	o.Log = slowAppends{hookLog: r.log, clock: clock}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	before := r.log.committed.Load()
	got, err := Keys(ctx, o, r.table, keys)
	if err != nil || len(got) != pageKeys || got[pageKeys-1].Logged != 7 {
		t.Fatalf("keys: %d, %v; want %d logged", len(got), err, pageKeys)
	}
	if fences := r.log.committed.Load() - before; fences != 1 {
		t.Errorf("%d fences, want 1", fences)
	}
}
