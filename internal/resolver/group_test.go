package resolver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// fakeGroup records the transactions it was asked for; those with a
// record of key "bad" abort, the others fail with err.
type fakeGroup struct {
	err   error
	calls []fakeTxn
}

type fakeTxn struct {
	recs    map[string][]*intentlog.Record
	offsets map[string]map[int32]int64
}

func (g *fakeGroup) AddTopics(...string)         {}
func (g *fakeGroup) Close(context.Context) error { return nil }
func (g *fakeGroup) Shards() int                 { return 1 }
func (g *fakeGroup) Transact(_ context.Context, _ int, recs map[string][]*intentlog.Record, offsets map[string]map[int32]int64) error {
	g.calls = append(g.calls, fakeTxn{recs, offsets})
	for _, rs := range recs {
		for _, r := range rs {
			if string(r.Key) == "bad" {
				return ErrAborted
			}
		}
	}
	return g.err
}

func TestPumpTransact(t *testing.T) {
	t.Parallel()
	gone := make(chan struct{})
	close(gone)
	live := make(chan struct{})
	rec := func(k string) map[string][]*intentlog.Record {
		return map[string][]*intentlog.Record{"ev": {{Key: []byte(k)}}}
	}
	cases := []struct {
		name     string
		reqs     []*txnRequest
		err      error
		wantTxns int
		wantRecs int
		wantOffs map[int32]int64
		wantErrs []error // per request, when not all get err
	}{
		{
			name: "batches of several loops share one transaction",
			reqs: []*txnRequest{
				{recs: rec("a"), topic: "in", part: 0, offset: 5, done: live},
				{recs: rec("b"), topic: "in", part: 1, offset: 9, done: live},
				{topic: "in", part: 0, offset: 7, done: live}, // offsets only, later
			},
			wantTxns: 1, wantRecs: 2, wantOffs: map[int32]int64{0: 7, 1: 9},
		},
		{
			name: "a gone loop's batch is dropped",
			reqs: []*txnRequest{
				{recs: rec("a"), topic: "in", part: 0, offset: 5, done: gone},
				{recs: rec("b"), topic: "in", part: 1, offset: 9, done: live},
			},
			wantTxns: 1, wantRecs: 1, wantOffs: map[int32]int64{1: 9},
		},
		{
			name:     "nothing live: no transaction",
			reqs:     []*txnRequest{{recs: rec("a"), topic: "in", part: 0, offset: 5, done: gone}},
			wantTxns: 0,
		},
		{
			name:     "an abort is retried per loop, and reaches every loop whose own transaction aborts",
			reqs:     []*txnRequest{{recs: rec("a"), topic: "in", part: 0, offset: 5, done: live}, {topic: "in", part: 1, offset: 2, done: live}},
			err:      ErrAborted,
			wantTxns: 3, wantRecs: 1, wantOffs: map[int32]int64{0: 5, 1: 2},
		},
		{
			name: "a loop whose records abort the shared transaction fails alone",
			reqs: []*txnRequest{
				{recs: rec("a"), topic: "in", part: 0, offset: 5, done: live},
				{recs: rec("bad"), topic: "in", part: 1, offset: 9, done: live},
				{recs: rec("c"), topic: "in", part: 2, offset: 3, done: live},
			},
			wantTxns: 4, wantRecs: 3, wantOffs: map[int32]int64{0: 5, 1: 9, 2: 3},
			wantErrs: []error{nil, ErrAborted, nil},
		},
		{
			name: "a request apart (it failed alone before) runs alone and aborts nobody else's",
			reqs: []*txnRequest{
				{recs: rec("a"), topic: "in", part: 0, offset: 5, done: live},
				{recs: rec("bad"), topic: "in", part: 1, offset: 9, done: live, apart: true},
				{recs: rec("c"), topic: "in", part: 2, offset: 3, done: live},
			},
			wantTxns: 2, wantRecs: 1, wantOffs: map[int32]int64{1: 9},
			wantErrs: []error{nil, ErrAborted, nil},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			g := &fakeGroup{err: c.err}
			p := newPump(g, 0, 0, NewMetrics(nil).transactions)
			for _, rq := range c.reqs {
				rq.reply = make(chan error, 1)
			}
			p.transact(context.Background(), c.reqs)
			if len(g.calls) != c.wantTxns {
				t.Fatalf("%d transactions, want %d", len(g.calls), c.wantTxns)
			}
			for i, rq := range c.reqs {
				want := c.err
				if c.wantErrs != nil {
					want = c.wantErrs[i]
				}
				select {
				case err := <-rq.reply:
					if rq.done == gone {
						t.Errorf("a gone loop got an answer")
					} else if !errors.Is(err, want) && err != want {
						t.Errorf("request %d: answer %v, want %v", i, err, want)
					}
				default:
					if rq.done != gone {
						t.Errorf("a live loop got no answer")
					}
				}
			}
			if c.wantTxns == 0 {
				return
			}
			if n := len(g.calls[0].recs["ev"]); n != c.wantRecs {
				t.Errorf("%d records, want %d", n, c.wantRecs)
			}
			got := g.calls[0].offsets["in"]
			if len(got) != len(c.wantOffs) {
				t.Fatalf("offsets %v, want %v", got, c.wantOffs)
			}
			for p, o := range c.wantOffs {
				if got[p] != o {
					t.Errorf("offsets %v, want %v", got, c.wantOffs)
				}
			}
		})
	}
}

// eagerGroup is a group that assigns partition 0 of its first topic while
// Join still runs, as a real group may, and reports the offsets it
// commits.
type eagerGroup struct {
	mu      sync.Mutex
	offsets map[int32]int64
}

func (g *eagerGroup) AddTopics(...string)         {}
func (g *eagerGroup) Close(context.Context) error { return nil }
func (g *eagerGroup) Shards() int                 { return 2 }
func (g *eagerGroup) Transact(_ context.Context, _ int, _ map[string][]*intentlog.Record, offsets map[string]map[int32]int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, parts := range offsets {
		for p, o := range parts {
			g.offsets[p] = max(g.offsets[p], o)
		}
	}
	return nil
}

func (g *eagerGroup) committed() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.offsets[0]
}

// TestAssignedDuringJoin: a partition assigned before Join returned (before
// the member has its pumps) starts once they exist.
func TestAssignedDuringJoin(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "eager")
	env.write(ctx, t, "k", 1, "one")
	g := &eagerGroup{offsets: map[int32]int64{}}
	join := func(topics []string, assigned, _ func(map[string][]int32)) (Group, error) {
		assigned(map[string][]int32{topics[0]: {0}})
		return g, nil
	}
	r := New(env.log, env.st, env.bus, Config{Group: "g", BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		Horizon: time.Minute, CommitInterval: 10 * time.Millisecond, MaxUnresolved: 100, Join: join})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx, []catalog.Table{env.tb}, nil) }()
	waitUntil(ctx, t, "the partition assigned during Join resolved its intent", func() bool { return g.committed() == 1 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// recordingGroup assigns partition 0 of its first topic at join and keeps
// every transaction; records too large for the embedded log's limit
// abort theirs, as on a topic with max.message.bytes of 1 MiB.
type recordingGroup struct {
	mu    sync.Mutex
	calls []fakeTxn
}

func (g *recordingGroup) AddTopics(...string)         {}
func (g *recordingGroup) Close(context.Context) error { return nil }
func (g *recordingGroup) Shards() int                 { return 1 }
func (g *recordingGroup) Transact(_ context.Context, _ int, recs map[string][]*intentlog.Record, offsets map[string]map[int32]int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, rs := range recs {
		for _, r := range rs {
			if len(r.Value) > 1<<20 {
				return fmt.Errorf("%w: %w", ErrAborted, intentlog.ErrTooLarge)
			}
		}
	}
	g.calls = append(g.calls, fakeTxn{recs, offsets})
	return nil
}

// letterTxn returns the committed transaction that carries a dead letter.
func (g *recordingGroup) letterTxn(table string) *fakeTxn {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range g.calls {
		if len(g.calls[i].recs[dlq.Topic(table)]) > 0 {
			return &g.calls[i]
		}
	}
	return nil
}

// TestLetterAndOffsetInOneTransaction: on Kafka a dead letter commits in
// the same transaction as the offset past the intents it settles, so a
// resolver killed at any point leaves either both or neither.
func TestLetterAndOffsetInOneTransaction(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "txl")
	env.write(ctx, t, "a", 1, "small")                      // offset 0
	env.write(ctx, t, "big", 2, strings.Repeat("x", 1<<20)) // offset 1
	g := &recordingGroup{}
	join := func(topics []string, assigned, _ func(map[string][]int32)) (Group, error) {
		assigned(map[string][]int32{topics[0]: {0}})
		return g, nil
	}
	logger, _ := testLogger()
	cfg := testConfig(logger, nil)
	cfg.Join = join
	run := start(ctx, New(env.log, env.st, env.bus, cfg), env.tb)
	waitUntil(ctx, t, "the letter committed", func() bool { return g.letterTxn("txl") != nil })
	run.stop(t)
	txn := g.letterTxn("txl")
	m, err := dlq.Decode(txn.recs[dlq.Topic("txl")][0].Value)
	if err != nil || string(m.GetLetter().Key) != "big" {
		t.Fatalf("letter %v, %v", m, err)
	}
	if off := txn.offsets[intent.Topic("txl")][0]; off < 2 {
		t.Fatalf("the letter's transaction commits offset %d: not past its intent (offset 1)", off)
	}
}

// timedGroup records when each transaction started and what it carried.
type timedGroup struct {
	fakeGroup
	mu    sync.Mutex
	start time.Time
	at    []time.Duration
	recs  []int
}

func (g *timedGroup) Transact(ctx context.Context, shard int, recs map[string][]*intentlog.Record, offsets map[string]map[int32]int64) error {
	g.mu.Lock()
	g.at = append(g.at, time.Since(g.start))
	g.recs = append(g.recs, len(recs["ev"]))
	g.mu.Unlock()
	return nil
}

// TestPumpLinger: with a linger, a transaction starts no sooner than the
// linger after the previous one started, and carries everything that
// queued meanwhile; after a quiet spell, the next starts at once. Without
// one, each request that finds the pump idle gets its own transaction.
func TestPumpLinger(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		linger   time.Duration
		wantAt   []time.Duration
		wantRecs []int
	}{
		{100 * time.Millisecond, []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond}, []int{1, 2, 1}},
		{0, []time.Duration{0, 10 * time.Millisecond, 20 * time.Millisecond, 300 * time.Millisecond}, []int{1, 1, 1, 1}},
	} {
		t.Run(fmt.Sprint(tc.linger), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := &timedGroup{start: time.Now()}
				m := NewMetrics(nil)
				p := newPump(g, 0, tc.linger, m.transactions)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				go p.run(ctx)
				live := make(chan struct{})
				send := func(k string, part int32) {
					go func() {
						rq := &txnRequest{recs: map[string][]*intentlog.Record{"ev": {{Key: []byte(k)}}}, topic: "in", part: part, offset: 1, done: live}
						if err := p.do(ctx, rq); err != nil {
							t.Errorf("request %s: %v", k, err)
						}
					}()
				}
				send("a", 0)
				time.Sleep(10 * time.Millisecond)
				send("b", 1)
				time.Sleep(10 * time.Millisecond)
				send("c", 2)
				time.Sleep(280 * time.Millisecond)
				send("d", 3)
				time.Sleep(time.Second)
				synctest.Wait()
				g.mu.Lock()
				defer g.mu.Unlock()
				if fmt.Sprint(g.at) != fmt.Sprint(tc.wantAt) || fmt.Sprint(g.recs) != fmt.Sprint(tc.wantRecs) {
					t.Errorf("transactions at %v carrying %v records; want at %v carrying %v", g.at, g.recs, tc.wantAt, tc.wantRecs)
				}
				if n := testutil.ToFloat64(m.transactions); n != float64(len(tc.wantAt)) {
					t.Errorf("wail_resolver_transactions_total %v, want %d", n, len(tc.wantAt))
				}
			})
		})
	}
}

// sizeGroup records how many loop requests (one partition each) each
// transaction carried; with gate set, the first transaction waits for it.
type sizeGroup struct {
	fakeGroup
	mu    sync.Mutex
	gate  chan struct{}
	sizes []int
}

func (g *sizeGroup) Transact(_ context.Context, _ int, _ map[string][]*intentlog.Record, offsets map[string]map[int32]int64) error {
	g.mu.Lock()
	g.sizes = append(g.sizes, len(offsets["in"]))
	first := len(g.sizes) == 1
	g.mu.Unlock()
	if first && g.gate != nil {
		<-g.gate
	}
	return nil
}

// TestPumpBatchBound: a transaction carries at most maxTxnRequests loop
// requests, whether they queued while the previous transaction ran or
// during the linger.
func TestPumpBatchBound(t *testing.T) {
	t.Parallel()
	const more = 2*maxTxnRequests + 88
	for _, linger := range []time.Duration{0, 100 * time.Millisecond} {
		t.Run(fmt.Sprint(linger), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := &sizeGroup{}
				if linger == 0 {
					g.gate = make(chan struct{}) // the requests queue behind the first transaction
				}
				p := newPump(g, 0, linger, NewMetrics(nil).transactions)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				go p.run(ctx)
				live := make(chan struct{})
				var wg sync.WaitGroup
				send := func(part int32) {
					wg.Go(func() {
						if err := p.do(ctx, &txnRequest{topic: "in", part: part, offset: 1, done: live}); err != nil {
							t.Errorf("request %d: %v", part, err)
						}
					})
				}
				send(0)
				synctest.Wait() // the first transaction runs (or ran: the linger starts)
				for i := range more {
					send(int32(i + 1))
				}
				synctest.Wait() // every request queued or waits to
				if g.gate != nil {
					close(g.gate)
				}
				wg.Wait()
				g.mu.Lock()
				defer g.mu.Unlock()
				total, largest := 0, 0
				for _, n := range g.sizes {
					total += n
					largest = max(largest, n)
				}
				if total != more+1 || largest != maxTxnRequests {
					t.Fatalf("transactions of %v requests: %d in all, the largest %d; want %d, %d", g.sizes, total, largest, more+1, maxTxnRequests)
				}
			})
		})
	}
}

// flakyMemberGroup is one membership: its transactions fail with an
// unknown outcome while failing is set, else commit; Close records how
// long it was given.
type flakyMemberGroup struct {
	eagerGroup
	failing bool
	closeIn chan time.Duration
}

func (g *flakyMemberGroup) Shards() int { return 1 }
func (g *flakyMemberGroup) Transact(ctx context.Context, shard int, recs map[string][]*intentlog.Record, offsets map[string]map[int32]int64) error {
	if g.failing {
		return errors.New("the coordinator stopped answering: outcome unknown")
	}
	return g.eagerGroup.Transact(ctx, shard, recs, offsets)
}

func (g *flakyMemberGroup) Close(ctx context.Context) error {
	d := time.Duration(-1)
	if dl, ok := ctx.Deadline(); ok {
		d = time.Until(dl)
	}
	g.closeIn <- d
	return nil
}

// TestMemberRejoins: a transaction whose outcome is unknown ends the
// membership: the member leaves the group (given time to say so) and
// joins again, and the new membership resolves the intent.
func TestMemberRejoins(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := newTestEnv(ctx, t, "rejoin")
	env.write(ctx, t, "k", 1, "one")
	closeIn := make(chan time.Duration, 2)
	var mu sync.Mutex
	var groups []*flakyMemberGroup
	join := func(topics []string, assigned, _ func(map[string][]int32)) (Group, error) {
		mu.Lock()
		defer mu.Unlock()
		g := &flakyMemberGroup{eagerGroup: eagerGroup{offsets: map[int32]int64{}}, failing: len(groups) == 0, closeIn: closeIn}
		groups = append(groups, g)
		assigned(map[string][]int32{topics[0]: {0}})
		return g, nil
	}
	logger, logs := testLogger()
	cfg := testConfig(logger, nil)
	cfg.Join = join
	run := start(ctx, New(env.log, env.st, env.bus, cfg), env.tb)
	second := func() *flakyMemberGroup {
		mu.Lock()
		defer mu.Unlock()
		if len(groups) < 2 {
			return nil
		}
		return groups[1]
	}
	waitUntil(ctx, t, "a second membership resolved the intent", func() bool { g := second(); return g != nil && g.committed() == 1 })
	select {
	case d := <-closeIn:
		if d < 5*time.Second {
			t.Fatalf("the failed membership left the group with %v to do it, want about 10s", d)
		}
	case <-ctx.Done():
		t.Fatal("the failed membership never left the group")
	}
	if !strings.Contains(logs.String(), "joining again") {
		t.Fatalf("the member's failure is not logged:\n%s", logs)
	}
	run.stop(t)
}
