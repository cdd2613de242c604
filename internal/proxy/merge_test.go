package proxy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
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

// waitEntered waits until an append began: a write that never reaches
// the log fails the test (not hangs it).
func (g *gatedLog) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no append began within 30s: the write never reached the log")
	}
}

func (g *gatedLog) appendSizes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.sizes...)
}

// TestMergedWrites: with one batch of a table in flight, the writes that
// arrive meanwhile wait and then go as one intent append and one store
// write (capped by MaxMerge, by default MaxBatch), every write gets its own result and a
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
		{name: "unset: capped by MaxBatch", maxMerge: 0, waiting: 6, wantSizes: []int{10, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, log, p := gatedProxy(t, tc.maxMerge)

			first := make(chan []Result, 1)
			go func() { first <- p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("first")}}) }()
			log.waitEntered(t) // the first batch is in its append: the others must wait
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
			answered := make(chan struct{})
			go func() { wg.Wait(); close(answered) }()
			select {
			case <-answered:
			case <-time.After(30 * time.Second):
				t.Fatal("merged writes not answered within 30s: a writer was never released")
			}
			if r := <-first; r[0].Err != nil || !r[0].Stored {
				t.Fatalf("first write: %+v", r[0])
			}
			if got := log.appendSizes()[1:]; fmt.Sprint(got) != fmt.Sprint(tc.wantSizes) {
				t.Fatalf("appends after the first took %v records, want %v", got, tc.wantSizes)
			}
			// Every waiting write counts as a wait; the merged histogram
			// has the batches of more than one write only, by writes.
			var waits, merged dto.Metric
			if err := p.metrics.mergeWaits.Write(&waits); err != nil {
				t.Fatal(err)
			}
			if err := p.metrics.merged.Write(&merged); err != nil {
				t.Fatal(err)
			}
			var wantCount, wantSum int
			for _, n := range tc.wantSizes {
				if n/2 > 1 {
					wantCount, wantSum = wantCount+1, wantSum+n/2
				}
			}
			if h := merged.GetHistogram(); waits.GetCounter().GetValue() != float64(tc.waiting) ||
				h.GetSampleCount() != uint64(wantCount) || h.GetSampleSum() != float64(wantSum) {
				t.Fatalf("%v merge waits, merged batches %d of %v writes; want %d, %d of %d",
					waits.GetCounter().GetValue(), h.GetSampleCount(), h.GetSampleSum(), tc.waiting, wantCount, wantSum)
			}
			seen := map[uint64]bool{}
			for i, rs := range results {
				for j, r := range rs {
					if r.Err != nil || !r.IntentLogged || !r.Stored || r.Version == 0 || seen[r.Version] {
						t.Fatalf("write %d mutation %d: %+v (a version seen twice: %v)", i, j, r, seen[r.Version])
					}
					seen[r.Version] = true
					key := fmt.Sprintf("k%d-%c", i, 'a'+j)
					if row := w.Rows[key]; row.Version != r.Version {
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
	w := &world{Rows: map[string]store.Row{}}
	log := &gatedLog{fakeLog: w.Log(), entered: make(chan struct{}, 100), gate: make(chan struct{})}
	clock, err := hlc.New(3, nil)
	if err != nil {
		t.Fatal(err)
	}
	tbs := tables{"tx": {Name: "tx", FailureMode: catalog.Transactional, Partitions: 1, VisibilityWindow: time.Minute}}
	p := New(log, w.Store(), tbs, clock, Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 10, WritesInFlight: 1, MaxMerge: maxMerge}, nil)
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
	log.waitEntered(t)
	late := make(chan Result, 1)
	go func() { late <- p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("late")}})[0] }()
	waitFor(t, func() bool { m := p.mergerOf("tx"); m.mu.Lock(); defer m.mu.Unlock(); return len(m.queue) == 1 })
	time.Sleep(p.stampDelay) // the queued write is now past the bound
	onTime := make(chan Result, 1)
	go func() { onTime <- p.Write(context.Background(), []Mutation{{Table: "tx", Key: []byte("ontime")}})[0] }()
	waitFor(t, func() bool { m := p.mergerOf("tx"); m.mu.Lock(); defer m.mu.Unlock(); return len(m.queue) == 2 })
	close(log.gate)
	recv := func(c chan Result, what string) Result {
		t.Helper()
		select {
		case r := <-c:
			return r
		case <-time.After(30 * time.Second):
			t.Fatalf("the %s not answered within 30s", what)
			return Result{}
		}
	}
	if r := recv(late, "late write"); !errors.Is(r.Err, ErrUnavailable) || r.Version != 0 || r.IntentLogged {
		t.Fatalf("late write: %+v; want unavailable, unstamped", r)
	}
	if r := recv(onTime, "write queued in time"); r.Err != nil || !r.Stored {
		t.Fatalf("the write queued in time: %+v", r)
	}
	if _, ok := w.Rows["late"]; ok {
		t.Fatal("the late write was stored")
	}
}

// queuedWrite is a write of one mutation (key) of table t queued at at,
// as writeMerged queues it.
func queuedWrite(t catalog.Table, key string, at time.Time) *queued {
	return &queued{t: t, muts: []Mutation{{Table: t.Name, Key: []byte(key)}}, idx: []int{0}, res: make([]Result, 1),
		at: at, lead: make(chan []*queued, 1), done: make(chan struct{})}
}

// released says whether q's writer was answered by another write's batch
// (its done is closed).
func released(q *queued) bool {
	select {
	case <-q.done:
		return true
	default:
		return false
	}
}

func lateWrites(t *testing.T, p *Proxy) float64 {
	t.Helper()
	var m dto.Metric
	if err := p.metrics.lateWrites.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestLateWriteBound: the stamp bound is inclusive. A write queued exactly
// MaxStampDelay before its batch runs is refused, unwritten, and its
// writer released; one nanosecond less and it runs. (A client that lost
// its stream counts on no attempt being stamped MaxStampDelay or more
// after it sent it.)
func TestLateWriteBound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		waited time.Duration // before the batch runs
		late   bool
	}{
		{name: "one nanosecond under the bound", waited: MaxStampDelay - time.Nanosecond},
		{name: "exactly the bound", waited: MaxStampDelay, late: true},
		{name: "over the bound", waited: MaxStampDelay + time.Nanosecond, late: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, p := gatedProxy(t, 0)
			if p.stampDelay != MaxStampDelay {
				t.Fatalf("stamp bound %s, want MaxStampDelay (%s)", p.stampDelay, MaxStampDelay)
			}
			tx, _ := p.tables.Get("tx")
			now := time.Now()
			leader := queuedWrite(tx, "leader", now)
			q := queuedWrite(tx, "q", now.Add(-tc.waited))
			keep := p.refuseLate(leader, []*queued{leader, q}, now)
			if tc.late {
				if len(keep) != 1 || keep[0] != leader {
					t.Fatalf("kept %d writes, want only the leader's", len(keep))
				}
				if r := q.res[0]; !errors.Is(r.Err, ErrUnavailable) || r.Version != 0 || r.IntentLogged || r.Stored {
					t.Fatalf("the write that waited %s: %+v; want unavailable, unstamped", tc.waited, r)
				}
				if !released(q) {
					t.Fatal("the refused write's writer was not released")
				}
				if n := lateWrites(t, p); n != 1 {
					t.Fatalf("late writes counted: %v, want 1", n)
				}
				return
			}
			if len(keep) != 2 || keep[1] != q {
				t.Fatalf("kept %d writes, want both", len(keep))
			}
			if r := q.res[0]; r.Err != nil {
				t.Fatalf("the write that waited %s was refused: %v", tc.waited, r.Err)
			}
			if released(q) || lateWrites(t, p) != 0 {
				t.Fatal("a write in time was released or counted late before its batch ran")
			}
		})
	}
}

// TestMergedLateWrites: a merged batch with several late writes, the
// leader's among them or not, answers every late write unwritten and
// releases every writer but the leader (the leader's Write returns by
// itself), and writes the others.
func TestMergedLateWrites(t *testing.T) {
	t.Parallel()
	for _, leaderLate := range []bool{true, false} {
		t.Run(fmt.Sprintf("leader late %v", leaderLate), func(t *testing.T) {
			t.Parallel()
			w, log, p := gatedProxy(t, 0)
			close(log.gate)
			tx, _ := p.tables.Get("tx")
			lateAt, onTimeAt := time.Now().Add(-2*p.stampDelay), time.Now()
			leaderAt := onTimeAt
			if leaderLate {
				leaderAt = lateAt
			}
			batch := []*queued{queuedWrite(tx, "leader", leaderAt), queuedWrite(tx, "late1", lateAt),
				queuedWrite(tx, "ontime1", onTimeAt), queuedWrite(tx, "late2", lateAt), queuedWrite(tx, "ontime2", onTimeAt)}
			p.runMerged(context.Background(), batch)
			lates := 2
			if leaderLate {
				lates++
			}
			if n := lateWrites(t, p); n != float64(lates) {
				t.Fatalf("late writes counted: %v, want %d", n, lates)
			}
			for i, q := range batch {
				key := string(q.muts[0].Key)
				late := q.at.Equal(lateAt)
				if i > 0 && !released(q) {
					t.Fatalf("the writer of %s (late: %v) was never released: it would wait forever", key, late)
				}
				r := q.res[0]
				_, stored := w.Rows[key]
				if late {
					if !errors.Is(r.Err, ErrUnavailable) || r.Version != 0 || r.IntentLogged || stored {
						t.Fatalf("late write %s: %+v (stored: %v); want unavailable, unstamped, not stored", key, r, stored)
					}
					continue
				}
				if r.Err != nil || !r.Stored || !stored || w.Rows[key].Version != r.Version {
					t.Fatalf("write in time %s: %+v (stored: %v)", key, r, stored)
				}
			}
		})
	}
}
