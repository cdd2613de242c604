package cassandra

import (
	"context"
	"sort"
	"sync"

	"github.com/gocql/gocql"
)

// hostPolicy is the driver's token-aware, data-center-aware host selection
// with two additions: it keeps the driver's view of every node (for
// Nodes), and a query whose context names a node (onHost) goes to that
// node only: node-local tables such as system.local and
// system_views.settings are read node by node that way.
type hostPolicy struct {
	gocql.HostSelectionPolicy

	mu    sync.Mutex
	hosts map[string]*gocql.HostInfo // by host id
}

func newHostPolicy(localDC string) *hostPolicy {
	var fallback gocql.HostSelectionPolicy = gocql.RoundRobinHostPolicy()
	if localDC != "" {
		fallback = gocql.DCAwareRoundRobinPolicy(localDC)
	}
	return &hostPolicy{
		HostSelectionPolicy: gocql.TokenAwareHostPolicy(fallback, gocql.ShuffleReplicas()),
		hosts:               map[string]*gocql.HostInfo{},
	}
}

func (p *hostPolicy) AddHost(h *gocql.HostInfo) {
	p.mu.Lock()
	p.hosts[h.HostID()] = h
	p.mu.Unlock()
	p.HostSelectionPolicy.AddHost(h)
}

func (p *hostPolicy) RemoveHost(h *gocql.HostInfo) {
	p.mu.Lock()
	delete(p.hosts, h.HostID())
	p.mu.Unlock()
	p.HostSelectionPolicy.RemoveHost(h)
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
	return p.HostSelectionPolicy.Pick(q)
}

type pinned struct{ h *gocql.HostInfo }

func (s pinned) Info() *gocql.HostInfo { return s.h }
func (s pinned) Mark(error)            {}
