package resolver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/logbuf"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

func testLogger() (*slog.Logger, *logbuf.Buffer) {
	buf := &logbuf.Buffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelWarn})), buf
}

// faultyStore is a Pebble store whose reads of poison keys fail, and whose
// reads of blocked keys wait until they are let go.
type faultyStore struct {
	*pebble.Store
	mu     sync.Mutex
	poison map[string]bool
	block  map[string]chan struct{}
	asked  chan string // a blocked key was read
	detail string      // appended to the error of a poison key's read
}

func newFaultyStore(st *pebble.Store) *faultyStore {
	return &faultyStore{Store: st, poison: map[string]bool{}, block: map[string]chan struct{}{}, asked: make(chan string, 100)}
}

func (s *faultyStore) Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error) {
	s.mu.Lock()
	poison, block := s.poison[string(key)], s.block[string(key)]
	s.mu.Unlock()
	if block != nil {
		select {
		case s.asked <- string(key):
		default:
		}
		select {
		case <-block:
		case <-ctx.Done():
			return store.Row{}, false, ctx.Err()
		}
	}
	if poison {
		return store.Row{}, false, errors.New("injected: row cannot be decoded" + s.detail)
	}
	return s.Store.Get(ctx, table, key, level)
}

// GetMany reads each key with Get, so that its faults apply to the
// resolver's batched reads too (per key: the other keys of the batch are
// read).
func (s *faultyStore) GetMany(ctx context.Context, table string, keys [][]byte, level store.Level) ([]store.KeyRead, error) {
	out := make([]store.KeyRead, len(keys))
	for i, k := range keys {
		out[i].Row, out[i].Found, out[i].Err = s.Get(ctx, table, k, level)
	}
	return out, nil
}

func (s *faultyStore) setPoison(key string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.poison[key] = on
}

// commitFreezer drops commits while frozen: a resolver stopped then is one
// that crashed before it committed.
type commitFreezer struct {
	*embedded.Log
	frozen bool
}

func (f *commitFreezer) Commit(ctx context.Context, group, topic string, offsets map[int32]int64) error {
	if f.frozen {
		return errors.New("commits frozen (a crash)")
	}
	return f.Log.Commit(ctx, group, topic, offsets)
}

// running is a resolver running until stop.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(ctx context.Context, r *Resolver, tb catalog.Table) *running {
	rctx, cancel := context.WithCancel(ctx)
	run := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { run.done <- r.Run(rctx, []catalog.Table{tb}, nil) }()
	return run
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
}

func testConfig(logger *slog.Logger, m *Metrics) Config {
	return Config{Group: "g", BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond, Horizon: time.Minute,
		CommitInterval: 10 * time.Millisecond, MaxUnresolved: 1000, Logger: logger, Metrics: m, InstanceID: "test-resolver",
		RetryMin: time.Millisecond, RetryMax: 20 * time.Millisecond}
}

func committedAt(ctx context.Context, t *testing.T, log Log, tb catalog.Table) int64 {
	t.Helper()
	c, err := log.Committed(ctx, "g", intent.Topic(tb.Name))
	if err != nil {
		t.Fatal(err)
	}
	return c[0]
}

// readLetters returns every dead letter in a table's dead-letter topic.
func readLetters(ctx context.Context, t *testing.T, log intentlog.Log, table string) []*wailv1.DeadLetter {
	t.Helper()
	var out []*wailv1.DeadLetter
	for _, r := range readTopic(ctx, t, log, dlq.Topic(table)) {
		m, err := dlq.Decode(r.Value)
		if err != nil {
			t.Fatalf("dead-letter record %d: %v", r.Offset, err)
		}
		out = append(out, m.GetLetter())
	}
	return out
}

// TestTooLargeEventIsDeadLettered is issue 11's first case: a value that
// makes its event larger than the embedded log's record limit. Its intent
// goes to the dead-letter queue at once, with an error log a person can
// act on and a metric; every other key of the partition gets its event.
func TestTooLargeEventIsDeadLettered(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := newTestEnv(ctx, t, "big")
	for i := 0; i < 5; i++ {
		env.write(ctx, t, fmt.Sprintf("k%d", i), uint64(10+i), "small")
	}
	env.write(ctx, t, "big", 20, strings.Repeat("x", 1<<20)) // offset 5
	for i := 5; i < 10; i++ {
		env.write(ctx, t, fmt.Sprintf("k%d", i), uint64(30+i), "small")
	}
	logger, logs := testLogger()
	reg := prometheus.NewRegistry()
	r := New(env.log, env.st, env.bus, testConfig(logger, NewMetrics(reg)))
	run := start(ctx, r, env.tb)
	waitUntil(ctx, t, "every intent settled", func() bool { return committedAt(ctx, t, env.log, env.tb) == 11 })
	run.stop(t)

	got := onBus(ctx, t, env)
	for i := 0; i < 10; i++ {
		if k := fmt.Sprintf("k%d", i); got[k] != 1 {
			t.Errorf("key %s: %d events, want 1", k, got[k])
		}
	}
	if got["big"] != 0 {
		t.Errorf("the too large event is on the bus")
	}
	ls := readLetters(ctx, t, env.log, env.tb.Name)
	if len(ls) != 1 {
		t.Fatalf("%d dead letters, want 1: %v", len(ls), ls)
	}
	l := ls[0]
	if string(l.Key) != "big" || l.Kind != wailv1.DeadLetterKind_DEAD_LETTER_KIND_PUBLISH || !l.Permanent || l.Attempts != 1 ||
		len(l.Intents) != 1 || l.Intents[0].Version != 20 || l.IntentOffsets[0] != 5 || l.ResolverId != "test-resolver" ||
		!strings.Contains(l.Error, "record too large") || l.Table != "big" || l.DeadAtUs == 0 {
		t.Fatalf("dead letter %v", l)
	}
	if n := testutil.ToFloat64(r.cfg.Metrics.letters.WithLabelValues("big", "publish")); n != 1 {
		t.Errorf("dead_letters_total{kind=publish} = %v, want 1", n)
	}
	if !strings.Contains(logs.String(), "wail dlq redrive big") || !strings.Contains(logs.String(), "key=big") {
		t.Errorf("no error log naming the key and the fix:\n%s", logs)
	}
}

// TestLetterNotWrittenTwiceAfterRestart: a resolver that wrote a dead
// letter but crashed before it committed past its intents leaves the next
// one to find the letter, not to write it again.
func TestLetterNotWrittenTwiceAfterRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := newTestEnv(ctx, t, "twice")
	env.write(ctx, t, "a", 1, "small")
	env.write(ctx, t, "big", 2, strings.Repeat("x", 1<<20))
	env.write(ctx, t, "b", 3, "small")
	frozen := &commitFreezer{Log: env.log, frozen: true}
	logger, _ := testLogger()
	run := start(ctx, New(frozen, env.st, env.bus, testConfig(logger, nil)), env.tb)
	waitUntil(ctx, t, "the letter and the events written", func() bool {
		return len(readLetters(ctx, t, env.log, env.tb.Name)) == 1 && len(onBus(ctx, t, env)) == 2
	})
	run.stop(t)
	if c := committedAt(ctx, t, env.log, env.tb); c != 0 {
		t.Fatalf("committed %d with commits frozen", c)
	}
	run = start(ctx, New(env.log, env.st, env.bus, testConfig(logger, nil)), env.tb)
	waitUntil(ctx, t, "every intent settled", func() bool { return committedAt(ctx, t, env.log, env.tb) == 3 })
	run.stop(t)
	if ls := readLetters(ctx, t, env.log, env.tb.Name); len(ls) != 1 {
		t.Fatalf("%d dead letters after the restart, want 1", len(ls))
	}
	for k, n := range onBus(ctx, t, env) {
		if n != 1 {
			t.Errorf("key %s: %d events after the restart, want 1", k, n)
		}
	}
}

// retentionEnv: segments of about 1 KiB, intent partitions cut to 2 KiB.
func retentionEnv(ctx context.Context, t *testing.T, table string) *testEnv {
	return newTestEnvWith(ctx, t, table, embedded.Options{SegmentBytes: 1024, RetentionCheckInterval: -1},
		intentlog.TopicOptions{RetentionBytes: 2048})
}

// TestRetentionGapAtStart: a committed offset below the log start (the
// resolver was down while retention ran) is a gap letter, an error log
// naming reconcile, and metrics; then the partition goes on.
func TestRetentionGapAtStart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := retentionEnv(ctx, t, "gap")
	if err := env.log.Commit(ctx, "g", intent.Topic("gap"), map[int32]int64{0: 0}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		env.write(ctx, t, fmt.Sprintf("k%d", i%20), uint64(i+1), "v")
	}
	logStart, end, err := env.log.Bounds(ctx, intent.Topic("gap"), 0)
	if err != nil || logStart == 0 {
		t.Fatalf("retention removed nothing: start %d, %v", logStart, err)
	}
	logger, logs := testLogger()
	r := New(env.log, env.st, env.bus, testConfig(logger, NewMetrics(nil)))
	run := start(ctx, r, env.tb)
	waitUntil(ctx, t, "the rest resolved", func() bool { return committedAt(ctx, t, env.log, env.tb) == end })
	run.stop(t)
	checkGap(ctx, t, env, r, logs, 0, logStart)
}

// checkGap: one gap letter, from from (-1: any offset after the first) to
// the log start, counted, and an error log naming reconcile.
func checkGap(ctx context.Context, t *testing.T, env *testEnv, r *Resolver, logs *logbuf.Buffer, from, logStart int64) {
	t.Helper()
	table := env.tb.Name
	ls := readLetters(ctx, t, env.log, table)
	if len(ls) != 1 || ls[0].Kind != wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP || ls[0].GapEndOffset != logStart ||
		(from >= 0 && ls[0].GapStartOffset != from) || ls[0].GapStartOffset < 0 {
		t.Fatalf("dead letters %v, want one gap from %d to %d", ls, from, logStart)
	}
	lost := logStart - ls[0].GapStartOffset
	if n := testutil.ToFloat64(r.cfg.Metrics.gapIntents.WithLabelValues(table)); n != float64(lost) {
		t.Errorf("gap_intents_total = %v, want %d", n, lost)
	}
	if n := testutil.ToFloat64(r.cfg.Metrics.letters.WithLabelValues(table, "gap")); n != 1 {
		t.Errorf("dead_letters_total{kind=gap} = %v, want 1", n)
	}
	if !strings.Contains(logs.String(), "wail table reconcile "+table) {
		t.Errorf("no error log naming reconcile:\n%s", logs)
	}
}

// TestRetentionGapMidRun: retention passes the reader while the partition
// is held back (a slow read, backpressure): the reader's out-of-range is
// a gap letter too, never a silent skip.
func TestRetentionGapMidRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := retentionEnv(ctx, t, "gapmid")
	fs := newFaultyStore(env.st)
	release := make(chan struct{})
	fs.block["stuck"] = release
	env.write(ctx, t, "stuck", 1, "v")
	logger, logs := testLogger()
	cfg := testConfig(logger, NewMetrics(nil))
	cfg.MaxUnresolved = 1
	r := New(env.log, fs, env.bus, cfg)
	run := start(ctx, r, env.tb)
	<-fs.asked // the loop holds one unresolved intent: it reads no more
	for i := 0; i < 200; i++ {
		env.write(ctx, t, fmt.Sprintf("k%d", i%20), uint64(i+2), "v")
	}
	logStart, end, err := env.log.Bounds(ctx, intent.Topic("gapmid"), 0)
	if err != nil || logStart < 10 {
		t.Fatalf("retention removed too little: start %d, %v", logStart, err)
	}
	close(release)
	waitUntil(ctx, t, "the rest resolved", func() bool { return committedAt(ctx, t, env.log, env.tb) == end })
	run.stop(t)
	checkGap(ctx, t, env, r, logs, -1, logStart)
}

// TestShutdownWithParkedKeys: keys whose reads and publishes keep failing
// (parked, not yet dead-lettered) do not hold up the drain (issue 11:
// shutdown took 12 s with a poisoned partition), and the committed offset
// stays below them.
func TestShutdownWithParkedKeys(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := newTestEnv(ctx, t, "shut")
	env.tb.MaxAttempts = 1_000_000
	fs := newFaultyStore(env.st)
	fs.setPoison("unreadable", true)
	bus := &faultyBus{Bus: env.bus, poison: map[string]error{"unpublishable": errFlaky}}
	env.write(ctx, t, "unreadable", 1, "v")
	env.write(ctx, t, "unpublishable", 2, "v")
	for i := 0; i < 10; i++ {
		env.write(ctx, t, fmt.Sprintf("k%d", i), uint64(10+i), "v")
	}
	logger, logs := testLogger()
	cfg := testConfig(logger, NewMetrics(nil))
	cfg.DrainTimeout = time.Minute
	r := New(env.log, fs, bus, cfg)
	run := start(ctx, r, env.tb)
	parked := r.cfg.Metrics.parked.WithLabelValues("shut", "0")
	waitUntil(ctx, t, "the others published, two keys parked", func() bool {
		return len(onBus(ctx, t, env)) == 10 && testutil.ToFloat64(parked) == 2
	})
	run.stop(t)
	if strings.Contains(logs.String(), "drain timed out") {
		t.Fatalf("the drain waited for parked keys:\n%s", logs)
	}
	if c := committedAt(ctx, t, env.log, env.tb); c != 0 {
		t.Fatalf("committed %d past a parked key", c)
	}
	if ls := readLetters(ctx, t, env.log, "shut"); len(ls) != 0 {
		t.Fatalf("dead letters %v before the bound", ls)
	}
}

// TestHealthOfParkedAndStalledPartitions: a parked key raises degraded on
// the health registry with a reason and an action, and clears once it got
// through; so does a partition whose oldest intent waits past StallAfter,
// or past twice the table's visibility window when that is longer.
func TestHealthOfParkedAndStalledPartitions(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := newTestEnv(ctx, t, "hl")
	env.tb.VisibilityWindow = 200 * time.Millisecond // stalled after 2*200ms, not StallAfter's 300ms
	env.tb.MaxAttempts = 1_000_000
	fs := newFaultyStore(env.st)
	reg := health.NewRegistry(nil)
	logger, _ := testLogger()
	cfg := testConfig(logger, nil)
	cfg.Health, cfg.StallAfter = reg, 300*time.Millisecond
	run := start(ctx, New(env.log, fs, env.bus, cfg), env.tb)
	defer run.stop(t)
	condition := func() *health.Condition {
		for _, c := range reg.Report().Conditions {
			if c.Component == "resolver/hl/0" {
				return &c
			}
		}
		return nil
	}

	fs.setPoison("p", true)
	env.write(ctx, t, "p", 1, "v")
	waitUntil(ctx, t, "degraded: parked", func() bool {
		c := condition()
		return c != nil && c.State == health.Degraded && strings.Contains(c.Reason, "1 keys of table hl partition 0 are parked") &&
			strings.Contains(c.Action, "wail dlq ls hl")
	})
	fs.setPoison("p", false)
	waitUntil(ctx, t, "cleared", func() bool { return condition() == nil })

	release := make(chan struct{})
	fs.mu.Lock()
	fs.block["slow"] = release
	fs.mu.Unlock()
	env.write(ctx, t, "slow", 2, "v")
	waitUntil(ctx, t, "degraded: stalled", func() bool {
		c := condition()
		return c != nil && strings.Contains(c.Reason, "oldest unresolved intent of table hl partition 0 has waited")
	})
	if c := condition(); !strings.HasSuffix(c.Reason, "(stalled after 400ms)") {
		t.Fatalf("stalled: %q, want the threshold of twice the visibility window (400ms)", c.Reason)
	}
	close(release)
	waitUntil(ctx, t, "cleared", func() bool { return condition() == nil })
}

// TestLettersMissing: after an append of letters that may have landed,
// a gap letter is written again unless the topic holds a gap letter from
// the same start to the same end, and an intent letter unless the topic
// settled its first intent offset; a letter without intents is never
// taken for written.
func TestLettersMissing(t *testing.T) {
	t.Parallel()
	found := lettersFound{offsets: map[int64]bool{0: true, 7: true, 9: true}, gaps: map[int64]int64{0: 5, 10: 20}}
	gap := func(from, to int64) *wailv1.DeadLetter {
		return &wailv1.DeadLetter{Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_GAP, GapStartOffset: from, GapEndOffset: to}
	}
	intents := func(offsets ...int64) *wailv1.DeadLetter {
		d := &wailv1.DeadLetter{Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_READ, IntentOffsets: offsets}
		for _, o := range offsets {
			d.Intents = append(d.Intents, &wailv1.Intent{Version: uint64(o) + 100})
		}
		return d
	}
	cases := []struct {
		name    string
		letter  *wailv1.DeadLetter
		missing bool
		// rest: the offsets of the intents a letter partly found keeps
		// (nil: the letter as it is)
		rest []int64
	}{
		{"a gap found", gap(10, 20), false, nil},
		{"a gap found, from offset 0", gap(0, 5), false, nil},
		{"a gap with another end", gap(10, 15), true, nil},
		{"a gap not found", gap(30, 40), true, nil},
		{"intents found", intents(7, 9), false, nil},
		{"intents from offset 0 found", intents(0), false, nil},
		{"intents not found", intents(8, 10), true, nil},
		{"intents found but the last (cut otherwise)", intents(7, 8), true, []int64{8}},
		{"intents found but the first", intents(8, 7), true, []int64{8}},
		{"intents found between others", intents(6, 7, 8, 9, 11), true, []int64{6, 8, 11}},
		{"a letter of no intents", intents(), true, nil},
		{"a publish letter found", &wailv1.DeadLetter{Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_PUBLISH, IntentOffsets: []int64{7}}, false, nil},
	}
	check := func(name string, got, letter *wailv1.DeadLetter, rest []int64) {
		t.Helper()
		if rest == nil {
			if got != letter {
				t.Errorf("%s: missing returned %v, want the letter as it is", name, got)
			}
			return
		}
		if !slices.Equal(got.IntentOffsets, rest) || len(got.Intents) != len(rest) {
			t.Fatalf("%s: missing returned %v, want the intents at %v", name, got, rest)
		}
		for i, in := range got.Intents {
			if in.Version != uint64(rest[i])+100 {
				t.Errorf("%s: intent at offset %d has version %d, want that of its offset", name, rest[i], in.Version)
			}
		}
		if len(letter.IntentOffsets) == len(rest) {
			t.Errorf("%s: the letter was changed", name)
		}
	}
	for _, c := range cases {
		got := found.missing([]*wailv1.DeadLetter{c.letter})
		if (len(got) == 1) != c.missing || len(got) > 1 {
			t.Errorf("%s: missing returned %v, want missing=%v", c.name, got, c.missing)
			continue
		}
		if c.missing {
			check(c.name, got[0], c.letter, c.rest)
		}
	}
	var all, want []*wailv1.DeadLetter
	var rests [][]int64
	for _, c := range cases {
		all = append(all, c.letter)
		if c.missing {
			want = append(want, c.letter)
			rests = append(rests, c.rest)
		}
	}
	got := found.missing(all)
	if len(got) != len(want) {
		t.Fatalf("missing of all: %d letters, want %d", len(got), len(want))
	}
	for i := range got {
		check(fmt.Sprintf("missing of all, letter %d (in order)", i), got[i], want[i], rests[i])
	}
}
