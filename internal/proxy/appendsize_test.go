package proxy

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

// sizedWorld is a proxy on an embedded intent log (whose Appends take at
// most maxBatch bytes) and a Pebble store, with one table "t" of one
// partition.
type sizedWorld struct {
	log   *embedded.Log
	store *pebble.Store
	cat   *catalog.Catalog
}

func newSizedWorld(t *testing.T, maxBatch int64) *sizedWorld {
	t.Helper()
	ctx := t.Context()
	lg, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true, MaxBatchBytes: maxBatch})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lg.Close() })
	if err := lg.CreateTopic(ctx, intent.Topic("t"), 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := pebble.Open(t.TempDir(), pebble.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cat, err := catalog.Open(ctx, st, catalog.Options{Provisioner: dropTopics{}, Refresh: time.Hour,
		Defaults: catalog.Table{FailureMode: catalog.Transactional, VisibilityWindow: 10 * time.Second, Partitions: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cat.Create(ctx, catalog.Table{Name: "t"}); err != nil {
		t.Fatal(err)
	}
	return &sizedWorld{log: lg, store: st, cat: cat}
}

// intents returns how many intents the log holds.
func (w *sizedWorld) intents(t *testing.T) int64 {
	t.Helper()
	_, end, err := w.log.Bounds(t.Context(), intent.Topic("t"), 0)
	if err != nil {
		t.Fatal(err)
	}
	return end
}

// keyed returns n upserts of table t with distinct keys of keyLen bytes
// (prefix first) and values of valueLen bytes.
func keyed(prefix string, n, keyLen, valueLen int) []Mutation {
	muts := make([]Mutation, n)
	for i := range muts {
		k := bytes.Repeat([]byte{'k'}, keyLen)
		copy(k, fmt.Sprintf("%s%d-", prefix, i))
		muts[i] = Mutation{Table: "t", Key: k, Value: make([]byte, valueLen)}
	}
	return muts
}

// TestWriteTooLargeForOneAppend: a Write whose intents the intent log
// cannot take in one append (5,000 keys of 4,000 bytes: 40 MB of intents,
// over the embedded log's 16 MiB, in a request under 32 MiB... of keys
// alone, 20 MB) is refused before it is stamped, as invalid, naming the
// limit: nothing logged, nothing stored. It was stamped, refused by the
// log as a whole (ErrTooLarge) and answered "unavailable, retry", which
// no retry can cure. A Write that fits is written.
func TestWriteTooLargeForOneAppend(t *testing.T) {
	t.Parallel()
	w := newSizedWorld(t, 0) // the default: 16 MiB
	p := New(w.log, w.store, w.cat, mustClock(t), Limits{MaxKeyBytes: 4096, MaxValueBytes: 1 << 20, MaxBatch: 10000,
		Intents: w.log}, nil)
	res := p.Write(t.Context(), keyed("big", 5000, 4000, 0))
	for i, r := range res {
		if !errors.Is(r.Err, ErrInvalid) || !strings.Contains(r.Err.Error(), "in one append") || r.Version != 0 {
			t.Fatalf("mutation %d: %+v; want %v naming the append limit, unstamped", i, r, ErrInvalid)
		}
	}
	if n := w.intents(t); n != 0 {
		t.Fatalf("%d intents logged for a write refused as a whole", n)
	}
	if _, found, err := w.store.Get(t.Context(), "t", res2key(keyed("big", 1, 4000, 0)), 0); err != nil || found {
		t.Fatalf("a refused write was stored (found %v, err %v)", found, err)
	}
	ok := p.Write(t.Context(), keyed("fits", 1000, 4000, 0)) // about 8 MB of intents
	for i, r := range ok {
		if r.Err != nil || !r.Stored || !r.IntentLogged {
			t.Fatalf("mutation %d of a write that fits: %+v", i, r)
		}
	}
}

func res2key(muts []Mutation) []byte { return muts[0].Key }

// TestAppendLimitIsTight: with a small append limit, Writes of 1, 2, ...
// mutations are each either written whole or refused whole as invalid
// (never unavailable: the proxy's bound of the intents is never below
// what the log counts), and the first refused is within a few percent
// of what the log could take (the bound is not far above it).
func TestAppendLimitIsTight(t *testing.T) {
	t.Parallel()
	const limit, keyLen = 64 << 10, 1000
	w := newSizedWorld(t, limit)
	p := New(w.log, w.store, w.cat, mustClock(t), Limits{MaxKeyBytes: 4096, MaxValueBytes: 1 << 20, MaxBatch: 10000,
		Intents: w.log}, nil)
	refused := 0
	for n := 1; refused == 0 && n < 1000; n++ {
		res := p.Write(t.Context(), keyed(fmt.Sprint("w", n, "-"), n, keyLen, 10))
		switch r := res[0]; {
		case r.Err == nil:
			for i, r := range res {
				if r.Err != nil || !r.Stored {
					t.Fatalf("write of %d: mutation %d %+v, the first was written", n, i, r)
				}
			}
		case errors.Is(r.Err, ErrInvalid):
			refused = n
		default:
			t.Fatalf("write of %d mutations: %v; want written or refused as invalid", n, r.Err)
		}
	}
	// Each intent takes a little over 2 key lengths (its record's key and
	// the key inside its value).
	if most := limit / (2 * keyLen); refused < most*9/10 {
		t.Fatalf("refused a write of %d mutations; the log takes about %d", refused, most)
	}
}

// sizeGate is an intent log whose first Append waits until gate is
// closed, so that the writes that arrive meanwhile are merged, and which
// records the records each Append took and whether it failed.
type sizeGate struct {
	Log
	mu      sync.Mutex
	sizes   []string
	first   sync.Once
	entered chan struct{}
	gate    chan struct{}
}

func (g *sizeGate) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	g.first.Do(func() { close(g.entered); <-g.gate })
	err := g.Log.Append(ctx, topic, recs)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sizes = append(g.sizes, fmt.Sprint(len(recs), map[bool]string{true: "", false: "!"}[err == nil]))
	return err
}

// mergeUnder runs one write of first, waits until it is in its append,
// then sends waiting (each a Write, queued in that order), lets the first append go on, and returns their results and the
// appends' sizes ("n" taken, "n!" failed), the first's included.
func mergeUnder(t *testing.T, p *Proxy, g *sizeGate, first []Mutation, waiting [][]Mutation) ([][]Result, []string) {
	t.Helper()
	done := make(chan []Result, 1)
	go func() { done <- p.Write(context.Background(), first) }()
	select {
	case <-g.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the first write never reached the log")
	}
	results := make([][]Result, len(waiting))
	var wg sync.WaitGroup
	for i, muts := range waiting { // one after another: queued in this order
		wg.Go(func() { results[i] = p.Write(context.Background(), muts) })
		waitFor(t, func() bool {
			m := p.mergerOf(first[0].Table)
			m.mu.Lock()
			defer m.mu.Unlock()
			return len(m.queue) == i+1
		})
	}
	close(g.gate)
	wg.Wait()
	for i, r := range <-done {
		if r.Err != nil {
			t.Fatalf("first write, mutation %d: %v", i, r.Err)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return results, append([]string(nil), g.sizes...)
}

// TestMergeStopsAtAppendLimit: writes that each fit one append, queued
// together, are merged only as far as the intent log takes in one
// append: all are written. They were merged into one append the log
// refused as a whole, failing every one of them.
func TestMergeStopsAtAppendLimit(t *testing.T) {
	t.Parallel()
	const limit, keyLen = 64 << 10, 1000
	w := newSizedWorld(t, limit)
	g := &sizeGate{Log: w.log, entered: make(chan struct{}), gate: make(chan struct{})}
	p := New(g, w.store, w.cat, mustClock(t), Limits{MaxKeyBytes: 4096, MaxValueBytes: 1 << 20, MaxBatch: 10000,
		WritesInFlight: 1, Intents: w.log}, nil)
	var waiting [][]Mutation
	for i := range 4 {
		waiting = append(waiting, keyed(fmt.Sprint("w", i, "-"), 9, keyLen, 10)) // under a third of the limit each
	}
	results, sizes := mergeUnder(t, p, g, keyed("first", 1, 8, 1), waiting)
	for i, rs := range results {
		for j, r := range rs {
			if r.Err != nil || !r.Stored {
				t.Fatalf("write %d mutation %d: %+v (appends %v)", i, j, r, sizes)
			}
		}
	}
	if want := "[1 27 9]"; fmt.Sprint(sizes) != want {
		t.Fatalf("appends took %v records, want %v", sizes, want)
	}
	if n := w.intents(t); n != 37 {
		t.Fatalf("%d intents logged, want 37", n)
	}
}

// TestMergeStopsAtRowBytes: a merged batch gathers queued writes only
// while their rows (keys, values) stay within MaxMergeBytes, as it does
// within MaxMerge mutations; a single write above it runs alone, written.
// (Merged up to max_batch_mutations alone, 10,000 values of up to 1 MiB
// each went to the store as one write.)
func TestMergeStopsAtRowBytes(t *testing.T) {
	t.Parallel()
	const value = 1000 // a mutation's row: about 1,070 bytes
	for _, tc := range []struct {
		name      string
		maxBytes  int
		value     int      // bytes of each value of the waiting writes (0: value)
		waiting   []int    // mutations of each write that arrives while the first is in flight
		wantSizes []string // records per append, the first's included
	}{
		{name: "two writes a batch", maxBytes: 5000, waiting: []int{2, 2, 2, 2, 2}, wantSizes: []string{"1", "4", "4", "2"}},
		{name: "a write over the bound runs alone", maxBytes: 5000, waiting: []int{6, 2, 2}, wantSizes: []string{"1", "6", "4"}},
		{name: "unset: the default bound", maxBytes: 0, waiting: []int{2, 2, 2, 2, 2}, wantSizes: []string{"1", "10"}},
		// Rows of an 8-byte key and a 1-byte value count the store's
		// overhead of a row too (rowSlack, 64 bytes): 73 bytes each, 1,460
		// a write of 20, three writes a batch (by their bytes alone, 180
		// a write, all four would go).
		{name: "small rows count the store's overhead", maxBytes: 5000, value: 1, waiting: []int{20, 20, 20, 20}, wantSizes: []string{"1", "60", "20"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := &world{Rows: map[string]store.Row{}}
			g := &sizeGate{Log: w.Log(), entered: make(chan struct{}), gate: make(chan struct{})}
			tbs := tables{"t": {Name: "t", FailureMode: catalog.Transactional, Partitions: 1, VisibilityWindow: time.Minute}}
			p := New(g, w.Store(), tbs, mustClock(t), Limits{MaxKeyBytes: 16, MaxValueBytes: value, MaxBatch: 100,
				WritesInFlight: 1, MaxMergeBytes: tc.maxBytes}, nil)
			var waiting [][]Mutation
			v := cmp.Or(tc.value, value)
			for i, n := range tc.waiting {
				waiting = append(waiting, keyed(fmt.Sprint("w", i, "-"), n, 8, v))
			}
			results, sizes := mergeUnder(t, p, g, keyed("first", 1, 8, 1), waiting)
			for i, rs := range results {
				for j, r := range rs {
					if r.Err != nil || !r.Stored {
						t.Fatalf("write %d mutation %d: %+v", i, j, r)
					}
				}
			}
			if fmt.Sprint(sizes) != fmt.Sprint(tc.wantSizes) {
				t.Fatalf("appends took %v records, want %v", sizes, tc.wantSizes)
			}
		})
	}
}

// TestFitsMerge: a queued write joins a merged batch while the batch
// stays within MaxMerge mutations, MaxMergeBytes of rows and one append
// of intents, each bound included.
func TestFitsMerge(t *testing.T) {
	t.Parallel()
	p := &Proxy{limits: Limits{MaxMerge: 10, MaxMergeBytes: 1000}}
	for _, tc := range []struct {
		name string
		n    int  // mutations in the batch so far
		sz   size // the batch's size so far
		q    queued
		fits bool
	}{
		{"within every bound", 5, size{50, 500}, queued{idx: make([]int, 2), size: size{10, 100}, appendLimit: 100}, true},
		{"mutations exactly at MaxMerge", 8, size{50, 500}, queued{idx: make([]int, 2), size: size{10, 100}, appendLimit: 100}, true},
		{"one mutation over MaxMerge", 9, size{50, 500}, queued{idx: make([]int, 2), size: size{10, 100}, appendLimit: 100}, false},
		{"rows exactly at MaxMergeBytes", 1, size{50, 900}, queued{idx: make([]int, 1), size: size{10, 100}, appendLimit: 100}, true},
		{"rows one byte over", 1, size{50, 901}, queued{idx: make([]int, 1), size: size{10, 100}, appendLimit: 100}, false},
		{"intents exactly at the append limit", 1, size{90, 100}, queued{idx: make([]int, 1), size: size{10, 100}, appendLimit: 100}, true},
		{"intents one byte over", 1, size{91, 100}, queued{idx: make([]int, 1), size: size{10, 100}, appendLimit: 100}, false},
		{"no append limit", 1, size{1 << 30, 100}, queued{idx: make([]int, 1), size: size{10, 100}}, true},
	} {
		if got := p.fitsMerge(tc.n, tc.sz, &tc.q); got != tc.fits {
			t.Errorf("%s: fits %v, want %v", tc.name, got, tc.fits)
		}
	}
}
