// Package e2etest is the end-to-end invariant suite: it drives a whole
// pipeline (proxy, intent log, store, resolver, event bus) with concurrent
// writers over a small hot key set and a large cold one, injects store-write
// failures (before and after the write lands), stops and restarts the
// resolver mid-stream, and then checks the four invariants:
//
//  1. an acknowledged write always leads to an event whose version is >=
//     its own;
//  2. no event carries a version that was never stored (and its value is the
//     one stored with that version);
//  3. per key, event versions strictly increase on the bus;
//  4. once writes stop, the last event of each key equals the store's state.
//
// Acknowledged means no error and intent_logged. A version held by an
// unsettled dead letter is exempt from 1 and 4 (Check's Exempt); a run
// without poison must dead-letter nothing, and Run fails on any letter.
//
// Every backend combination runs it through Run. Failures name the key and
// the versions involved.
package e2etest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/landing"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/resolver"
	"github.com/wail-cdc/wail/internal/store"
)

// Backends is what a pipeline under test runs on.
type Backends struct {
	Log   intentlog.Log // intent log and event bus
	Store store.Store
	// Join, when set, makes the resolvers group members (Kafka): it returns
	// the JoinFunc of a resolver of the group with the given instance id. The second
	// resolver then joins before the first leaves (a rebalance each way).
	Join func(group, instance string) resolver.JoinFunc
	// Landing, set by Run, is the proxy's store writes in flight, which
	// the resolvers of the process hold their reads on (as wail serve
	// wires them).
	Landing *landing.Writes
	// Final, when set, reads the store's state at the end of a run,
	// instead of Store at its strongest read level: Cassandra's converged
	// state is what a read at ALL returns (a write that reached one
	// replica, which the resolver read at ONE, is not yet on a quorum).
	Final store.Store
}

// Options size a run.
type Options struct {
	Writers   int
	Duration  time.Duration
	HotKeys   int
	ColdKeys  int
	FailEvery int // about one store write in FailEvery fails (0: none)
	// Table names the table (default "inv"); a unique name keeps runs apart
	// on a shared broker.
	Table string
	// Disrupt, if set, runs once mid-stream while writers keep writing
	// (e.g. restarts the database); it returns when the disruption is over.
	Disrupt func(t *testing.T)
	// Lost, if set, says that a version of a key was never durable (a
	// crash took it away): an event that carries it breaks invariant 2.
	Lost func(key string, version uint64) bool
	// Poison, if set, gets one mutation in eight while its writes are on.
	Poison *Poison
	// Timeout bounds the whole run (0: 2 minutes).
	Timeout time.Duration
	// Validator, if set, is the proxy's (a typed table); Value, if set,
	// makes the writers' values (json: Value is the value message's
	// Protobuf JSON, converted by the Validator).
	Validator proxy.Validator
	Value     func(key string, writer int64, seq int) (value []byte, json bool)
	// Typer, if set, is the bus's (typed tables' events in the Confluent
	// wire format); Events, if set, gets every event of the run.
	Typer  eventbus.Typer
	Events func(t *testing.T, events []Event)
}

// DefaultOptions fit a 2-core machine in a few seconds.
func DefaultOptions() Options {
	return Options{Writers: 4, Duration: 3 * time.Second, HotKeys: 8, ColdKeys: 20000, FailEvery: 50}
}

const table = "inv"

// groupOf is the resolvers' group of a table: runs on a shared broker
// must not share a consumer group.
func groupOf(table string) string { return "wail-resolver." + table }

// Run drives the pipeline on the backends that open returns and checks the
// invariants.
func Run(t *testing.T, open func(t *testing.T) Backends, opts Options) {
	b := open(t)
	frozen := &frozenLog{Log: b.Log}
	b.Log = frozen
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	flaky := newFlakyStore(b.Store, opts.FailEvery)
	bus := eventbus.New(b.Log)
	if opts.Typer != nil {
		bus.SetTyper(opts.Typer)
	}
	cat := openCatalog(ctx, t, b, bus, catalog.Table{FailureMode: catalog.Transactional, VisibilityWindow: 2 * time.Second, Partitions: 4})
	if opts.Table == "" {
		opts.Table = table
	}
	tb, _, err := cat.Create(ctx, catalog.Table{Name: opts.Table})
	if err != nil {
		t.Fatal(err)
	}
	clock, _ := hlc.New(7, nil)
	b.Landing = landing.New()
	px := proxy.New(b.Log, flaky, cat, clock, proxy.Limits{MaxKeyBytes: 4096, MaxValueBytes: 1 << 20, MaxBatch: 1000}, nil).WithLanding(b.Landing)
	if opts.Validator != nil {
		px.SetValidator(opts.Validator)
	}

	res := startResolver(ctx, b, bus, tb, "first")
	h := &history{}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < opts.Writers; w++ {
		wg.Go(func() { h.write(ctx, px, opts, tb.Name, int64(w), &stop) })
	}
	time.Sleep(opts.Duration / 3)
	h.progress(t, "before the resolver hand-over")
	if b.Join != nil {
		// A second member joins (partitions move to it), then the first
		// leaves (they all move to the second).
		second := startResolver(ctx, b, bus, tb, "second")
		time.Sleep(opts.Duration / 6)
		h.progress(t, "while two resolvers share the group")
		res.stop(t)
		res = second
	} else {
		frozen.frozen.Store(true) // the resolver publishes but can no longer commit ...
		time.Sleep(opts.Duration / 6)
		h.progress(t, "while commits are frozen")
		// ... until it has resolved intents it could not commit: the crash
		// below then happens with published-but-uncommitted work.
		waitFor(t, "a commit refused while frozen", func() bool { return frozen.refused.Load() > 0 })
		res.stop(t) // ... and stops mid-stream, as if it had crashed ...
		frozen.frozen.Store(false)
		res = startResolver(ctx, b, bus, tb, "second") // ... and a new one takes over
	}
	time.Sleep(opts.Duration / 4)
	if opts.Disrupt != nil {
		opts.Disrupt(t)
	}
	time.Sleep(opts.Duration / 4)
	h.progress(t, "after the hand-over")
	stop.Store(true)
	wg.Wait()
	waitSettled(t, ctx, b.Log, tb)
	res.stop(t)
	if h.acked == 0 {
		t.Fatal("no write was acknowledged")
	}
	t.Logf("%d writes acknowledged, %d store failures injected (%d before the write, %d after it), %d commits refused while frozen",
		h.acked, flaky.failures.Load(), flaky.before.Load(), flaky.after.Load(), frozen.refused.Load())
	if opts.FailEvery > 0 && (flaky.before.Load() == 0 || flaky.after.Load() == 0) {
		t.Fatalf("store failures were to be injected (one in %d) but %d happened before the write and %d after it: the run proves nothing about them",
			opts.FailEvery, flaky.before.Load(), flaky.after.Load())
	}
	evs := readEvents(t, ctx, b.Log, tb)
	stored := flaky.check
	if opts.Lost != nil {
		stored = func(e *intent.Event) error {
			if opts.Lost(string(e.Key), e.Version) {
				return errors.New("the store never made this version durable (a crash took it away)")
			}
			return flaky.check(e)
		}
	}
	// Nothing here is poison: store and log outages, failed writes and
	// crashes must dead-letter nothing (the outage rule).
	for off, l := range readDeadLetters(t, ctx, b.Log, tb.Name).letters {
		t.Errorf("dead letter at %d without poison: key %q %v: %s (%d attempts)", off, l.Key, l.Kind, l.Error, l.Attempts)
	}
	final := b.Store
	if b.Final != nil {
		final = b.Final
	}
	Check(t, h.writes, evs, stored, finalState(t, ctx, final, tb.Name, flaky.keys()), nil)
	if opts.Events != nil {
		opts.Events(t, evs)
	}
}

// provision makes and removes a table's intent, event and dead-letter
// topics, as the server does.
func provision(log intentlog.Log, bus *eventbus.Bus) catalog.Provisioner { return topics{log, bus} }

// openCatalog opens the table catalog on b's store with defaults; a new
// table's topics go on b's log (intents, dead letters) and bus (events).
func openCatalog(ctx context.Context, t *testing.T, b Backends, bus *eventbus.Bus, defaults catalog.Table) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.Open(ctx, b.Store, catalog.Options{Provisioner: provision(b.Log, bus), Defaults: defaults})
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// topics makes and removes a table's topics.
type topics struct {
	log intentlog.Log
	bus *eventbus.Bus
}

func (p topics) Provision(ctx context.Context, tb catalog.Table) error {
	if err := p.log.CreateTopic(ctx, intent.Topic(tb.Name), tb.Partitions, intentlog.TopicOptions{}); err != nil {
		return err
	}
	if err := p.bus.CreateTable(ctx, tb.Name, tb.Partitions, 0); err != nil {
		return err
	}
	return p.log.CreateTopic(ctx, dlq.Topic(tb.Name), dlq.Partitions, intentlog.TopicOptions{})
}

func (p topics) Unprovision(ctx context.Context, tb catalog.Table) error {
	for _, topic := range []string{intent.Topic(tb.Name), eventbus.Topic(tb.Name), dlq.Topic(tb.Name)} {
		if err := p.log.DeleteTopic(ctx, topic); err != nil {
			return err
		}
	}
	return nil
}

type runningResolver struct {
	cancel context.CancelFunc
	done   chan error
}

func startResolver(ctx context.Context, b Backends, bus *eventbus.Bus, tb catalog.Table, instance string) *runningResolver {
	return startResolverWith(ctx, b, bus, tb, instance, nil)
}

// startResolverWith is startResolver with the config changed by mod.
func startResolverWith(ctx context.Context, b Backends, bus *eventbus.Bus, tb catalog.Table, instance string, mod func(*resolver.Config)) *runningResolver {
	cfg := resolver.Config{
		Group: groupOf(tb.Name), Concurrency: 32, BackoffMin: time.Millisecond, BackoffMax: 50 * time.Millisecond,
		Horizon: time.Minute, CommitInterval: 20 * time.Millisecond, MaxUnresolved: 100000, HangCheck: time.Second, Recheck: 1,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if b.Join != nil {
		cfg.Join = b.Join(cfg.Group, instance)
	}
	if b.Landing != nil {
		cfg.Landing = b.Landing
	}
	if mod != nil {
		mod(&cfg)
	}
	r := resolver.New(b.Log, b.Store, bus, cfg)
	rctx, cancel := context.WithCancel(ctx)
	rr := &runningResolver{cancel: cancel, done: make(chan error, 1)}
	go func() { rr.done <- r.Run(rctx, []catalog.Table{tb}, nil) }()
	return rr
}

func (r *runningResolver) stop(t *testing.T) {
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatalf("resolver: %v", err)
	}
}

// Write is one write the proxy answered.
type Write struct {
	Key     string
	Version uint64
	Value   string
	Delete  bool
	// Acked: the proxy answered without error and the intent is logged.
	Acked bool
}

type history struct {
	mu     sync.Mutex
	writes []Write
	acked  int
	// seen is acked at the last progress check.
	seen int
}

// progress waits until writes were acknowledged since its last call, so
// each step of a run happens with writes in flight (on a loaded machine a
// sleep alone can turn "crash mid-stream" into "crash when idle").
func (h *history) progress(t *testing.T, what string) {
	t.Helper()
	waitFor(t, "writes acknowledged "+what, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.acked > h.seen
	})
	h.mu.Lock()
	h.seen = h.acked
	h.mu.Unlock()
}

// waitFor polls cond until it holds; the test fails after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within a minute", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// write runs one writer: batches of puts and deletes, mostly on hot keys.
func (h *history) write(ctx context.Context, px *proxy.Proxy, o Options, table string, id int64, stop *atomic.Bool) {
	rng := rand.New(rand.NewSource(id))
	for seq := 0; !stop.Load() && ctx.Err() == nil; {
		n := 1 + rng.Intn(16)
		muts := make([]proxy.Mutation, n)
		for i := range muts {
			seq++
			key := fmt.Sprintf("hot-%d", rng.Intn(o.HotKeys))
			if rng.Intn(3) == 0 {
				key = fmt.Sprintf("cold-%d", rng.Intn(o.ColdKeys))
			}
			if o.Poison != nil && o.Poison.Writes.Load() && rng.Intn(8) == 0 {
				key = o.Poison.keys[rng.Intn(len(o.Poison.keys))]
			}
			muts[i] = proxy.Mutation{Table: table, Key: []byte(key), Value: []byte(fmt.Sprintf("%s#w%d#%d", key, id, seq)), Delete: rng.Intn(8) == 0}
			if o.Value != nil && !muts[i].Delete {
				muts[i].Value, muts[i].JSON = o.Value(key, id, seq)
			}
		}
		res := px.Write(ctx, muts) // a Validator may replace values (JSON converted): what is recorded is what was stored
		h.mu.Lock()
		for i, r := range res {
			w := Write{Key: string(muts[i].Key), Version: r.Version, Value: string(muts[i].Value), Delete: muts[i].Delete}
			w.Acked = r.Err == nil && r.IntentLogged
			if w.Acked {
				h.acked++
			}
			h.writes = append(h.writes, w)
		}
		h.mu.Unlock()
	}
}

// waitSettled waits until the resolver committed every intent and no
// transaction holds a partition of the table's events, while the
// resolver runs: readers then get every event up to each partition's end.
// A hang the resolver ends logs intents again, hence the loop.
func waitSettled(t *testing.T, ctx context.Context, log intentlog.Log, tb catalog.Table) {
	t.Helper()
	st, ok := log.(interface {
		StableEnd(ctx context.Context, topic string, partition int32) (stable, end int64, err error)
	})
	if !ok { // no transactions to wait for (embedded)
		waitResolved(t, ctx, log, groupOf(tb.Name), tb)
		return
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		waitResolved(t, ctx, log, groupOf(tb.Name), tb)
		held := ""
		for p := range tb.Partitions {
			stable, end, err := st.StableEnd(ctx, eventbus.Topic(tb.Name), p)
			if err != nil {
				t.Fatal(err)
			}
			if stable < end {
				held += fmt.Sprintf(" p%d:%d/%d", p, stable, end)
			}
		}
		if held == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("event partitions held below their end:%s", held)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitResolved waits until every partition's committed offset (of the
// resolvers' group) reaches the end of the intent log.
func waitResolved(t *testing.T, ctx context.Context, log intentlog.Log, group string, tb catalog.Table) {
	t.Helper()
	topic := intent.Topic(tb.Name)
	deadline := time.Now().Add(90 * time.Second)
	for {
		committed, err := log.Committed(ctx, group, topic)
		if err != nil {
			t.Fatal(err)
		}
		behind := ""
		for p := int32(0); p < tb.Partitions; p++ {
			_, end, err := log.Bounds(ctx, topic, p)
			if err != nil {
				t.Fatal(err)
			}
			if committed[p] < end {
				behind += fmt.Sprintf(" p%d:%d/%d", p, committed[p], end)
			}
		}
		if behind == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("resolver did not catch up:%s", behind)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Event is one event as read back from the bus, in bus order per partition.
type Event struct {
	Partition int32
	Offset    int64
	At        time.Time // when it was appended to the bus
	intent.Event
}

func readEvents(t *testing.T, ctx context.Context, log intentlog.Log, tb catalog.Table) []Event {
	t.Helper()
	var out []Event
	topic := eventbus.Topic(tb.Name)
	for p := int32(0); p < tb.Partitions; p++ {
		start, end, err := log.Bounds(ctx, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		if start == end {
			continue
		}
		r, err := log.NewReader(topic, p, start)
		if err != nil {
			t.Fatal(err)
		}
		var del *Event // a delete event whose tombstone must come next
		for r.Position() < end {
			recs, err := r.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				e, ok, err := eventbus.Decode(&rec)
				if err != nil {
					t.Fatalf("event %s/%d@%d: %v", topic, p, rec.Offset, err)
				}
				if !ok {
					checkTombstone(t, del, p, rec)
					del = nil
					continue
				}
				if del != nil {
					t.Errorf("delete event of key %q at %d/%d is not followed by its tombstone (offset %d is an event)", del.Key, p, del.Offset, rec.Offset)
					del = nil
				}
				out = append(out, Event{Partition: p, Offset: rec.Offset, At: rec.Timestamp, Event: e})
				if e.Op == intent.Delete && rec.Value != nil { // wail's envelope: a tombstone follows (a typed delete is one)
					d := out[len(out)-1]
					del = &d
				}
			}
		}
		if del != nil {
			t.Errorf("delete event of key %q at %d/%d is the last record of its partition: its tombstone is missing", del.Key, p, del.Offset)
		}
		r.Close()
	}
	return out
}

// checkTombstone verifies that a tombstone follows the delete event of its
// key (del: the event just before it in the partition, if a delete).
func checkTombstone(t *testing.T, del *Event, p int32, rec intentlog.Record) {
	t.Helper()
	if del == nil || string(del.Key) != string(rec.Key) {
		t.Errorf("tombstone of key %q at %d/%d does not follow its delete event", rec.Key, p, rec.Offset)
	}
}

func finalState(t *testing.T, ctx context.Context, st store.Store, table string, keys []string) map[string]store.Row {
	t.Helper()
	top := store.Level(len(st.Levels()) - 1)
	out := map[string]store.Row{}
	for _, k := range keys {
		// The final read is the test's, not the pipeline's: a store just
		// brought back (a Cassandra node restarted, read at ALL) may time
		// out a read for a while, which says nothing of the invariants.
		var row store.Row
		var found bool
		var err error
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
			row, found, err = st.Get(ctx, table, []byte(k), top)
			if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("the final state of %q: %v", k, err)
		}
		if found {
			out[k] = row
		}
	}
	return out
}

// Stored tells whether the store ever held an event's version of its key
// with the event's op and value; it returns why not.
type Stored func(e *intent.Event) error

// Exempt are versions of keys that sit in unsettled dead letters (see
// readDeadLetters): until redriven, the dead-letter queue, not the bus,
// accounts for them. Invariants 1 and 4 hold for every other version; 2
// and 3 for all.
type Exempt map[string]map[uint64]bool

// Check verifies the four invariants. final is each key's state after
// writes stopped; exempt the versions in unsettled dead letters (nil:
// none).
func Check(t *testing.T, writes []Write, events []Event, stored Stored, final map[string]store.Row, exempt Exempt) {
	t.Helper()
	last := map[string]Event{}
	for _, e := range events { // events are in bus order within each partition
		k := string(e.Key)
		if prev, ok := last[k]; ok && e.Version <= prev.Version {
			t.Errorf("invariant 3: key %q: event version %d (offset %d) after %d (offset %d): not strictly increasing",
				k, e.Version, e.Offset, prev.Version, prev.Offset)
		}
		last[k] = e
		if err := stored(&e.Event); err != nil {
			t.Errorf("invariant 2: key %q: event version %d %s: %v", k, e.Version, e.Op, err)
		}
	}
	for _, w := range writes {
		if !w.Acked {
			continue
		}
		if e, ok := last[w.Key]; (!ok || e.Version < w.Version) && !exempt[w.Key][w.Version] {
			t.Errorf("invariant 1: key %q: acknowledged write version %d has no event at or above it (last event %d) and is in no unsettled dead letter",
				w.Key, w.Version, e.Version)
		}
	}
	keys := make([]string, 0, len(final))
	for k := range final {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		row, e := final[k], last[k]
		if exempt[k][row.Version] && e.Version < row.Version {
			continue // the store's version is dead-lettered, and no event is above it
		}
		if e.Version != row.Version || (e.Op == intent.Delete) != row.Deleted || (!row.Deleted && string(e.Value) != string(row.Value)) {
			t.Errorf("invariant 4: key %q: store holds version %d deleted=%v, last event is version %d %s", k, row.Version, row.Deleted, e.Version, e.Op)
		}
	}
	for k := range last {
		if _, ok := final[k]; !ok {
			t.Errorf("invariant 4: key %q has events but the store does not have it", k)
		}
	}
}
