package cassandra

import (
	"context"
	"net"
	"reflect"
	"strings"
	"testing"
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
// node of its plan went to the one that failed it. With replication 3
// on three nodes every node is a replica of every key: plans start at
// more than one of them, and name each node once.
func TestPlansKnowTheKeyspaceReplicas(t *testing.T) {
	opts := testOptions(t)
	openTest(t, opts) // makes the keyspace
	s := openTest(t, opts)
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
		if len(starts) < 2 {
			t.Errorf("key %q: 60 plans started at %v; want them spread over its replicas", key, starts)
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
