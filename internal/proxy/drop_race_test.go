package proxy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/proxy/proxytest"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

type dropTopics struct{}

func (dropTopics) Provision(context.Context, catalog.Table) error   { return nil }
func (dropTopics) Unprovision(context.Context, catalog.Table) error { return nil }

// countLog counts the intents the log took, and when.
type countLog struct {
	inner proxytest.Log
	n     atomic.Int64
	last  atomic.Int64 // unix nanos of the last append that took intents
}

func (l *countLog) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	err := l.inner.Append(ctx, topic, recs)
	if err == nil {
		l.n.Add(int64(len(recs)))
		l.last.Store(time.Now().UnixNano())
	}
	return err
}

// TestWriteQueuedAcrossDrop: a write admitted (table ready) just before a
// drop, which then waits in its table's merge queue behind a slow batch
// (each step within its share of the window), is refused unwritten when
// its turn comes (the table is checked again right before stamping). (It
// was stamped and its intent appended after the drop's second look at
// the intent log: the drop succeeded, and the write was acknowledged
// although its intent was never going to be resolved.)
func TestWriteQueuedAcrossDrop(t *testing.T) {
	ctx := t.Context()
	st, err := pebble.Open(t.TempDir(), pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const w = time.Second
	cat, err := catalog.Open(ctx, st, catalog.Options{Provisioner: dropTopics{}, Refresh: 10 * time.Millisecond,
		Defaults: catalog.Table{FailureMode: catalog.Transactional, VisibilityWindow: w, Partitions: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cat.Create(ctx, catalog.Table{Name: "t"}); err != nil {
		t.Fatal(err)
	}
	// Each append takes W/10, well within its W/2 (W/2 - 10ms failed
	// write a on a loaded machine: "the intent log took 508ms"); a's
	// intent is in the log 4 W/10 before the drop's first look.
	world := &proxytest.World{Rows: nil, LogDelay: w / 10}
	var slowOnce sync.Once
	// The first store write (a's) holds the merge queue until 0.84 W,
	// 0.34 W after the drop's first look.
	world.OnApply = func() { slowOnce.Do(func() { time.Sleep(w*3/4 - 10*time.Millisecond) }) }
	lg := &countLog{inner: world.Log()}
	p := New(lg, world.Store(), cat, mustClock(t), Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 10, WritesInFlight: 1}, nil)

	var a, b Result
	var wg sync.WaitGroup
	wg.Go(func() { a = p.Write(ctx, []Mutation{{Table: "t", Key: []byte("a"), Value: []byte("1")}})[0] })
	time.Sleep(w / 4)
	wg.Go(func() { b = p.Write(ctx, []Mutation{{Table: "t", Key: []byte("b"), Value: []byte("1")}})[0] }) // admitted, queued
	time.Sleep(w / 4)                                                                                     // a's intent is in the log
	var secondLook time.Time
	calls := 0
	hooks := catalog.DropHooks{
		Progress: func(context.Context, catalog.Table) ([]int64, []int64, error) {
			calls++
			if calls == 2 {
				secondLook = time.Now()
			}
			n := lg.n.Load()
			return []int64{n}, []int64{n}, nil // a resolver that resolves at once
		},
		Stopped: func(context.Context, catalog.Table) error { return nil },
	}
	dropErr := cat.Drop(ctx, "t", false, hooks)
	wg.Wait()
	if a.Err != nil {
		t.Fatalf("write a: %v", a.Err)
	}
	appended := time.Unix(0, lg.last.Load())
	t.Logf("drop: %v; b: err=%v logged=%v stored=%v; b's intent appended %v after the drop's last look",
		dropErr, b.Err, b.IntentLogged, b.Stored, appended.Sub(secondLook))
	if dropErr == nil && b.Err == nil && b.Stored {
		t.Fatalf("the drop succeeded and a write admitted before it was acknowledged, its intent logged %v after the drop's last look at the log: an acknowledged write without an event", appended.Sub(secondLook))
	}
	// Refused at its turn, b leaves the drop nothing to wait for. (Stamped
	// and logged instead, it failed the drop as busy: the catalog's last
	// look saw its intent.)
	if dropErr != nil || !errors.Is(b.Err, ErrUnknownTable) || b.IntentLogged || b.Stored {
		t.Fatalf("drop: %v; b: err=%v logged=%v stored=%v; want the drop done and b refused unwritten as an unknown table", dropErr, b.Err, b.IntentLogged, b.Stored)
	}
}

// flipTables serves table "t" to the first n lookups, then not (dropped).
type flipTables struct {
	mu sync.Mutex
	n  int
}

func (f *flipTables) Get(name string) (catalog.Table, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name != "t" || f.n == 0 {
		return catalog.Table{}, false
	}
	f.n--
	return catalog.Table{Name: "t", FailureMode: catalog.Transactional, Partitions: 1, VisibilityWindow: time.Second}, true
}

// TestDroppedBetweenChecks: a table dropped between a write's checks and
// its run fails the write as an unknown table. (Write looked it up again
// and ignored that it was gone: it ran the write path with a zero table,
// no name, no window, and failed as "unavailable, retry" with a 0s
// window.)
func TestDroppedBetweenChecks(t *testing.T) {
	world := &proxytest.World{}
	p := New(world.Log(), world.Store(), &flipTables{n: 1}, mustClock(t), Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 10}, nil)
	r := p.Write(t.Context(), []Mutation{{Table: "t", Key: []byte("k"), Value: []byte("v")}})[0]
	t.Logf("result: %+v; calls %v", r, world.Calls)
	if !errors.Is(r.Err, ErrUnknownTable) {
		t.Fatalf("a write to a table dropped under it: %v, want ErrUnknownTable", r.Err)
	}
}

// recreatedTables serves table "t" created at one time to the first n
// lookups, then created at another (dropped and created again).
type recreatedTables struct {
	mu sync.Mutex
	n  int
}

func (r *recreatedTables) Get(name string) (catalog.Table, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := catalog.Table{Name: "t", FailureMode: catalog.Transactional, Partitions: 1, VisibilityWindow: time.Second,
		CreatedAt: time.Unix(1, 0)}
	if r.n == 0 {
		t.CreatedAt = time.Unix(2, 0)
	} else {
		r.n--
	}
	return t, name == "t"
}

// TestGateBeforeStamping: right before stamping, a write whose table was
// created again since its checks fails as an unknown table, and one that
// admit refuses there fails unavailable; neither logs nor stores
// anything. Admitted, it goes through.
func TestGateBeforeStamping(t *testing.T) {
	var refuse atomic.Bool
	for _, tc := range []struct {
		name    string
		tables  Tables
		refuse  bool
		want    error
		written bool
	}{
		{"re-created", &recreatedTables{n: 2}, false, ErrUnknownTable, false},
		// Created again right after the write's checks, before Write
		// looked the table up again to run it: it ran against the new
		// table, the one the gate compared with, so a value checked
		// against the old table's schema went into the new one.
		{"re-created after the checks", &recreatedTables{n: 1}, false, ErrUnknownTable, false},
		{"admit refuses", &recreatedTables{n: 1 << 30}, true, ErrUnavailable, false},
		{"admitted", &recreatedTables{n: 1 << 30}, false, nil, true},
	} {
		world := &proxytest.World{}
		refuse.Store(tc.refuse)
		p := New(world.Log(), world.Store(), tc.tables, mustClock(t), Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 10}, nil).
			WithAdmit(func() error {
				if refuse.Load() {
					return errors.New("the proxy id's lease lapsed")
				}
				return nil
			})
		r := p.Write(t.Context(), []Mutation{{Table: "t", Key: []byte("k"), Value: []byte("v")}})[0]
		if !errors.Is(r.Err, tc.want) || (tc.want == nil && r.Err != nil) {
			t.Errorf("%s: %v, want %v", tc.name, r.Err, tc.want)
		}
		world.Mu.Lock()
		written := len(world.Intents) > 0 || len(world.Rows) > 0
		world.Mu.Unlock()
		if written != tc.written {
			t.Errorf("%s: written %v (intents %d), want %v", tc.name, written, len(world.Intents), tc.written)
		}
	}
}
