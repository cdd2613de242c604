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
