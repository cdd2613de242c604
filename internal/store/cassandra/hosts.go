package cassandra

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocql/gocql"
)

// hostPolicy is the driver's token-aware, data-center-aware host selection
// with these additions: it keeps the driver's view of every node (for
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
// overlap Open checks holds in the local data center only. A key's plan
// starts at its replicas, as Cassandra places them (ring.go), each equally
// likely first (evenly).
type hostPolicy struct {
	gocql.HostSelectionPolicy
	localDC string // "": any
	ks      string // the keyspace of the queries' routing keys (routed)

	mu    sync.Mutex
	hosts map[string]*gocql.HostInfo // by host id
	down  map[string]bool            // by host id: told down (HostDown), not up since

	// The keyspace's replicas (learnReplicas): meta reads the keyspace's
	// replication (the session's KeyspaceMetadata); a failed learn is
	// tried again after retry[0], doubling up to retry[1].
	meta  func(string) (*gocql.KeyspaceMetadata, error)
	retry [2]time.Duration
	log   *slog.Logger

	// Where keys go, as Cassandra places them (ring.go): the ring of the
	// nodes known, when their partitioner is Murmur3Partitioner, and the
	// keyspace's replication (nil: unknown).
	ring        atomic.Pointer[ring]
	murmur      atomic.Bool
	replication atomic.Pointer[Replication]

	learning atomic.Bool   // learnReplicas ran: keep the keyspace's replicas current as nodes come and go
	again    chan struct{} // learn them again (1 buffered: kicks coalesce)
	learnMu  sync.Mutex
	stop     context.CancelFunc // ends the learner; nil: none runs
	done     chan struct{}      // closed when it ended
	stopped  bool               // stopLearning ran: no learner starts
}

func newHostPolicy(localDC, ks string) *hostPolicy {
	var fallback gocql.HostSelectionPolicy = gocql.RoundRobinHostPolicy()
	if localDC != "" {
		fallback = gocql.DCAwareRoundRobinPolicy(localDC)
	}
	return &hostPolicy{
		// Not gocql.ShuffleReplicas: evenly shuffles the key's replicas
		// once each.
		HostSelectionPolicy: gocql.TokenAwareHostPolicy(marked{fallback}),
		localDC:             localDC,
		ks:                  ks,
		hosts:               map[string]*gocql.HostInfo{},
		down:                map[string]bool{},
		retry:               [2]time.Duration{time.Second, 30 * time.Second},
		log:                 slog.Default(),
		again:               make(chan struct{}, 1),
	}
}

func (p *hostPolicy) AddHost(h *gocql.HostInfo) {
	p.mu.Lock()
	p.hosts[h.HostID()] = h
	p.ring.Store(newRing(slices.Collect(maps.Values(p.hosts))))
	p.mu.Unlock()
	p.HostSelectionPolicy.AddHost(h)
	p.learnAgain()
}

func (p *hostPolicy) RemoveHost(h *gocql.HostInfo) {
	p.mu.Lock()
	delete(p.hosts, h.HostID())
	delete(p.down, h.HostID())
	p.ring.Store(newRing(slices.Collect(maps.Values(p.hosts))))
	p.mu.Unlock()
	p.HostSelectionPolicy.RemoveHost(h)
	p.learnAgain()
}

// Logged when the driver tells a node down or up again (nodeState).
const (
	warnNodeDown = "a Cassandra node is down: requests go to its keys' other replicas, and succeed while enough of each key's replicas " +
		"are up for the consistency level; check the node (nodetool status, its system.log) and run wail doctor"
	infoNodeUp = "a Cassandra node is up again: requests go to it again"
)

// HostDown: the driver found the node down (its status event, or every
// connection to it failing); logged once, until it is up again.
func (p *hostPolicy) HostDown(h *gocql.HostInfo) {
	p.nodeState(h, false)
	p.HostSelectionPolicy.HostDown(h)
}

// HostUp: the driver connected to the node: at the session's start
// (not logged), or after it was down (logged).
func (p *hostPolicy) HostUp(h *gocql.HostInfo) {
	p.nodeState(h, true)
	p.HostSelectionPolicy.HostUp(h)
}

// nodeState logs a node going down (WARN) and coming back (INFO), once
// each: the driver tells a down node down again at each reconnection
// that fails, and every node up at the session's start.
func (p *hostPolicy) nodeState(h *gocql.HostInfo, up bool) {
	id := h.HostID()
	p.mu.Lock()
	was := p.down[id]
	if up {
		delete(p.down, id)
	} else {
		p.down[id] = true
	}
	p.mu.Unlock()
	attrs := []any{"node", h.ConnectAddress().String(), "data_center", h.DataCenter(), "rack", h.Rack(), "host_id", id}
	switch {
	case !up && !was:
		p.log.Warn(warnNodeDown, attrs...)
	case up && was:
		p.log.Info(infoNodeUp, attrs...)
	}
}

func (p *hostPolicy) SetPartitioner(name string) {
	p.murmur.Store(strings.HasSuffix(name, "Murmur3Partitioner"))
	p.HostSelectionPolicy.SetPartitioner(name)
}

// setReplication tells the keyspace's replication.
func (p *hostPolicy) setReplication(r Replication) { p.replication.Store(&r) }

// placed are the replicas of key that may coordinate its requests (up, in
// the local data center), as Cassandra places them; ok is false when
// that is not known (no routing key, another partitioner than
// Murmur3Partitioner, the replication not known yet).
func (p *hostPolicy) placed(key []byte) ([]*gocql.HostInfo, bool) {
	r, repl := p.ring.Load(), p.replication.Load()
	if key == nil || r == nil || repl == nil || !p.murmur.Load() {
		return nil, false
	}
	return slices.DeleteFunc(r.replicas(key, *repl, p.localDC), func(h *gocql.HostInfo) bool { return !h.IsUp() }), true
}

// KeyspaceChanged: the session tells of a change of a keyspace (made,
// altered, dropped), and the driver's policy reads its replication and
// computes its replicas again; dropping them when that read fails. For
// the store's keyspace, once learnReplicas ran, the learner does it.
func (p *hostPolicy) KeyspaceChanged(e gocql.KeyspaceUpdateEvent) {
	if e.Keyspace == p.ks && p.learning.Load() {
		p.learnAgain()
		return
	}
	p.HostSelectionPolicy.KeyspaceChanged(e)
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
	placed, ok := p.placed(key)
	next := distinct(evenly(placed, ok, p.HostSelectionPolicy.Pick(routed{q, key, p.ks})))
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

// replicasEnd marks the end of a key's replicas in the plans of the
// driver's token-aware policy: its fallback (marked) starts its plans with
// it, and the token-aware policy goes on to the fallback's plan after the
// replicas (every plan, when the query has no routing key).
var replicasEnd = &gocql.HostInfo{}

// marked is the round robin of the token-aware policy's fallback, its
// plans starting with replicasEnd.
type marked struct{ gocql.HostSelectionPolicy }

func (m marked) Pick(q gocql.ExecutableQuery) gocql.NextHost {
	next := m.HostSelectionPolicy.Pick(q)
	first := true
	return func() gocql.SelectedHost {
		if first {
			first = false
			return pinned{replicasEnd}
		}
		return next()
	}
}

// evenly starts a plan of the token-aware policy with the key's replicas,
// each once, in an order each of them is equally likely to come first in,
// then goes on with the driver's plan: its replicas, then its round robin.
// The replicas are those placed, when ok, else the driver's. The driver's
// replicas of a token (NetworkTopologyStrategy with fewer racks than
// replicas) name a node once per token of it they meet on the ring, [A A
// B]: its shuffle of them started two plans in three at A
// (TestPlansStartEvenlyAtAKeysReplicas), and C, a replica too, none
// (TestRingPlacesKeysAsCassandra). A plan without the mark (not the
// token-aware policy's) goes on as it is.
func evenly(placed []*gocql.HostInfo, ok bool, next gocql.NextHost) gocql.NextHost {
	var driver []gocql.SelectedHost
	for {
		h := next()
		if h == nil { // no mark: the plan as it is
			i := 0
			return func() gocql.SelectedHost {
				if i == len(driver) {
					return nil
				}
				i++
				return driver[i-1]
			}
		}
		if h.Info() == replicasEnd {
			break
		}
		driver = append(driver, h)
	}
	var first []gocql.SelectedHost
	if ok {
		for _, h := range placed {
			first = append(first, pinned{h})
		}
	} else {
		for _, h := range driver {
			if !slices.ContainsFunc(first, func(f gocql.SelectedHost) bool { return f.Info() == h.Info() }) {
				first = append(first, h)
			}
		}
		driver = nil
	}
	rand.Shuffle(len(first), func(i, j int) { first[i], first[j] = first[j], first[i] })
	return func() gocql.SelectedHost {
		switch {
		case len(first) > 0:
			h := first[0]
			first = first[1:]
			return h
		case len(driver) > 0:
			h := driver[0]
			driver = driver[1:]
			return h
		}
		return next()
	}
}

// distinct passes a plan on without the nodes it named already: the
// driver's replicas (above) may name a node twice, and a request retried
// on the next node of its plan went to the node that failed it again.
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
// of a key did nothing. (The store places keys itself, placed, once it
// knows the keyspace's replication, which a learn updates too; the
// driver's replicas serve where it cannot: another partitioner than
// Murmur3Partitioner.) It learns them now, then keeps them current: a
// learner learns them again when a node joins or leaves or the keyspace
// changes (the driver computes them again then for the session's keyspace
// only), and after a failure, with backoff, until it succeeds. The driver
// reads the keyspace's replication to compute them (a schema query on its
// control connection, unless cached) and drops them when that read fails:
// every plan of a key started at its primary replica until the next node
// event (TestReplicasOutliveAFailedLearn). So a learn reads the
// replication first and leaves the replicas learned last in place when it
// cannot; the driver reads it again from its cache (a schema change of the
// keyspace, such as a table made, empties it in between only rarely: then
// the read after tells the failure, and the learner tries again).
// stopLearning ends the learner.
func (p *hostPolicy) learnReplicas() {
	p.learnMu.Lock()
	defer p.learnMu.Unlock()
	if p.stopped || p.stop != nil {
		return
	}
	p.learning.Store(true)
	ctx, stop := context.WithCancel(context.Background())
	p.stop, p.done = stop, make(chan struct{})
	err := p.learn()
	go p.learner(ctx, err)
}

// learnAgain has the learner learn the replicas again, once learnReplicas
// ran; it does not wait.
func (p *hostPolicy) learnAgain() {
	if !p.learning.Load() {
		return
	}
	select {
	case p.again <- struct{}{}:
	default: // one is due already
	}
}

// learn has the driver compute the keyspace's replicas, if it can read
// the keyspace's replication.
func (p *hostPolicy) learn() error {
	md, err := p.meta(p.ks)
	if err != nil {
		return fmt.Errorf("reading the replication of keyspace %s: %w", p.ks, err)
	}
	opts := map[string]string{"class": md.StrategyClass}
	for k, v := range md.StrategyOptions {
		opts[k] = fmt.Sprint(v)
	}
	if r, err := ParseReplication(opts); err == nil {
		p.setReplication(r)
	}
	p.HostSelectionPolicy.KeyspaceChanged(gocql.KeyspaceUpdateEvent{Keyspace: p.ks, Change: "UPDATED"})
	if _, err := p.meta(p.ks); err != nil {
		return fmt.Errorf("reading the replication of keyspace %s: %w", p.ks, err)
	}
	return nil
}

// learner learns the replicas again when asked (learnAgain) and, while
// the last learn failed (err), after a backoff; until ctx ends.
func (p *hostPolicy) learner(ctx context.Context, err error) {
	defer close(p.done)
	backoff := p.retry[0]
	retry := time.NewTimer(backoff)
	defer retry.Stop()
	retry.Stop()
	failing := false
	for {
		switch {
		case err == nil && failing:
			p.log.Info("read the Cassandra keyspace's replication again", "keyspace", p.ks)
			failing, backoff = false, p.retry[0]
		case err == nil:
		case !failing:
			p.log.Warn(warnLearn, "keyspace", p.ks, "err", err)
			failing = true
			fallthrough
		default:
			var wait time.Duration
			wait, backoff = backoffStep(backoff, p.retry[1])
			retry.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-p.again:
		case <-retry.C:
		}
		retry.Stop()
		err = p.learn()
	}
}

// backoffStep is the wait before a retry, drawn from half of backoff to
// all of it (processes that failed together do not retry together), and
// the backoff after: doubled, up to most.
func backoffStep(backoff, most time.Duration) (wait, next time.Duration) {
	return backoff/2 + rand.N(backoff/2+1), min(2*backoff, most)
}

const warnLearn = "cannot read the Cassandra keyspace's replication to learn which nodes hold its data; " +
	"requests keep what was learned before; tried again with backoff"

// stopLearning ends the learner, if one runs, and waits for it; no
// learner starts after. A learn under way ends with the session's
// connections: close the session first.
func (p *hostPolicy) stopLearning() {
	p.learnMu.Lock()
	p.stopped = true
	stop, done := p.stop, p.done
	p.learnMu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
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
