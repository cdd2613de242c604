package e2etest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/kafka"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/reconcile"
	"github.com/wail-cdc/wail/internal/resolver"
	"github.com/wail-cdc/wail/internal/server"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/postgres"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestDeadLettersEmbedded: permanent read and publish failures of a few
// keys, and an event too large for the embedded log, on the embedded
// backends.
func TestDeadLettersEmbedded(t *testing.T) {
	t.Parallel()
	runDeadLetters(t, openEmbedded(t), "dlqe", true)
}

// TestDeadLettersKafkaPostgres: permanent read and publish failures of a
// few keys with Kafka as log and bus (the resolver a transactional group
// member) and PostgreSQL as the store. It restarts nothing.
func TestDeadLettersKafkaPostgres(t *testing.T) {
	brokers := kafkaBrokers(t)
	primary, _ := pgDSNs(t)
	dsn, _ := freshSchema(t, primary, "")
	st, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn, MaxConns: 8, QueryTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log, err := kafka.Open(context.Background(), kafka.Options{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	runDeadLetters(t, Backends{Log: log, Store: st, Join: func(group, instance string) resolver.JoinFunc {
		return server.GroupJoin(log, group, instance, 1)
	}}, sqltest.Name("dlq_"), false)
}

// runDeadLetters writes with concurrent writers, first without faults,
// then with the reads of some keys and the publishes of others failing
// for good (and, with tooLarge, one event too large for the log). The
// poison keys must end in the dead-letter queue, each with its own kind,
// and nothing else; the other keys of their partitions keep flowing (the
// rates and latencies of both phases are logged, not asserted); and the
// invariants hold with the dead-lettered versions exempt.
func runDeadLetters(t *testing.T, b Backends, table string, tooLarge bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const phase = 3 * time.Second
	read, pub := poisonKeys(2)
	poison := NewPoison(table, read, pub)
	flaky := newFlakyStore(b.Store, 0)
	bus := eventbus.New(b.Log)
	cat, err := catalog.Open(ctx, b.Store, catalog.Options{Provisioner: provision(b.Log, bus),
		Defaults: catalog.Table{FailureMode: catalog.Transactional, VisibilityWindow: 2 * time.Second, Partitions: 2}})
	if err != nil {
		t.Fatal(err)
	}
	tb, _, err := cat.Create(ctx, catalog.Table{Name: table, MaxAttempts: 5, MaxRetryTime: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	clock, _ := hlc.New(7, nil)
	px := proxy.New(b.Log, flaky, cat, clock, proxy.Limits{MaxKeyBytes: 4096, MaxValueBytes: 1 << 20, MaxBatch: 1000}, nil)

	reg := prometheus.NewRegistry()
	cfg := resolver.Config{
		Group: groupOf(table), Concurrency: 32, BackoffMin: time.Millisecond, BackoffMax: 50 * time.Millisecond,
		Horizon: time.Minute, CommitInterval: 20 * time.Millisecond, MaxUnresolved: 100000,
		RetryMin: time.Millisecond, RetryMax: 50 * time.Millisecond, InstanceID: "dlq-e2e",
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		Metrics: resolver.NewMetrics(reg),
	}
	resBus := eventbus.New(poison.Log(b.Log))
	if b.Join != nil {
		cfg.Join = poison.Join(b.Join(cfg.Group, "one"))
		resBus = bus // appends go through the group's transactions
	}
	rctx, stopResolver := context.WithCancel(ctx)
	resDone := make(chan error, 1)
	go func() {
		resDone <- resolver.New(b.Log, poison.Store(b.Store), resBus, cfg).Run(rctx, []catalog.Table{tb}, nil)
	}()
	stopRes := sync.OnceValue(func() error {
		stopResolver()
		return <-resDone
	})
	t.Cleanup(func() { _ = stopRes() }) // before the backends close, also when the test fails

	h := &history{}
	opts := Options{Writers: 4, HotKeys: 8, ColdKeys: 20000, Poison: poison}
	poison.Writes.Store(true)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < opts.Writers; w++ {
		wg.Go(func() { h.write(ctx, px, opts, tb.Name, int64(w), &stop) })
	}
	acked := func() int {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.acked
	}
	waitSteady(ctx, t, "events flowing", func() bool { return counter(t, reg, "wail_resolver_events_total") > 0 })
	time.Sleep(500 * time.Millisecond) // past the start (a group member joins)
	start := time.Now()
	time.Sleep(phase) // the poison keys are written and published like any other
	faultsAt, ackedBase := time.Now(), acked()
	poison.On.Store(true)
	var huge uint64
	if tooLarge {
		huge = writeTooLarge(ctx, t, b.Log, flaky, clock, h, table)
	}
	time.Sleep(phase)
	faultsEnd, ackedFaults := time.Now(), acked()-ackedBase
	// The poison keys get no more writes; the others keep writing (with
	// nothing else flowing, a failing publish cannot be told from a bus
	// outage) until every partition's committed offset passed every
	// intent logged so far: each poison intent is dead-lettered.
	poison.Writes.Store(false)
	time.Sleep(200 * time.Millisecond)
	waitCommittedPast(ctx, t, b.Log, cfg.Group, tb)
	if n := gauge(t, reg, "wail_resolver_parked_keys"); n != 0 {
		t.Errorf("%v keys still parked with no poison intent left", n)
	}
	stop.Store(true)
	wg.Wait()
	waitResolved(t, ctx, b.Log, cfg.Group, tb)

	reads, publishes := poison.Fired()
	if h.acked == 0 || reads == 0 || publishes == 0 {
		t.Fatalf("%d writes acknowledged, %d reads and %d publishes failed by injection: the run proves nothing", h.acked, reads, publishes)
	}
	letters := readDeadLetters(t, ctx, b.Log, table)
	checkLetters(t, letters, poison, "huge", huge)
	evs := readEvents(t, ctx, b.Log, tb)
	Check(t, h.writes, evs, flaky.check, finalState(t, ctx, b.Store, tb.Name, flaky.keys()), letters.exempt())

	// The causes fixed (the store and the bus take the keys again, and
	// the huge value is replaced by one the bus takes), a redrive of every
	// letter publishes the keys' current state: then the invariants hold
	// with nothing exempt.
	poison.On.Store(false)
	if huge != 0 {
		res := px.Write(ctx, []proxy.Mutation{{Table: table, Key: []byte("huge"), Value: []byte("small again")}})
		if res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
		h.writes = append(h.writes, Write{Key: "huge", Version: res[0].Version, Value: "small again", Acked: true})
	}
	q := dlq.NewQueue(b.Log, table, 0)
	red, err := q.Redrive(ctx, dlq.Selection{All: true},
		reconcile.Options{Log: b.Log, Bus: bus, Store: b.Store, Group: cfg.Group, Horizon: cfg.Horizon}, reconcile.Table{Name: table, Partitions: tb.Partitions})
	if err != nil {
		t.Fatalf("redrive: %v", err)
	}
	if len(red.Resolutions) != len(letters.letters) {
		t.Fatalf("redrive settled %d of %d letters", len(red.Resolutions), len(letters.letters))
	}
	waitResolved(t, ctx, b.Log, cfg.Group, tb)
	if err := stopRes(); err != nil {
		t.Fatalf("resolver: %v", err)
	}
	if left := readDeadLetters(t, ctx, b.Log, table).exempt(); len(left) != 0 {
		t.Fatalf("dead letters unsettled after the redrive: %v", left)
	}
	Check(t, h.writes, readEvents(t, ctx, b.Log, tb), flaky.check, finalState(t, ctx, b.Store, tb.Name, flaky.keys()), nil)
	t.Logf("redrive settled %d letters; the invariants hold with nothing exempt", len(red.Resolutions))

	base := flowOf(evs, poison, start, faultsAt)
	faults := flowOf(evs, poison, faultsAt, faultsEnd)
	t.Logf("%d writes acknowledged; %d dead letters of %d keys; %d reads and %d publishes failed by injection",
		h.acked, len(letters.letters), len(letters.keys()), reads, publishes)
	t.Logf("without faults: %d writes acknowledged; other keys: %s", ackedBase, base)
	t.Logf("with faults:    %d writes acknowledged; other keys: %s", ackedFaults, faults)
	if base.events == 0 || faults.events == 0 {
		t.Fatalf("no events of other keys in a phase: without faults %d, with faults %d", base.events, faults.events)
	}
}

// poisonKeys returns n read-poison and n publish-poison keys, one of each
// on every partition of a two-partition table.
func poisonKeys(n int) (read, pub []string) {
	for _, kind := range []string{"read", "pub"} {
		var found []string
		byPart := map[int32]int{}
		for i := 0; len(found) < n; i++ {
			k := fmt.Sprintf("poison-%s-%d", kind, i)
			if p := intentlog.Partition([]byte(k), 2); byPart[p] < n/2 {
				byPart[p]++
				found = append(found, k)
			}
		}
		if kind == "read" {
			read = found
		} else {
			pub = found
		}
	}
	return read, pub
}

// writeTooLarge logs an intent and stores a 1 MiB value for key "huge", as
// a proxy that accepts it would: its event is over the embedded log's
// record limit.
func writeTooLarge(ctx context.Context, t *testing.T, log intentlog.Log, st *flakyStore, clock *hlc.Clock, h *history, table string) uint64 {
	t.Helper()
	v := clock.Now()
	in := intent.Intent{Table: table, Key: []byte("huge"), Op: intent.Upsert, Version: v, ID: "huge", ProxyID: clock.ProxyID(), CreatedAt: time.Now()}
	b, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := log.Append(ctx, intent.Topic(table), []*intentlog.Record{{Key: in.Key, Value: b}}); err != nil {
		t.Fatal(err)
	}
	value := strings.Repeat("h", 1<<20)
	if _, err := st.Apply(ctx, table, []store.Mutation{{Key: in.Key, Value: []byte(value), Version: v}}); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.writes = append(h.writes, Write{Key: "huge", Version: v, Value: value, Acked: true})
	h.acked++
	h.mu.Unlock()
	return v
}

// checkLetters: the dead letters are exactly of the poison keys, each of
// its kind, every poison key has one, and no intent is in two.
func checkLetters(t *testing.T, d deadLetters, p *Poison, huge string, hugeVersion uint64) {
	t.Helper()
	want := append([]string(nil), p.keys...)
	if hugeVersion != 0 {
		want = append(want, huge)
	}
	sort.Strings(want)
	if got := d.keys(); !slices.Equal(got, want) {
		t.Errorf("dead-lettered keys %v, want %v", got, want)
	}
	seen := map[string]int64{}
	for off, l := range d.letters {
		k := string(l.Key)
		switch {
		case p.Read[k] && l.Kind != wailv1.DeadLetterKind_DEAD_LETTER_KIND_READ,
			p.Publish[k] && (l.Kind != wailv1.DeadLetterKind_DEAD_LETTER_KIND_PUBLISH || l.Permanent),
			k == huge && (l.Kind != wailv1.DeadLetterKind_DEAD_LETTER_KIND_PUBLISH || !l.Permanent || l.Intents[0].Version != hugeVersion):
			t.Errorf("dead letter at %d of key %s: kind %v permanent %v (%s)", off, k, l.Kind, l.Permanent, l.Error)
		}
		// The table bounds retries at 5 attempts or 2 s from the first
		// counted one, whichever comes first (on a loaded machine, time).
		tried := time.Duration(l.LastAttemptUs-l.FirstAttemptUs) * time.Microsecond
		if !l.Permanent && l.Attempts < 5 && tried < 2*time.Second {
			t.Errorf("dead letter at %d of key %s after %d attempts over %s, below the table's max_attempts (5) and max_retry_time (2s)", off, k, l.Attempts, tried)
		}
		for i, in := range l.Intents {
			id := fmt.Sprintf("%d/%d", l.Partition, l.IntentOffsets[i])
			if prev, dup := seen[id]; dup {
				t.Errorf("intent %s is in the dead letters at %d and %d", id, prev, off)
			}
			seen[id] = off
			if string(in.Key) != k {
				t.Errorf("dead letter at %d of key %s holds an intent of key %s", off, k, in.Key)
			}
		}
	}
}

// flow is the events of the other keys in a time span.
type flow struct {
	span          time.Duration
	events        int
	p50, p99, max time.Duration
}

func (f flow) String() string {
	return fmt.Sprintf("%d events in %s (%.0f/s), intent-to-bus latency p50 %s p99 %s max %s",
		f.events, f.span.Round(time.Millisecond), float64(f.events)/f.span.Seconds(),
		f.p50.Round(100*time.Microsecond), f.p99.Round(100*time.Microsecond), f.max.Round(100*time.Microsecond))
}

// flowOf measures the events of keys that are not poison whose newest
// intent was created in [from, to): how many, and how long from that
// intent to the bus.
func flowOf(evs []Event, p *Poison, from, to time.Time) flow {
	f := flow{span: to.Sub(from)}
	var lat []time.Duration
	for _, e := range evs {
		k := string(e.Key)
		if p.Read[k] || p.Publish[k] || k == "huge" || e.IntentAt.Before(from) || !e.IntentAt.Before(to) {
			continue
		}
		f.events++
		lat = append(lat, e.At.Sub(e.IntentAt))
	}
	if len(lat) == 0 {
		return f
	}
	slices.Sort(lat)
	f.p50, f.p99, f.max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	return f
}

// gauge sums a gauge's samples, counter a counter's.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	return sample(t, reg, name, func(m *dto.Metric) float64 { return m.GetGauge().GetValue() })
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	return sample(t, reg, name, func(m *dto.Metric) float64 { return m.GetCounter().GetValue() })
}

func sample(t *testing.T, reg *prometheus.Registry, name string, value func(*dto.Metric) float64) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += value(m)
			}
		}
	}
	return sum
}

// waitCommittedPast waits until the committed offset of every partition
// reaches the end the partition had when it was called.
func waitCommittedPast(ctx context.Context, t *testing.T, log intentlog.Log, group string, tb catalog.Table) {
	t.Helper()
	topic := intent.Topic(tb.Name)
	ends := map[int32]int64{}
	for p := int32(0); p < tb.Partitions; p++ {
		_, end, err := log.Bounds(ctx, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		ends[p] = end
	}
	waitSteady(ctx, t, "the intents logged before settled", func() bool {
		committed, err := log.Committed(ctx, group, topic)
		if err != nil {
			t.Fatal(err)
		}
		for p, end := range ends {
			if committed[p] < end {
				return false
			}
		}
		return true
	})
}

// waitSteady polls cond until it holds three times in a row, 50 ms apart.
func waitSteady(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for held := 0; held < 3; time.Sleep(50 * time.Millisecond) {
		if ctx.Err() != nil {
			t.Fatalf("never: %s", what)
		}
		if cond() {
			held++
		} else {
			held = 0
		}
	}
}
