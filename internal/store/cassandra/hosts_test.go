package cassandra

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gocql/gocql"
)

// hostIn is a node of data center dc, up (the driver's HostInfo has no
// setter for the data center).
func hostIn(addr, dc string) *gocql.HostInfo {
	h := (&gocql.HostInfo{}).SetConnectAddress(net.ParseIP(addr))
	h.SetHostID("id-" + addr)
	f := reflect.ValueOf(h).Elem().FieldByName("dataCenter")
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().SetString(dc)
	return h
}

// TestRequestsStayInTheLocalDC: a request never goes to a coordinator of
// another data center, not even when the local nodes cannot take it (down,
// no connection: the driver goes down the plan). LOCAL_QUORUM and
// LOCAL_ONE count the replicas of the coordinator's data center: through
// a remote coordinator a write would be acknowledged by the other data
// center's replicas only, and a read would consult only those, which
// miss what a local quorum acknowledged (Open checks the levels'
// overlap in the local data center). Only a query pinned to a node (onHost:
// Nodes asks every node) goes to another data center.
func TestRequestsStayInTheLocalDC(t *testing.T) {
	local1, local2, remote := hostIn("10.0.0.1", "dc1"), hostIn("10.0.0.2", "dc1"), hostIn("10.0.1.1", "dc2")
	p := newHostPolicy("dc1", "ks")
	// The token-aware policy needs a session; its fallback, which the
	// plan ends with, is where other data centers come in.
	p.HostSelectionPolicy = gocql.DCAwareRoundRobinPolicy("dc1")
	for _, h := range []*gocql.HostInfo{local1, remote, local2} {
		p.AddHost(h)
	}
	for range 3 { // the round robin starts at another host each time
		next := p.Pick(nil)
		var got []string
		for h := next(); h != nil; h = next() {
			got = append(got, h.Info().ConnectAddress().String()+"/"+h.Info().DataCenter())
			if h.Info().DataCenter() != "dc1" {
				t.Fatalf("the plan %v goes to another data center", got)
			}
		}
		if len(got) != 2 {
			t.Fatalf("the plan %v, want both local nodes", got)
		}
	}
	next := p.Pick((&gocql.Query{}).WithContext(onHost(context.Background(), remote)))
	if h := next(); h == nil || h.Info() != remote || next() != nil {
		t.Fatalf("a query pinned to a node of dc2 does not go (only) to it")
	}
	if len(p.known()) != 3 {
		t.Fatalf("known %d nodes, want every node of every data center (Nodes, limits)", len(p.known()))
	}
}

// TestProbedLocalDCNeedsOneDC: with local_dc empty, the data center is the
// one of the contact point that answers the probe first, which the driver
// picks at random (12 Opens of the test cluster were answered by all three
// nodes): with nodes in several data centers, processes of one
// configuration, or one process from one start to the next, would take
// different data centers, and their LOCAL_QUORUM writes and reads count
// different replicas, so a resolver could miss acknowledged writes (the
// overlap Open checks holds within one data center). Open refuses it,
// naming the data centers; one data center, or local_dc set, is fine.
func TestProbedLocalDCNeedsOneDC(t *testing.T) {
	p := newHostPolicy("dc1", "ks")
	p.HostSelectionPolicy = gocql.DCAwareRoundRobinPolicy("dc1")
	p.AddHost(hostIn("10.0.0.1", "dc1"))
	if err := p.checkLocalDC(true); err != nil {
		t.Fatalf("one data center, probed: %v", err)
	}
	p.AddHost(hostIn("10.0.1.1", "dc2"))
	if err := p.checkLocalDC(false); err != nil {
		t.Fatalf("two data centers, local_dc set: %v", err)
	}
	err := p.checkLocalDC(true)
	if err == nil || !strings.Contains(err.Error(), "local_dc") || !strings.Contains(err.Error(), "dc1, dc2") {
		t.Fatalf("two data centers, local_dc probed: %v; want a refusal naming local_dc and both data centers", err)
	}
}

// TestPlansKnowTheKeyspaceReplicas: the driver computes the replicas of
// a keyspace's tokens on its own only for the session's keyspace, which a
// store never sets (it makes its keyspace after connecting, and names it
// in every statement), or when it sees the keyspace made: for a store
// opened on a keyspace that existed, a key's plan began with its primary
// replica alone, every time, then went on in the data center's round
// robin. So a statement tried again (a Paxos read after its attempt
// timed out) went back to that replica: with it stalled, every
// generation read of a table whose row it held failed
// (TestFirstReadsDuringAStall failed on the cluster of a CI run). And
// the replicas the driver computes (NetworkTopologyStrategy, one rack)
// may name a node twice, so a plan did too: a read sent on to the next
// node of its plan went to the one that failed it, and missed a replica:
// each of these keys started at two nodes only. With replication 3 on
// three nodes every node is a replica of every key: plans start at each
// of them, and name each node once. The store places keys by Cassandra's
// tokens (TestMurmur3Token): a key's is the node's.
func TestPlansKnowTheKeyspaceReplicas(t *testing.T) {
	opts := testOptions(t)
	openTest(t, opts) // makes the keyspace
	s := openTest(t, opts)
	var token int64
	if err := s.session.Query("SELECT token(key) FROM system.local").WithContext(t.Context()).Scan(&token); err != nil {
		t.Fatal(err)
	}
	if got := murmur3Token([]byte("local")); got != token {
		t.Errorf("the token of %q is %d, Cassandra's %d", "local", got, token)
	}
	for _, key := range []string{"first0", "first1", "first2", "k"} {
		starts := map[string]int{}
		for range 60 {
			next := s.policy.Pick(s.session.Query("SELECT 1").WithContext(withKey(t.Context(), []byte(key))))
			var plan []string
			for h := next(); h != nil; h = next() {
				plan = append(plan, h.Info().ConnectAddress().String())
			}
			if len(plan) != 3 || plan[0] == plan[1] || plan[1] == plan[2] || plan[0] == plan[2] {
				t.Fatalf("key %q: plan %v; want each of the three nodes once", key, plan)
			}
			starts[plan[0]]++
		}
		if len(starts) < 3 {
			t.Errorf("key %q: 60 plans started at %v; want them spread over its replicas, every node", key, starts)
		}
	}
}

// TestTriedNodesGoLast: an operation tried again (paxos) starts at a node
// its attempts before were not sent to, and a plan names a node once even
// when the driver's plan names it twice.
func TestTriedNodesGoLast(t *testing.T) {
	a, b, c := hostIn("10.0.0.1", "dc1"), hostIn("10.0.0.2", "dc1"), hostIn("10.0.0.3", "dc1")
	plan := func(hs ...*gocql.HostInfo) gocql.NextHost {
		i := 0
		return func() gocql.SelectedHost {
			if i == len(hs) {
				return nil
			}
			i++
			return pinned{hs[i-1]}
		}
	}
	names := func(next gocql.NextHost, n int) (out []string) {
		for range n {
			if h := next(); h != nil {
				out = append(out, h.Info().ConnectAddress().String())
			}
		}
		return out
	}
	if got := names(distinct(plan(c, c, a, c, b)), 5); strings.Join(got, " ") != "10.0.0.3 10.0.0.1 10.0.0.2" {
		t.Fatalf("distinct plan: %v", got)
	}
	tr := withTried(context.Background()).Value(triedKey{}).(*tried)
	if got := names(tr.plan(plan(c, a, b)), 1); got[0] != "10.0.0.3" {
		t.Fatalf("first attempt at %v, want the plan's first node", got)
	}
	if got := names(tr.plan(plan(c, a, b)), 3); strings.Join(got, " ") != "10.0.0.1 10.0.0.2 10.0.0.3" {
		t.Fatalf("second attempt's plan %v; want the node tried last", got)
	}
	if got := names(tr.plan(plan(c, b, a)), 3); strings.Join(got, " ") != "10.0.0.3 10.0.0.2 10.0.0.1" {
		t.Fatalf("third attempt's plan %v (every node tried): want the plan as it is", got)
	}
}

// setRack moves h to rack.
func setRack(h *gocql.HostInfo, rack string) {
	f := reflect.ValueOf(h).Elem().FieldByName("rack")
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().SetString(rack)
}

// ringHost is a node of data center dc1, rack r1, up, holding tokens
// (Murmur3).
func ringHost(addr string, tokens []string) *gocql.HostInfo {
	h := hostIn(addr, "dc1")
	v := reflect.ValueOf(h).Elem()
	for name, val := range map[string]any{"rack": "r1", "tokens": tokens} {
		f := v.FieldByName(name)
		reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.ValueOf(val))
	}
	return h
}

// schema answers the driver's and the policy's questions about the
// keyspace's replication (NetworkTopologyStrategy, dc1: 3), as a session's
// KeyspaceMetadata does, or fails as it does when its query fails (the
// control connection down, a timeout) while down is set.
type schema struct {
	down  atomic.Bool
	calls atomic.Int64
}

func (s *schema) meta(ks string) (*gocql.KeyspaceMetadata, error) {
	if ks == "" {
		return nil, gocql.ErrNoKeyspace
	}
	s.calls.Add(1)
	if s.down.Load() {
		return nil, errors.New("gocql: no response received from cassandra within timeout period")
	}
	return &gocql.KeyspaceMetadata{Name: ks, StrategyClass: "org.apache.cassandra.locator.NetworkTopologyStrategy",
		StrategyOptions: map[string]any{"dc1": "3"}}, nil
}

// ringPolicy is the policy of a store on keyspace "ks" as a session sets
// it up (its hosts, its partitioner), without a cluster: the driver's
// token-aware policy asks sc for the keyspace's replication. It returns
// nodes 10.0.0.1 to 10.0.0.n, 16 tokens each (random, seeded), one rack,
// of which the policy knows the first three. The replicas are not
// learned yet.
func ringPolicy(t *testing.T, n int, sc *schema) (*hostPolicy, []*gocql.HostInfo) {
	t.Helper()
	p := newHostPolicy("dc1", "ks")
	p.meta = sc.meta
	p.retry = [2]time.Duration{time.Millisecond, 10 * time.Millisecond}
	p.log = quiet
	inner := reflect.ValueOf(p.HostSelectionPolicy).Elem()
	for name, val := range map[string]any{
		"getKeyspaceMetadata": sc.meta,
		"getKeyspaceName":     func() string { return "" }, // a store sets no keyspace on its session
		"logger":              log.New(io.Discard, "", 0),
	} {
		f := inner.FieldByName(name)
		reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.ValueOf(val))
	}
	r := rand.New(rand.NewPCG(1, 2))
	var hosts []*gocql.HostInfo
	for i := range n {
		var tokens []string
		for range 16 {
			tokens = append(tokens, strconv.FormatInt(int64(r.Uint64()), 10))
		}
		hosts = append(hosts, ringHost(fmt.Sprintf("10.0.0.%d", i+1), tokens))
	}
	for _, h := range hosts[:min(n, 3)] {
		p.AddHost(h)
	}
	p.SetPartitioner("org.apache.cassandra.dht.Murmur3Partitioner")
	t.Cleanup(p.stopLearning)
	return p, hosts
}

// starts counts the first nodes of the plans of key: 600 plans.
func starts(p *hostPolicy, key string) map[string]int {
	out := map[string]int{}
	for range 600 {
		next := p.Pick((&gocql.Query{}).WithContext(withKey(context.Background(), []byte(key))))
		out[next().Info().ConnectAddress().String()]++
	}
	return out
}

// spread is how many of the keys' plans start at more than one node.
func spread(p *hostPolicy, keys int) int {
	n := 0
	for i := range keys {
		if len(starts(p, fmt.Sprint("key", i))) > 1 {
			n++
		}
	}
	return n
}

// TestReplicasOutliveAFailedLearn: the driver drops a keyspace's replicas
// when it cannot read the keyspace's replication (the control connection
// down or timing out): when a node joins or leaves, the store has it
// learn them again, and while that failed every plan of a key started at
// its primary replica, for every key, until the next node event (the
// reads of a key piled on one node; with it stalled, every first attempt
// failed). The replicas learned before stay until they are learned again.
func TestReplicasOutliveAFailedLearn(t *testing.T) {
	sc := &schema{}
	p, hosts := ringPolicy(t, 4, sc)
	p.murmur.Store(false) // the driver's replicas: the store does not place keys itself (TestPlacementNeedsNoSchemaRead)
	p.learnReplicas()
	if n := spread(p, 20); n < 18 {
		t.Fatalf("replicas learned: the plans of %d keys of 20 start at more than one node, want most", n)
	}
	sc.down.Store(true)
	p.AddHost(hosts[3]) // a node joins while the schema cannot be read
	time.Sleep(50 * time.Millisecond)
	if n := spread(p, 20); n < 18 {
		t.Errorf("after a failed learn: the plans of %d keys of 20 start at more than one node; want the replicas kept", n)
	}
	sc.down.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		// learned again with the new node: it is a replica of some keys
		n := 0
		for i := range 40 {
			if starts(p, fmt.Sprint("key", i))[hosts[3].ConnectAddress().String()] > 0 {
				n++
			}
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node that joined during the failure starts no plan of 40 keys 5 s after the schema answers again")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplicasLearnedAgainAfterAFailure: a learn that failed (at Open, or
// after a node event) is tried again with backoff, not only at the next
// node event, which may never come: until then every plan of a key
// started at its primary replica.
func TestReplicasLearnedAgainAfterAFailure(t *testing.T) {
	sc := &schema{}
	sc.down.Store(true)
	p, _ := ringPolicy(t, 3, sc)
	p.learnReplicas()
	if n := spread(p, 10); n != 0 {
		t.Fatalf("replicas never learned: the plans of %d keys of 10 start at more than one node, want none (the driver's primary replica)", n)
	}
	sc.down.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for spread(p, 10) < 9 {
		if time.Now().After(deadline) {
			t.Fatalf("the replicas are not learned 5 s after the schema answers again: the plans of %d keys of 10 start at more than one node", spread(p, 10))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplicaLearningStopsAtClose: the retries of a failing learn end
// when the store closes, leaving no goroutine and asking nothing after.
func TestReplicaLearningStopsAtClose(t *testing.T) {
	before := runtime.NumGoroutine()
	sc := &schema{}
	sc.down.Store(true)
	p, _ := ringPolicy(t, 3, sc)
	p.learnReplicas()
	for deadline := time.Now().Add(2 * time.Second); sc.calls.Load() < 5; time.Sleep(time.Millisecond) { // retrying
		if time.Now().After(deadline) {
			t.Fatalf("the keyspace's replication was read %d times in 2 s of failures; want retries", sc.calls.Load())
		}
	}
	p.stopLearning()
	calls := sc.calls.Load()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after stopLearning, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
	time.Sleep(50 * time.Millisecond)
	if c := sc.calls.Load(); c != calls {
		t.Errorf("the schema was asked %d times after stopLearning returned", c-calls)
	}
	p.stopLearning() // again: nothing
}

// TestPlansStartEvenlyAtAKeysReplicas: the plans of a key start at each
// of its replicas equally often: with replication 3 on three nodes, at
// each node. The driver's replicas (NetworkTopologyStrategy with fewer
// racks than replicas) name a node once per token of it they meet on the
// ring, [A A B]: shuffled, then with the second A dropped, A started two
// plans in three, B one, C none. Where the store cannot place keys
// itself (another partitioner than Murmur3Partitioner), the plans start
// evenly at the driver's replicas, each once.
func TestPlansStartEvenlyAtAKeysReplicas(t *testing.T) {
	for _, placed := range []bool{true, false} {
		t.Run(fmt.Sprint("placed=", placed), func(t *testing.T) {
			p, _ := ringPolicy(t, 3, &schema{})
			p.learnReplicas()
			p.murmur.Store(placed)
			total := map[string]int{}
			skewed := 0
			const keys = 200
			for i := range keys {
				key := fmt.Sprint("key", i)
				s := starts(p, key)
				for _, c := range s {
					// Within half of an even share: the count of a node of
					// three is 200 +- 11.5 (binomial), so a fifth (3.5
					// sigma, of 600 counts) failed one run in six; the
					// skew caught is 400/200/0.
					if want := 600 / len(s); c < want/2 || c > want*3/2 || placed && len(s) != 3 {
						skewed++
						if skewed <= 3 {
							t.Logf("key %q: 600 plans started at %v", key, s)
						}
						break
					}
				}
				for h, c := range s {
					total[h] += c
				}
			}
			t.Logf("first nodes of %d plans of %d keys: %v", 600*keys, keys, total)
			if skewed > 0 {
				t.Errorf("the plans of %d keys of %d do not start at each of the key's replicas equally often", skewed, keys)
			}
		})
	}
}
