package proxy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
)

// gatedLog is a fakeLog whose appends wait for the gate while it is
// closed, and which records how many records each append took.
type gatedLog struct {
	fakeLog
	mu      sync.Mutex
	sizes   []int
	entered chan struct{} // one send per append that began
	gate    chan struct{} // appends wait until it is closed
}

func (g *gatedLog) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	g.mu.Lock()
	g.sizes = append(g.sizes, len(recs))
	g.mu.Unlock()
	g.entered <- struct{}{}
	<-g.gate
	return g.fakeLog.Append(ctx, topic, recs)
}

func (g *gatedLog) appendSizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.sizes...)
}

// TestMergedWrites: with one batch of a table in flight, the writes that
// arrive meanwhile wait and then go as one intent append and one store
// write (capped by MaxMerge), every write gets its own result and a
// distinct version, and a waiting writer that goes away neither loses its
// place nor cuts the others.
func TestMergedWrites(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		maxMerge  int
		waiting   int   // writes of 2 mutations each that arrive while the first is in flight
		wantSizes []int // records per append after the first
	}{
		{name: "all merged", maxMerge: 100, waiting: 5, wantSizes: []int{10}},
		{name: "capped by MaxMerge", maxMerge: 4, waiting: 5, wantSizes: []int{4, 4, 2}},
		{name: "one write over the cap runs alone", maxMerge: 1, waiting: 2, wantSizes: []int{2, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, log, p := gatedProxy(t, tc.maxMerge)

			first := make(chan []Result, 1)
			go func() { first <- p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("first")}}) }()
			<-log.entered // the first batch is in its append: the others must wait
			results := make([][]Result, tc.waiting)
			var wg sync.WaitGroup
			for i := range tc.waiting {
				ctx := context.Background()
				if i == 0 {
					// a writer that goes away while it waits: its write still runs
					c, cancel := context.WithCancel(ctx)
					cancel()
					ctx = c
				}
				wg.Go(func() {
					results[i] = p.Write(ctx, []Mutation{
						{Table: "tx", Key: fmt.Appendf(nil, "k%d-a", i)}, {Table: "tx", Key: fmt.Appendf(nil, "k%d-b", i)}})
				})
			}
			waitFor(t, func() bool {
				m := p.mergerOf("tx")
				m.mu.Lock()
				defer m.mu.Unlock()
				return len(m.queue) == tc.waiting
			})
			close(log.gate)
			wg.Wait()
			if r := <-first; r[0].Err != nil || !r[0].Stored {
				t.Fatalf("first write: %+v", r[0])
			}
			if got := log.appendSizes()[1:]; fmt.Sprint(got) != fmt.Sprint(tc.wantSizes) {
				t.Fatalf("appends after the first took %v records, want %v", got, tc.wantSizes)
			}
			seen := map[uint64]bool{}
			for i, rs := range results {
				for j, r := range rs {
					if r.Err != nil || !r.IntentLogged || !r.Stored || r.Version == 0 || seen[r.Version] {
						t.Fatalf("write %d mutation %d: %+v (a version seen twice: %v)", i, j, r, seen[r.Version])
					}
					seen[r.Version] = true
					key := fmt.Sprintf("k%d-%c", i, 'a'+j)
					if row := w.rows[key]; row.Version != r.Version {
						t.Fatalf("%s stored at version %d, the answer says %d", key, row.Version, r.Version)
					}
				}
			}
			m := p.mergerOf("tx")
			if m.running != 0 || len(m.queue) != 0 {
				t.Fatalf("after the writes: %d batches running, %d queued", m.running, len(m.queue))
			}
		})
	}
}

// gatedProxy is a proxy on a gatedLog with one batch of table "tx" in
// flight at most and merged batches of maxMerge mutations (0: MaxBatch).
func gatedProxy(t *testing.T, maxMerge int) (*world, *gatedLog, *Proxy) {
	t.Helper()
	w := &world{rows: map[string]store.Row{}}
	log := &gatedLog{fakeLog: fakeLog{w}, entered: make(chan struct{}, 100), gate: make(chan struct{})}
	clock, err := hlc.New(3, nil)
	if err != nil {
		t.Fatal(err)
	}
	tbs := tables{"tx": {Name: "tx", FailureMode: catalog.Transactional, Partitions: 1, VisibilityWindow: time.Minute}}
	p := New(log, fakeStore{w}, tbs, clock, Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 10, WritesInFlight: 1, MaxMerge: maxMerge}, nil)
	return w, log, p
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLateWritesAreRefused: writes that waited in the merge queue past the
// stamp bound are refused unwritten (so a client that lost its connection
// knows when no attempt of its can be stamped any more); the others of
// their batch are written.
func TestLateWritesAreRefused(t *testing.T) {
	t.Parallel()
	w, log, p := gatedProxy(t, 0)
	p.stampDelay = 200 * time.Millisecond
	go p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("first")}})
	<-log.entered
	late := make(chan Result, 1)
	go func() { late <- p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("late")}})[0] }()
	waitFor(t, func() bool { m := p.mergerOf("tx"); m.mu.Lock(); defer m.mu.Unlock(); return len(m.queue) == 1 })
	time.Sleep(p.stampDelay) // the queued write is now past the bound
	onTime := make(chan Result, 1)
	go func() { onTime <- p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("ontime")}})[0] }()
	waitFor(t, func() bool { m := p.mergerOf("tx"); m.mu.Lock(); defer m.mu.Unlock(); return len(m.queue) == 2 })
	close(log.gate)
	if r := <-late; !errors.Is(r.Err, ErrUnavailable) || r.Version != 0 || r.IntentLogged {
		t.Fatalf("late write: %+v; want unavailable, unstamped", r)
	}
	if r := <-onTime; r.Err != nil || !r.Stored {
		t.Fatalf("the write queued in time: %+v", r)
	}
	if _, ok := w.rows["late"]; ok {
		t.Fatal("the late write was stored")
	}
}
