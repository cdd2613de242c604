package resolver

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"

	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/store"
)

// logged returns the entries the loop makes of intents as they are in the
// log: encoded, then decoded (decode).
func logged(t *testing.T, m *partitionMetrics, es ...Entry) []Entry {
	t.Helper()
	recs := make([]intentlog.Record, len(es))
	for i := range es {
		b, err := es[i].Intent.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = intentlog.Record{Offset: es[i].Offset, Value: b}
	}
	return decode(recs, &loop{m: m, r: &Resolver{cfg: Config{Logger: slog.New(slog.DiscardHandler)}}})
}

// TestPoisonIntentsSkipped: an intent record no proxy, reconcile or redrive
// writes (a forged or damaged record that still decodes) is skipped as one
// that does not decode, counted, and does not change how the partition's
// other intents resolve: a published_floor above its own version (reconcile
// and redrive log one below the stored version) raised the key's last
// published version for good and every later write of the key resolved
// with no event; a version with bit 63 set (no clock stamps one) made the
// core forget every event of the partition (the dedupe horizon) and, seen
// by a proxy at start, wrapped its clock to versions below every stored
// one.
func TestPoisonIntentsSkipped(t *testing.T) {
	t.Parallel()
	v1, v2 := ver(0, 0), ver(1000, 0)
	for _, tc := range []struct {
		name string
		bad  Entry
	}{
		{"floor above its version", func() Entry { e := put(1, "a", v1); e.Intent.PublishedFloor = math.MaxUint64; return e }()},
		{"floor at its version", func() Entry { e := put(1, "a", v1); e.Intent.PublishedFloor = v1; return e }()},
		{"version with bit 63", put(1, "z", math.MaxUint64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMetrics(nil).partition("t", 0, 1)
			c := NewCore(Params{Table: "t", Window: 10 * time.Second, Levels: 1, Horizon: 2 * time.Minute}, 0, nil)
			// b is published first; then the poison; then a write of a
			// and an older write of b that reached the log late.
			c.Ingest(t0, logged(t, m, put(0, "b", v2)))
			r := c.Ready()
			c.ReadDone(t0, ReadResult{Key: []byte("b"), Seq: r.Reads[0].Seq, Found: true, Row: store.Row{Version: v2}})
			c.Published(t0, c.Ready().Events)
			c.Ingest(t0, logged(t, m, tc.bad))
			c.Ingest(t0, logged(t, m, put(2, "a", v2), put(3, "b", v1)))
			if got := testutil.ToFloat64(m.invalid); got != 1 {
				t.Errorf("invalid intents counted %v, want 1", got)
			}
			r = c.Ready()
			if len(r.Reads) != 1 || string(r.Reads[0].Key) != "a" {
				t.Fatalf("reads %v, want one of a (b's old intent is covered by its event)", r.Reads)
			}
			c.ReadDone(t0, ReadResult{Key: []byte("a"), Seq: r.Reads[0].Seq, Found: true, Row: store.Row{Version: v2}})
			r = c.Ready()
			if len(r.Events) != 1 || string(r.Events[0].Key) != "a" || r.Events[0].Version != v2 {
				t.Fatalf("events %v, want a at %d", r.Events, v2)
			}
			c.Published(t0, r.Events)
			if got := c.Ready().Commit; got != 4 {
				t.Fatalf("commit %d, want 4", got)
			}
		})
	}
}

// TestCoreFarFutureVersionForgetsNothing: one intent stamped far ahead of
// the resolver's clock (a proxy whose clock jumped a year ahead, or a
// forged record) moved the core's version time there, so it forgot the
// last event of every idle key of the partition at once (the dedupe
// horizon): an older write of a key that reached the log late published
// the key's last version a second time (invariant 3), and every intent of
// reconcile or redrive after it was late and dead-lettered again. The
// core's version time goes no further than a horizon past its clock.
func TestCoreFarFutureVersionForgetsNothing(t *testing.T) {
	t.Parallel()
	v1, v2 := ver(0, 0), ver(1000, 0)
	future := hlc.At(t0.Add(365 * 24 * time.Hour))
	c := NewCore(Params{Table: "t", Window: 10 * time.Second, Levels: 1, Horizon: 2 * time.Minute}, 0, nil)
	c.Ingest(t0, []Entry{put(0, "b", v2)})
	r := c.Ready()
	c.ReadDone(t0, ReadResult{Key: []byte("b"), Seq: r.Reads[0].Seq, Found: true, Row: store.Row{Version: v2}})
	c.Published(t0, c.Ready().Events)
	c.Ingest(t0.Add(time.Second), []Entry{put(1, "z", future)})
	if c.LastPublished([]byte("b")) != v2 {
		t.Errorf("b's last event forgotten after an intent a year ahead")
	}
	c.Ingest(t0.Add(time.Second), []Entry{put(2, "b", v1), catchUp(3, "a", v2, v1, 1000)})
	r = c.Ready()
	for _, rd := range r.Reads {
		if string(rd.Key) == "b" {
			t.Errorf("b's older intent read (its event is out): it would publish %d again", v2)
		}
	}
	for _, p := range c.keys["a"].pending {
		if p.late {
			t.Fatalf("reconcile's intent logged a second ago counts as late")
		}
	}
}

// TestInvalidIntentLogged: the warning of a skipped intent names its
// table and partition (it named only the offset: which topic's was not
// said) and what to do.
func TestInvalidIntentLogged(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := &loop{table: "orders", partition: 3, m: NewMetrics(nil).partition("orders", 3, 1),
		r: &Resolver{cfg: Config{Logger: slog.New(slog.NewTextHandler(&buf, nil))}}}
	decode([]intentlog.Record{{Offset: 7, Value: []byte("garbage")}}, l)
	for _, want := range []string{"table=orders", "partition=3", "offset=7", "intent topic"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log %q lacks %q", buf.String(), want)
		}
	}
}

// TestRecoverFromFutureStampedIntent: the recovery scans the bus from when
// the committed intent was logged, minus the horizon. An intent whose log
// timestamp is ahead of the clock (the embedded log keeps a partition's
// timestamps from going back, so a host clock that jumped an hour ahead and
// back stamps that hour on every intent until it passes; on Kafka the
// producer's clock) moved the scan past the events of the intents being
// read again: a resolver that published a key's event and stopped before
// it committed published the version a second time (invariant 3). The
// scan starts no later than the clock says.
func TestRecoverFromFutureStampedIntent(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ahead atomic.Int64
	env := newTestEnvWith(ctx, t, "ahead", embedded.Options{Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }},
		intentlog.TopicOptions{})
	ahead.Store(int64(time.Hour))
	env.write(ctx, t, "a", 1, "x") // logged an hour ahead
	ahead.Store(0)
	logger, _ := testLogger()
	frozen := &commitFreezer{Log: env.log, frozen: true}
	run := start(ctx, New(frozen, env.st, env.bus, testConfig(logger, nil)), env.tb)
	waitUntil(ctx, t, "a's event published", func() bool { return onBus(ctx, t, env)["a"] == 1 })
	run.stop(t) // before a commit: a's intent is read again

	run = start(ctx, New(env.log, env.st, env.bus, testConfig(logger, nil)), env.tb)
	waitUntil(ctx, t, "a's intent settled again", func() bool { return committedAt(ctx, t, env.log, env.tb) == 1 })
	run.stop(t)
	if n := onBus(ctx, t, env)["a"]; n != 1 {
		t.Fatalf("%d events of a at version 1, want 1", n)
	}
}

// TestOversizedKeySkipped: an intent whose key is longer than any store
// wail writes keeps (limits.max_key_bytes is at most 64 KiB) is no wail
// proxy's. One whose store read failed went to a dead letter of its key
// and its intent, a record over the dead-letter topic's limit, which was
// written again for good: the partition's commit stayed below it while
// the keys behind it got their events.
func TestOversizedKeySkipped(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnvWith(ctx, t, "hugekey", embedded.Options{MaxBatchBytes: 1 << 20}, intentlog.TopicOptions{})
	env.tb.MaxAttempts = 2
	huge := strings.Repeat("k", 400<<10)
	env.writeIntent(ctx, t, intent.Intent{Key: []byte(huge), Op: intent.Upsert, Version: 1, CreatedAt: time.Now()}, "")
	env.write(ctx, t, "b", 2, "x")
	fs := newFaultyStore(env.st)
	fs.setPoison(huge, true)
	logger, _ := testLogger()
	cfg := testConfig(logger, NewMetrics(nil))
	cfg.Limits = env.log
	run := start(ctx, New(env.log, fs, env.bus, cfg), env.tb)
	waitUntil(ctx, t, "b's event", func() bool { return onBus(ctx, t, env)["b"] == 1 })
	deadline := time.Now().Add(3 * time.Second)
	for committedAt(ctx, t, env.log, env.tb) != 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	run.stop(t)
	if c := committedAt(ctx, t, env.log, env.tb); c != 2 {
		t.Fatalf("committed offset %d, want 2 (past the huge key's intent); letter errors %v", c, testutil.ToFloat64(cfg.Metrics.letterErrors.WithLabelValues(env.tb.Name)))
	}
}

// TestLetterOfLostIntentSettlesNotItsOffset: a dead letter found at start
// settles the intent it holds, not whatever intent its offset holds now.
// After the intent log lost its tail (Kafka: an unclean leader election;
// the loop starts again from the lowered offset), new intents take the
// lost offsets again; one at the offset of a letter written before the
// loss was taken as settled by it and skipped: an acknowledged write with
// neither an event nor a letter (invariant 1).
func TestLetterOfLostIntentSettlesNotItsOffset(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "retaken")
	lost := &intent.Intent{Table: env.tb.Name, Key: []byte("gone"), Op: intent.Upsert, Version: 1, ID: "lost", CreatedAt: time.Now()}
	rec, err := dlq.LetterRecord(&wailv1.DeadLetter{Table: env.tb.Name, Partition: 0, Key: lost.Key, Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_READ,
		Error: "boom", Attempts: 1, Intents: []*wailv1.Intent{lost.Proto()}, IntentOffsets: []int64{0}, ResolverId: "before", DeadAtUs: time.Now().UnixMicro()})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.log.Append(ctx, dlq.Topic(env.tb.Name), []*intentlog.Record{rec}); err != nil {
		t.Fatal(err)
	}
	env.write(ctx, t, "a", 2, "x") // offset 0 again
	logger, _ := testLogger()
	run := start(ctx, New(env.log, env.st, env.bus, testConfig(logger, nil)), env.tb)
	waitUntil(ctx, t, "offset 0 settled", func() bool { return committedAt(ctx, t, env.log, env.tb) == 1 })
	run.stop(t)
	if n := onBus(ctx, t, env)["a"]; n != 1 {
		t.Fatalf("%d events of a, want 1 (its intent took the offset of a letter of another)", n)
	}
}
