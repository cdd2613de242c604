package cassandra

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gocql/gocql"
)

// drain is the plan next names, up to 20 nodes.
func drain(next gocql.NextHost) (out []*gocql.HostInfo) {
	for h := next(); h != nil && len(out) < 20; h = next() {
		out = append(out, h.Info())
	}
	return out
}

// planOf is a plan that names hs, then ends.
func planOf(hs ...*gocql.HostInfo) gocql.NextHost {
	i := 0
	return func() gocql.SelectedHost {
		if i == len(hs) {
			return nil
		}
		i++
		return pinned{hs[i-1]}
	}
}

func keyPlan(p *hostPolicy, key string) []*gocql.HostInfo {
	return drain(p.Pick((&gocql.Query{}).WithContext(withKey(context.Background(), []byte(key)))))
}

// TestPlanOfAKey: a key's plan names its replicas first, as placed, each
// once, then the data center's other nodes, each once, and ends. A plan
// without a routing key is the data center's round robin, starting at
// every node in turn; a replica that is down starts no plan.
func TestPlanOfAKey(t *testing.T) {
	p, hosts := ringPolicy(t, 4, &schema{})
	p.AddHost(hosts[3])
	p.learnReplicas()
	r := p.ring.Load()
	for i := range 50 {
		key := fmt.Sprint("key", i)
		plan, want := keyPlan(p, key), r.replicas([]byte(key), Replication{"dc1": 3}, "dc1")
		if len(plan) != 4 || len(uniq(plan)) != 4 || !sameSet(plan[:3], want) {
			t.Fatalf("key %q: plan %v; want its replicas %v, then the other node, each once", key, addrs(plan), addrs(want))
		}
	}
	first := map[*gocql.HostInfo]int{}
	for range 40 {
		plan := drain(p.Pick((&gocql.Query{}).WithContext(context.Background())))
		if len(plan) != 4 || len(uniq(plan)) != 4 {
			t.Fatalf("plan without a routing key %v; want every node once", addrs(plan))
		}
		first[plan[0]]++
	}
	if len(first) != 4 {
		t.Errorf("plans without a routing key start at %d nodes of 4, want each in turn", len(first))
	}

	down := hosts[1]
	f := reflect.ValueOf(down).Elem().FieldByName("state")
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().SetInt(int64(gocql.NodeDown))
	for i := range 50 {
		key := fmt.Sprint("key", i)
		for range 20 {
			if plan := keyPlan(p, key); len(plan) > 0 && plan[0] == down {
				t.Fatalf("key %q: a plan starts at %s, which is down", key, down.ConnectAddress())
			}
		}
	}
}

// TestEvenly: the token-aware policy's plan, its replicas then the mark
// then its round robin, goes on after the replicas placed (shuffled) with
// the driver's replicas and its round robin as they are; without replicas
// placed, with the driver's replicas once each (shuffled) and its round
// robin. A plan without the mark passes as it is.
func TestEvenly(t *testing.T) {
	a, b, c, d := hostIn("10.0.0.1", "dc1"), hostIn("10.0.0.2", "dc1"), hostIn("10.0.0.3", "dc1"), hostIn("10.0.0.4", "dc1")
	pq := []*gocql.HostInfo{hostIn("10.0.0.8", "dc1"), hostIn("10.0.0.9", "dc1")}
	if got := drain(evenly(pq, true, planOf(a, b, a))); !slices.Equal(got, []*gocql.HostInfo{a, b, a}) {
		t.Errorf("a plan without the mark: %v, want it as it is", addrs(got))
	}
	starts := map[*gocql.HostInfo]int{}
	for range 100 {
		got := drain(evenly(nil, false, planOf(a, a, b, replicasEnd, c, d)))
		if len(got) != 4 || !sameSet(got[:2], []*gocql.HostInfo{a, b}) || got[2] != c || got[3] != d {
			t.Fatalf("the driver's replicas [A A B]: plan %v; want A and B once each, then C, D", addrs(got))
		}
		starts[got[0]]++
		got = drain(evenly(pq, true, planOf(a, a, b, replicasEnd, c)))
		if len(got) != 6 || !sameSet(got[:2], pq) || !slices.Equal(got[2:], []*gocql.HostInfo{a, a, b, c}) {
			t.Fatalf("replicas placed: plan %v; want them, then the driver's plan", addrs(got))
		}
		starts[got[0]]++
	}
	if len(starts) != 4 {
		t.Errorf("plans start at %v; want each replica in turn", starts)
	}
}

// TestPlacementFollowsTheNodes: the store places keys only under
// Murmur3Partitioner (under another, the driver's replicas: a key's plans
// start at those alone); not on a node that left; nor where no node told
// its tokens.
func TestPlacementFollowsTheNodes(t *testing.T) {
	random, _ := ringPolicy(t, 3, &schema{})
	random.setReplication(Replication{"dc1": 3})
	random.SetPartitioner("org.apache.cassandra.dht.RandomPartitioner")
	if _, ok := random.placed([]byte("k")); ok {
		t.Errorf("keys placed under RandomPartitioner")
	}
	p, hosts := ringPolicy(t, 4, &schema{})
	p.AddHost(hosts[3])
	p.learnReplicas()
	p.murmur.Store(false) // the ring's tokens are Murmur3's: the driver's placement is the same, with [A A B]
	for i := range 30 {
		key := fmt.Sprint("key", i)
		want := uniq(driverPlan(p, key))
		for h := range starts(p, key) {
			if !slices.ContainsFunc(want, func(w *gocql.HostInfo) bool { return w.ConnectAddress().String() == h }) {
				t.Fatalf("key %q: a plan starts at %s, not one of the driver's replicas %v", key, h, addrs(want))
			}
		}
	}
	gone := hosts[2]
	p.RemoveHost(gone) // learned again (the driver's replicas)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		n := 0
		for i := range 30 {
			n += starts(p, fmt.Sprint("key", i))[gone.ConnectAddress().String()]
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the driver's replicas: %d plans start at the node that left, 5 s after", n)
		}
	}
	p.murmur.Store(true)
	for i := range 30 {
		if n := starts(p, fmt.Sprint("key", i))[gone.ConnectAddress().String()]; n > 0 {
			t.Fatalf("placed: %d plans start at the node that left", n)
		}
	}

	q, _ := ringPolicy(t, 0, &schema{})
	q.AddHost(hostIn("10.0.1.1", "dc1")) // no tokens told
	q.setReplication(Replication{"dc1": 3})
	if hs, ok := q.placed([]byte("k")); ok {
		t.Errorf("no tokens: placed on %v, want the driver's plan", addrs(hs))
	}
}

// TestKeyspaceChangedLearns: a change of the store's keyspace has the
// replicas learned again: by the driver before learnReplicas ran, by the
// learner after, which keeps them when the replication cannot be read
// (the driver drops them then). Another keyspace's change is the
// driver's.
func TestKeyspaceChangedLearns(t *testing.T) {
	sc := &schema{}
	p, _ := ringPolicy(t, 4, sc)
	p.murmur.Store(false) // the driver's replicas
	ev := gocql.KeyspaceUpdateEvent{Keyspace: "ks", Change: "UPDATED"}
	p.KeyspaceChanged(ev)
	if n := spread(p, 10); n < 9 {
		t.Fatalf("the keyspace changed before learnReplicas: the plans of %d keys of 10 start at more than one node; want the driver's replicas learned", n)
	}
	p.learnReplicas()
	var own atomic.Int64 // the learner's reads
	p.meta = func(ks string) (*gocql.KeyspaceMetadata, error) { own.Add(1); return sc.meta(ks) }
	p.KeyspaceChanged(gocql.KeyspaceUpdateEvent{Keyspace: "other", Change: "UPDATED"})
	time.Sleep(20 * time.Millisecond)
	if n := own.Load(); n != 0 {
		t.Errorf("another keyspace changed: the learner read the replication %d times, want none (the driver's business)", n)
	}
	sc.down.Store(true)
	p.KeyspaceChanged(ev)
	time.Sleep(20 * time.Millisecond)
	if n := spread(p, 10); n < 9 {
		t.Errorf("the keyspace changed while its replication cannot be read: the plans of %d keys of 10 start at more than one node; want the replicas kept", n)
	}
}

// TestLearnFailsWhenTheDriverCannotRead: a learn fails when the driver's
// own read of the replication does (its cache emptied between the two
// reads), so the learner tries again.
func TestLearnFailsWhenTheDriverCannotRead(t *testing.T) {
	sc := &schema{}
	p, _ := ringPolicy(t, 3, sc)
	n := 0
	p.meta = func(ks string) (*gocql.KeyspaceMetadata, error) {
		if n++; n > 1 {
			sc.down.Store(true)
		}
		return sc.meta(ks)
	}
	if err := p.learn(); err == nil {
		t.Errorf("learn: no error, the second read failing")
	}
}

// TestOneLearnerReadsWhenAsked: the learner reads the replication only
// when asked (a node event, the keyspace changed) or retrying: node
// events before learnReplicas leave nothing to do after. One learner
// runs, whatever the calls; none after stopLearning, nor when it came
// first.
func TestOneLearnerReadsWhenAsked(t *testing.T) {
	before := runtime.NumGoroutine()
	sc := &schema{}
	p, hosts := ringPolicy(t, 4, sc) // three AddHosts
	p.learnReplicas()
	p.learnReplicas()
	time.Sleep(30 * time.Millisecond)
	if c := sc.calls.Load(); c != 3 { // a learn's reads: its own, the driver's, its own
		t.Errorf("the replication read %d times after learnReplicas, twice, with no node event; want 3", c)
	}
	p.AddHost(hosts[3])
	for deadline := time.Now().Add(2 * time.Second); sc.calls.Load() < 6; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a node joined: the replication read %d times in all, want 6", sc.calls.Load())
		}
	}
	p.stopLearning()
	p.learnReplicas()
	time.Sleep(30 * time.Millisecond)
	if c := sc.calls.Load(); c != 6 {
		t.Errorf("learnReplicas after stopLearning: the replication read %d times in all, want 6", c)
	}
	if n := numGoroutine(before); n > before {
		t.Errorf("%d goroutines, %d before", n, before)
	}

	q, _ := ringPolicy(t, 3, sc)
	q.stopLearning()
	q.learnReplicas()
	if q.stop != nil || q.learning.Load() {
		t.Errorf("learnReplicas after stopLearning started a learner")
	}
}

// numGoroutine is the number of goroutines once it is at most n, or
// after a second.
func numGoroutine(n int) int {
	m := runtime.NumGoroutine()
	for deadline := time.Now().Add(time.Second); m > n && time.Now().Before(deadline); m = runtime.NumGoroutine() {
		time.Sleep(5 * time.Millisecond)
	}
	return m
}

// logged records what a logger logs.
type logged struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logged) Enabled(context.Context, slog.Level) bool { return true }
func (l *logged) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Level.String()+" "+r.Message)
	l.mu.Unlock()
	return nil
}
func (l *logged) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logged) WithGroup(string) slog.Handler      { return l }
func (l *logged) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.msgs
	l.msgs = nil
	return out
}

// times records when the replication was read.
type times struct {
	*schema
	mu sync.Mutex
	at []time.Time
}

func (s *times) meta(ks string) (*gocql.KeyspaceMetadata, error) {
	s.mu.Lock()
	s.at = append(s.at, time.Now())
	s.mu.Unlock()
	return s.schema.meta(ks)
}

func (s *times) reads() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.at)
}

// TestBackoffStep: a retry waits from half of the backoff to all of it,
// drawn at random; the backoff doubles, up to its most.
func TestBackoffStep(t *testing.T) {
	for _, c := range [][3]time.Duration{{10, 100, 20}, {60, 100, 100}, {100, 100, 100}, {time.Second, 30 * time.Second, 2 * time.Second}} {
		low, high := false, false
		for range 1000 {
			wait, next := backoffStep(c[0], c[1])
			if wait < c[0]/2 || wait > c[0] || next != c[2] {
				t.Fatalf("backoffStep(%v, %v) = %v, %v; want a wait of %v to %v, then %v", c[0], c[1], wait, next, c[0]/2, c[0], c[2])
			}
			low, high = low || wait < c[0]*6/10, high || wait > c[0]*9/10
		}
		if !low || !high {
			t.Errorf("backoffStep(%v, %v): 1000 waits, none below 60%% (%v) or none above 90%% (%v): want them drawn over half to all", c[0], c[1], !low, !high)
		}
	}
}

// TestLearnerBacksOff: a failing learn is tried again after retry[0] (a
// wait of half to all of it), then backing off (TestBackoffStep); a
// learn asked for meanwhile goes at once. A warning when the failures
// start, a note when a learn succeeds again, nothing for learns that
// succeed else; after a success the backoff starts over, and the retry
// that was due is dropped. (Timers fire late on a loaded machine, never
// early: each bound has a wide margin.)
func TestLearnerBacksOff(t *testing.T) {
	sc := &times{schema: &schema{}}
	p, hosts := ringPolicy(t, 4, sc.schema)
	p.meta = sc.meta
	log := &logged{}
	p.log = slog.New(log)
	p.retry = [2]time.Duration{20 * time.Millisecond, time.Hour}
	// reads waits for n reads more than there were at mark.
	var base int
	mark := func() { base = len(sc.reads()) }
	reads := func(n int, within time.Duration, what string) {
		t.Helper()
		for deadline := time.Now().Add(within); len(sc.reads()) < base+n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d reads of the replication in %v, want %d", what, len(sc.reads())-base, within, n)
			}
		}
	}
	warned := func(what string, want ...string) {
		t.Helper()
		if got := log.take(); !slices.Equal(got, want) {
			t.Errorf("%s: logged %q, want %q", what, got, want)
		}
	}
	p.learnReplicas()
	p.AddHost(hosts[3])                      // learned again
	reads(4, 2*time.Second, "a node joined") // the learns' own reads, two each
	time.Sleep(30 * time.Millisecond)
	warned("learns that succeeded")

	// Failing (each learn is one read): retried after 10-20 ms, not an
	// hour; then asked for again and again, which doubles the backoff.
	sc.down.Store(true)
	mark()
	p.learnAgain()
	reads(2, time.Second, "failing: the first learn and its retry")
	for range 12 {
		mark()
		p.learnAgain()
		reads(1, time.Second, "failing, asked for again")
	}
	warned("failing", "WARN "+warnLearn)
	sc.down.Store(false)
	mark()
	p.learnAgain()
	reads(2, time.Second, "the replication read again")
	time.Sleep(30 * time.Millisecond)
	warned("learned again", "INFO read the Cassandra keyspace's replication again")

	// The backoff starts over: the retry comes after 10-20 ms again, not
	// after the 20 ms * 2^13 it had reached.
	sc.down.Store(true)
	mark()
	p.learnAgain()
	reads(2, time.Second, "failing again")
	warned("failing again", "WARN "+warnLearn)

	// A success drops the retry due: with retry[0] 400 ms, the learn
	// asked for at once succeeds, and no retry follows.
	tc := &times{schema: &schema{}}
	q, _ := ringPolicy(t, 3, tc.schema)
	q.meta = tc.meta
	q.retry = [2]time.Duration{400 * time.Millisecond, time.Hour}
	tc.down.Store(true)
	q.learnReplicas()
	tc.down.Store(false)
	q.learnAgain()
	for deadline := time.Now().Add(time.Second); len(tc.reads()) < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("learned again: %d reads, want 3", len(tc.reads()))
		}
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(tc.reads()); n != 3 {
		t.Errorf("%d reads after the learn succeeded, none asked for: want the retry that was due dropped", n-3)
	}
}

// TestLearnKeepsAReplicationItCannotParse: a keyspace replication the
// store does not know (another strategy class) leaves the one known
// before (Open's) in place.
func TestLearnKeepsAReplicationItCannotParse(t *testing.T) {
	p, _ := ringPolicy(t, 3, &schema{})
	p.setReplication(Replication{"dc1": 3})
	p.meta = func(ks string) (*gocql.KeyspaceMetadata, error) {
		return &gocql.KeyspaceMetadata{Name: ks, StrategyClass: "org.apache.cassandra.locator.EverywhereStrategy"}, nil
	}
	if err := p.learn(); err != nil {
		t.Fatal(err)
	}
	if r := p.replication.Load(); r == nil || !maps.Equal(*r, Replication{"dc1": 3}) {
		t.Errorf("replication %v after learning an unknown class, want the one before, dc1: 3", r)
	}
}
