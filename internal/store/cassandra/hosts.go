package cassandra

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gocql/gocql"
)

// hostPolicy is the driver's token-aware, data-center-aware host selection
// with three additions: it keeps the driver's view of every node (for
// Nodes); a query whose context names a node (onHost) goes to that node
// only: node-local tables such as system.local and system_views.settings
// are read node by node that way; and no other query goes to a node of
// another data center. The driver's data-center-aware policy ends its
// plans with the other data centers' nodes, which a request reaches when
// the local ones cannot take it (down, no connection, a read retried on
// the next node): LOCAL_QUORUM and LOCAL_ONE count the replicas of the
// coordinator's data center, so a write through a remote coordinator is
// acknowledged by that data center's replicas only, and a read there
// consults only those, missing what a local quorum acknowledged: the
// overlap Open checks holds in the local data center only.
type hostPolicy struct {
	gocql.HostSelectionPolicy
	localDC string // "": any
	ks      string // the keyspace of the queries' routing keys (routed)

	mu    sync.Mutex
	hosts map[string]*gocql.HostInfo // by host id

	replicas atomic.Bool // learnReplicas ran: keep the keyspace's replicas current as nodes come and go
}

func newHostPolicy(localDC, ks string) *hostPolicy {
	var fallback gocql.HostSelectionPolicy = gocql.RoundRobinHostPolicy()
	if localDC != "" {
		fallback = gocql.DCAwareRoundRobinPolicy(localDC)
	}
	return &hostPolicy{
		HostSelectionPolicy: gocql.TokenAwareHostPolicy(fallback, gocql.ShuffleReplicas()),
		localDC:             localDC,
		ks:                  ks,
		hosts:               map[string]*gocql.HostInfo{},
	}
}

func (p *hostPolicy) AddHost(h *gocql.HostInfo) {
	p.mu.Lock()
	p.hosts[h.HostID()] = h
	p.mu.Unlock()
	p.HostSelectionPolicy.AddHost(h)
	if p.replicas.Load() {
		p.learnReplicas()
	}
}

func (p *hostPolicy) RemoveHost(h *gocql.HostInfo) {
	p.mu.Lock()
	delete(p.hosts, h.HostID())
	p.mu.Unlock()
	p.HostSelectionPolicy.RemoveHost(h)
	if p.replicas.Load() {
		p.learnReplicas()
	}
}

// known returns the nodes the driver knows, by address.
func (p *hostPolicy) known() []*gocql.HostInfo {
	p.mu.Lock()
	out := make([]*gocql.HostInfo, 0, len(p.hosts))
	for _, h := range p.hosts {
		out = append(out, h)
	}
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ConnectAddress().String() < out[j].ConnectAddress().String() })
	return out
}

// checkLocalDC refuses a local data center that none of the nodes the
// driver may use is in (a typo in local_dc, or coordinators all in another
// data center): requests go to its nodes only, so every one would fail "no
// hosts available", which reads as an outage to wait out. probed: local_dc
// was not configured, the data center is the one a contact point named.
// With local_dc probed, the nodes must be in one data center: the probe
// asks whichever contact point the driver picks, at random, so processes
// of one configuration would take different data centers, and LOCAL_*
// writes and reads would count different replicas.
func (p *hostPolicy) checkLocalDC(probed bool) error {
	dcs := map[string]bool{}
	found := false
	for _, h := range p.known() {
		found = found || h.DataCenter() == p.localDC
		dcs[h.DataCenter()] = true
	}
	switch {
	case found && probed && len(dcs) > 1:
		return fmt.Errorf("local_dc is not set and the nodes it may use are in %s: set local_dc to this process's data center "+
			"(without it, each process would take the data center of the contact point that answered first)", strings.Join(slices.Sorted(maps.Keys(dcs)), ", "))
	case found:
		return nil
	}
	return fmt.Errorf("no node is in data center %q (local_dc), the only one requests go to: the nodes it may use (coordinators, when set) are in %s; "+
		"set local_dc to this process's data center", p.localDC, strings.Join(slices.Sorted(maps.Keys(dcs)), ", "))
}

type hostKey struct{}

// onHost makes the queries run with ctx go to the node h only.
func onHost(ctx context.Context, h *gocql.HostInfo) context.Context {
	return context.WithValue(ctx, hostKey{}, h)
}

func (p *hostPolicy) Pick(q gocql.ExecutableQuery) gocql.NextHost {
	if q != nil {
		if h, ok := q.Context().Value(hostKey{}).(*gocql.HostInfo); ok {
			done := false
			return func() gocql.SelectedHost {
				if done {
					return nil
				}
				done = true
				return pinned{h}
			}
		}
	}
	var key []byte
	if q != nil {
		key, _ = q.Context().Value(routeKey{}).([]byte)
	}
	next := distinct(p.HostSelectionPolicy.Pick(routed{q, key, p.ks}))
	if p.localDC != "" {
		all := next
		next = func() gocql.SelectedHost {
			for {
				h := all()
				if h == nil || h.Info() != nil && h.Info().DataCenter() == p.localDC {
					return h
				}
			}
		}
	}
	if q != nil {
		if t, ok := q.Context().Value(triedKey{}).(*tried); ok {
			return t.plan(next)
		}
	}
	return next
}

// distinct passes a plan on without the nodes it named already. The
// driver's replicas of a token (NetworkTopologyStrategy with one rack)
// name a node once per token of it they meet on the ring, so that a key's
// plan named a node twice (and one replica only in the round robin after
// them): a request retried on the next node of its plan went to the node
// that failed it again.
func distinct(next gocql.NextHost) gocql.NextHost {
	var named []*gocql.HostInfo
	return func() gocql.SelectedHost {
		for {
			h := next()
			if h == nil || h.Info() == nil || !slices.Contains(named, h.Info()) {
				if h != nil && h.Info() != nil {
					named = append(named, h.Info())
				}
				return h
			}
		}
	}
}

// tried holds the coordinators that the attempts of one operation were
// sent to (paxos tries a statement again after its attempt timed out).
type tried struct {
	mu    sync.Mutex
	hosts []*gocql.HostInfo
}

type triedKey struct{}

// withTried makes the queries run with the returned context start at
// nodes that none of them was sent to before, then go on to those.
func withTried(ctx context.Context) context.Context {
	return context.WithValue(ctx, triedKey{}, &tried{})
}

// plan orders next's nodes: first those not tried (in next's order), then
// those tried; it records every node it hands out.
func (t *tried) plan(next gocql.NextHost) gocql.NextHost {
	var order []gocql.SelectedHost
	i := -1
	return func() gocql.SelectedHost {
		t.mu.Lock()
		defer t.mu.Unlock()
		if i < 0 {
			var again []gocql.SelectedHost
			for h := next(); h != nil; h = next() {
				if slices.Contains(t.hosts, h.Info()) {
					again = append(again, h)
				} else {
					order = append(order, h)
				}
			}
			order, i = append(order, again...), 0
		}
		if i == len(order) {
			return nil
		}
		h := order[i]
		i++
		if !slices.Contains(t.hosts, h.Info()) {
			t.hosts = append(t.hosts, h.Info())
		}
		return h
	}
}

// learnReplicas has the driver compute which nodes hold each token of the
// store's keyspace, as it does on its own only for a session's keyspace
// (a store names its keyspace in each statement, and makes it after it
// connects): without it a key's plan started at its primary replica
// alone, every time, and the shuffle of replicas that spreads the reads
// of a key did nothing. The driver computes them again for the session's
// keyspace only when a node joins or leaves: so does AddHost and
// RemoveHost once this ran.
func (p *hostPolicy) learnReplicas() {
	p.replicas.Store(true)
	p.HostSelectionPolicy.KeyspaceChanged(gocql.KeyspaceUpdateEvent{Keyspace: p.ks, Change: "UPDATED"})
}

type pinned struct{ h *gocql.HostInfo }

func (s pinned) Info() *gocql.HostInfo { return s.h }
func (s pinned) Mark(error)            {}

type routeKey struct{}

// withKey makes the queries run with ctx go to the replicas of key, a
// partition key of a wail table (token-aware).
func withKey(ctx context.Context, key []byte) context.Context {
	return context.WithValue(ctx, routeKey{}, key)
}

// routed is a query as the driver's token-aware policy sees it: the
// routing key withKey gave (none: any node, in the data center's round
// robin) and the keyspace. Left to itself, the driver learns a
// statement's routing key by having one node prepare it, the first up in
// its own order, once per statement and process, under the context of
// the statement's first query and before any coordinator is chosen:
// with that node stalled (a frozen process, a path that black-holes)
// every query of the statement, every key and level, waited for it and
// failed at its deadline, and the next one asked again
// (TestFirstReadsDuringAStall). A wail table's partition key is the one
// blob column key, whose routing key is its bytes.
type routed struct {
	gocql.ExecutableQuery
	key []byte
	ks  string
}

func (r routed) GetRoutingKey() ([]byte, error) { return r.key, nil }
func (r routed) Keyspace() string               { return r.ks }
