package resolver

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/landing"
	"github.com/wail-cdc/wail/internal/store"
)

// TestCoreReadVersion: a read asks for the newest version its key's
// intents need covered; a read that only settles an ABORT asks for none.
func TestCoreReadVersion(t *testing.T) {
	t.Parallel()
	c := NewCore(Params{Table: "t", Window: time.Second, Levels: 1}, 0, nil)
	v1, v2 := ver(0, 0), ver(0, 1)
	c.Ingest(t0, []Entry{put(0, "a", v1), put(1, "a", v2)})
	r := c.Ready()
	if len(r.Reads) != 1 || r.Reads[0].Version != v1 {
		t.Fatalf("first read %+v, want one read of version %d (the only intent when it was asked)", r.Reads, v1)
	}
	// The read finds v1: the next read is for v2.
	c.ReadDone(t0, ReadResult{Key: []byte("a"), Seq: r.Reads[0].Seq, Found: true, Row: store.Row{Version: v1}})
	c.Published(t0, c.Ready().Events)
	c.Tick(t0.Add(time.Second)) // after the backoff
	if r = c.Ready(); len(r.Reads) != 1 || r.Reads[0].Version != v2 {
		t.Fatalf("read after v1's event %+v, want one read of version %d", r.Reads, v2)
	}
	c.ReadDone(t0.Add(time.Second), ReadResult{Key: []byte("a"), Seq: r.Reads[0].Seq, Found: true, Row: store.Row{Version: v2}})
	c.Published(t0.Add(time.Second), c.Ready().Events)
	// An ABORT of a key with nothing else pending: its read needs no version.
	c.Ingest(t0.Add(time.Second), []Entry{ent(2, "b", intent.Abort, ver(0, 2))})
	if r = c.Ready(); len(r.Reads) != 1 || r.Reads[0].Version != 0 {
		t.Fatalf("read of an ABORT %+v, want one read of version 0", r.Reads)
	}
}

// spyLanding tells when the resolver asked about a version.
type spyLanding struct {
	ws    *landing.Writes
	asked atomic.Int64
}

func (s *spyLanding) Pending(table string, v uint64) *landing.Write {
	s.asked.Add(1)
	return s.ws.Pending(table, v)
}

// TestReadsWaitForTheStoreWrite: the read of an intent whose store write
// is in flight in the process waits until the write ended, then finds it:
// one read for one event. A write that never ends holds the read no
// longer than the table's visibility window.
func TestReadsWaitForTheStoreWrite(t *testing.T) {
	t.Parallel()
	for _, ends := range []bool{true, false} {
		name := "the write ends"
		if !ends {
			name = "the write never ends"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			env := newTestEnv(ctx, t, "landing")
			env.tb.VisibilityWindow = time.Second
			spy := &spyLanding{ws: landing.New()}
			const v = 1000
			w := spy.ws.Begin(env.tb.Name, v-5, v+5)
			// The intent, created a while ago (no first-read delay); the
			// store write has not landed.
			env.writeIntent(ctx, t, intent.Intent{Key: []byte("a"), Op: intent.Upsert, Version: v, CreatedAt: time.Now().Add(-time.Minute)}, "")
			cs := &countingStore{st: env.st}
			m := NewMetrics(nil)
			cfg := testConfig(nil, m)
			cfg.Landing = spy
			r := New(env.log, countingMultiStore{cs}, env.bus, cfg)
			run := start(ctx, r, env.tb)
			defer run.stop(t)
			reads := func() int {
				cs.mu.Lock()
				defer cs.mu.Unlock()
				n := cs.gets
				for _, k := range cs.manys {
					n += k
				}
				return n
			}
			waitUntil(ctx, t, "the resolver asked whether the write landed", func() bool { return spy.asked.Load() > 0 })
			if ends {
				// However long the write takes, no read goes out before
				// it ends.
				time.Sleep(200 * time.Millisecond)
				if n := reads(); n != 0 {
					t.Fatalf("%d reads while the store write was in flight", n)
				}
			}
			if _, err := env.st.Apply(ctx, env.tb.Name, []store.Mutation{{Key: []byte("a"), Value: []byte("v"), Version: v}}); err != nil {
				t.Fatal(err)
			}
			began := time.Now()
			if ends {
				w.End()
			}
			waitUntil(ctx, t, "the event", func() bool { return onBus(ctx, t, env)["a"] == 1 })
			// The hold is counted: one read held, released by the end of
			// the write or by the bound, and one wait observed.
			outcome := "landed"
			if !ends {
				outcome = "bound"
			}
			if n := testutil.ToFloat64(m.landingHeld.WithLabelValues(env.tb.Name, outcome)); n != 1 {
				t.Errorf("wail_resolver_landing_held_reads_total{outcome=%q} = %v, want 1", outcome, n)
			}
			var waits dto.Metric
			if err := m.landingWait.WithLabelValues(env.tb.Name).(prometheus.Histogram).Write(&waits); err != nil {
				t.Fatal(err)
			}
			if n := waits.GetHistogram().GetSampleCount(); n != 1 {
				t.Errorf("wail_resolver_landing_wait_seconds: %d waits observed, want 1", n)
			}
			if ends {
				if n := reads(); n != 1 {
					t.Errorf("%d reads for one event, want 1: the read waited for the write", n)
				}
				return
			}
			// Held up to the window (1 s) after it was asked, then read.
			if took := time.Since(began); took > 30*time.Second {
				t.Errorf("the event came %s after the store write: the hold was not bounded", took)
			}
			if spy.ws.InFlight(env.tb.Name) != 1 {
				t.Error("the write ended; the test needs it in flight")
			}
		})
	}
}

// TestLocalLanding: the first read delay is skipped only for a proxy that
// serves in this process, whose writes the landing set knows, with a store
// of one read level; not in a resolver-only process (its proxy_id may be a
// remote proxy's), nor with replicas or a consistency ladder.
func TestLocalLanding(t *testing.T) {
	t.Parallel()
	ws := landing.New()
	for _, tc := range []struct {
		name   string
		cfg    Config
		levels int
		want   bool
	}{
		{"serving proxy, one level", Config{Landing: ws, LocalProxyServes: true}, 1, true},
		{"resolver-only process", Config{Landing: ws}, 1, false},
		{"no landing set", Config{LocalProxyServes: true}, 1, false},
		{"replica or ONE first", Config{Landing: ws, LocalProxyServes: true}, 2, false},
	} {
		if got := localLanding(tc.cfg, tc.levels); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// landedRes is res handed over by a store write (ReadResult.Landed).
func landedRes(key string, r *store.Row) *ReadResult {
	rr := res(key, r)
	rr.Landed = true
	return rr
}

// TestCoreLandedRows: a row handed over by a store write of this process
// publishes the intents and ABORTs it covers (every intent the read had
// to cover, and those that arrived while it was held that it covers), at
// the level asked; an answer that is no row, or a row that publishes
// nothing while intents it does not cover wait, reads the store at the
// same level instead, and an ABORT it does not cover waits for a store
// read: the handed-over snapshot may predate the read.
func TestCoreLandedRows(t *testing.T) {
	t.Parallel()
	v1, v2, v3 := ver(0, 0), ver(1, 0), ver(2, 0)
	p := Params{Window: time.Second, Levels: 2, BackoffMin: time.Millisecond, BackoffMax: time.Millisecond}
	abort := func(off int64, k string, v uint64) Entry { return ent(off, k, intent.Abort, v) }
	floor := func(e Entry, f uint64) Entry { e.Intent.PublishedFloor = f; return e }
	tests := []struct {
		name  string
		steps []step
	}{
		{"covering row: published at the level asked, no store read", []step{
			{ingest: []Entry{put(0, "a", v1), put(1, "a", v2)}, reads: []string{"a@0"}},
			{read: landedRes("a", row(v2, "x")), events: []string{ev("a", v2, 2)}},
			{published: true, commit: 2},
		}},
		{"newer than asked: published (a durable version the read had to find, or newer)", []step{
			{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
			{read: landedRes("a", row(v3, "x")), events: []string{ev("a", v3, 1)}},
			{published: true, commit: 1},
		}},
		{"an intent that arrived while held is not covered: published what it covers, then the store decides", []step{
			{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
			{ingest: []Entry{put(1, "a", v3)}},
			{read: landedRes("a", row(v2, "x")), events: []string{ev("a", v2, 1)}}, // at the level asked: the row is the primary's
			{published: true, commit: 1, reads: []string{"a@0"}},
			{read: res("a", row(v3, "y")), events: []string{ev("a", v3, 1)}},
			{published: true, commit: 2},
		}},
		{"an intent it does not cover, and its version already out: the store decides", []step{
			{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
			{ingest: []Entry{floor(put(1, "a", v3), v2)}}, // reconcile: the bus has v2
			{read: landedRes("a", row(v2, "x")), reads: []string{"a@0"}},
			{read: res("a", row(v3, "y")), events: []string{ev("a", v3, 2)}},
			{published: true, commit: 2},
		}},
		{"an ABORT it does not cover: published what it covers, a store read asked after it settles the ABORT", []step{
			{ingest: []Entry{put(0, "a", v1), abort(1, "a", v2)}, reads: []string{"a@0"}},
			{read: landedRes("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
			{published: true, commit: 1, reads: []string{"a@1"}}, // an ABORT needs the strongest level
			{read: res("a", row(v1, "x")), commit: 2},
		}},
		{"an ABORT it covers: published with it", []step{
			{ingest: []Entry{put(0, "a", v1), abort(1, "a", v2)}, reads: []string{"a@0"}},
			{read: landedRes("a", row(v3, "x")), events: []string{ev("a", v3, 1)}},
			{published: true, commit: 2},
		}},
		{"no row: the store decides", []step{
			{ingest: []Entry{put(0, "a", v1)}, reads: []string{"a@0"}},
			{read: landedRes("a", nil), reads: []string{"a@0"}},
			{read: res("a", row(v1, "x")), events: []string{ev("a", v1, 1)}},
			{published: true, commit: 1},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run(t, p, 0, nil, tc.steps)
		})
	}
}

// TestCoreLandedRowsNotServed: rows handed over say nothing of whether
// the store serves reads, so a key whose reads keep failing while only
// handed-over rows come back is the store's outage: never dead-lettered
// (with store reads of the same keys it would be, at MaxAttempts:
// TestCoreFailures).
func TestCoreLandedRowsNotServed(t *testing.T) {
	t.Parallel()
	steps := flowingReadFailures(5, 0, true, false)
	for i := range steps {
		if r := steps[i].read; r != nil && !r.Probe && r.Err == nil && string(r.Key) != "a" {
			r.Landed = true
		}
	}
	run(t, failParams, 0, nil, steps)
}

// TestHeldReadTakesTheWrittenRow: a read held on a store write of this
// process takes the row that write stored, without reading the store,
// when the row covers the intent; it reads the store when the write
// stored an older version of the key, or none, or with ReadBackWrites.
// The event carries the stored row either way.
func TestHeldReadTakesTheWrittenRow(t *testing.T) {
	t.Parallel()
	const v = 1000
	for _, tc := range []struct {
		name      string
		readBack  bool
		stored    []store.Mutation // what the write tells it stored (nil: it failed)
		wantReads int
	}{
		{"the write stored the version", false, []store.Mutation{{Key: []byte("a"), Value: []byte("v"), Version: v}}, 0},
		{"read_back_writes", true, []store.Mutation{{Key: []byte("a"), Value: []byte("v"), Version: v}}, 1},
		{"the write stored an older version of the key", false, []store.Mutation{{Key: []byte("a"), Value: []byte("old"), Version: v - 1}}, 1},
		{"the write stored other keys", false, []store.Mutation{{Key: []byte("b"), Value: []byte("v"), Version: v}}, 1},
		{"the write failed", false, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			env := newTestEnv(ctx, t, "handover")
			spy := &spyLanding{ws: landing.New()}
			w := spy.ws.Begin(env.tb.Name, v-5, v+5)
			env.writeIntent(ctx, t, intent.Intent{Key: []byte("a"), Op: intent.Upsert, Version: v, CreatedAt: time.Now().Add(-time.Minute)}, "")
			cs := &countingStore{st: env.st}
			m := NewMetrics(nil)
			cfg := testConfig(nil, m)
			cfg.Landing, cfg.ReadBackWrites = spy, tc.readBack
			r := New(env.log, countingMultiStore{cs}, env.bus, cfg)
			run := start(ctx, r, env.tb)
			defer run.stop(t)
			waitUntil(ctx, t, "the resolver asked whether the write landed", func() bool { return spy.asked.Load() > 0 })
			// The store holds the version (as after any write that
			// stored it); what the write tells decides the read.
			if _, err := env.st.Apply(ctx, env.tb.Name, []store.Mutation{{Key: []byte("a"), Value: []byte("v"), Version: v}}); err != nil {
				t.Fatal(err)
			}
			if tc.stored != nil {
				outs := make([]store.Outcome, len(tc.stored))
				for i := range outs {
					outs[i] = store.Outcome{Applied: true, Current: tc.stored[i].Version}
				}
				w.Stored(tc.stored, outs)
			}
			w.End()
			waitUntil(ctx, t, "the event", func() bool { return onBus(ctx, t, env)["a"] == 1 })
			for _, rec := range readTopic(ctx, t, env.log, eventbus.Topic(env.tb.Name)) {
				e, err := intent.UnmarshalEvent(rec.Value)
				if err != nil {
					t.Fatal(err)
				}
				if e.Version != v || string(e.Value) != "v" {
					t.Errorf("event %d %q, want %d %q (the stored row)", e.Version, e.Value, v, "v")
				}
			}
			cs.mu.Lock()
			reads := cs.gets
			for _, k := range cs.manys {
				reads += k
			}
			cs.mu.Unlock()
			if reads != tc.wantReads {
				t.Errorf("%d store reads, want %d", reads, tc.wantReads)
			}
			handed := testutil.ToFloat64(m.landingHeld.WithLabelValues(env.tb.Name, "handed_over"))
			if want := float64(1 - tc.wantReads); handed != want {
				t.Errorf("wail_resolver_landing_held_reads_total{outcome=\"handed_over\"} = %v, want %v", handed, want)
			}
		})
	}
}
