package kafka

import (
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// owners records, per partition the member holds, the member id the group
// assigned it under. A Member commits offsets only for partitions held
// under the member id it commits with.
//
// Why: a member the group dropped while it went on (its heartbeats were
// lost, or it stalled past the rebalance timeout) learns so only when it
// joins again. franz-go then joins under a new member id without calling
// OnPartitionsLost, and the partitions it held stay "held" until the new
// assignment arrives after the sync. Meanwhile the group may have given
// them to another member, and a transaction of the old owner's loops would
// carry the new member id and generation, which the coordinator accepts
// (KIP-447 checks the member, not the partition): two members would publish
// a partition's events and commit its offsets. With owners, those commits
// fail until the assignment is known; then the partitions taken away are
// revoked, and those kept under the new id are revoked and assigned again,
// so that their loops start over from the committed offsets (another
// member may have owned them meanwhile).
type owners struct {
	mu sync.Mutex
	by map[string]map[int32]string // topic -> partition -> member id
}

// assign records that member holds a.
func (o *owners) assign(member string, a map[string][]int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.by == nil {
		o.by = map[string]map[int32]string{}
	}
	for topic, ps := range a {
		if o.by[topic] == nil {
			o.by[topic] = map[int32]string{}
		}
		for _, p := range ps {
			o.by[topic][p] = member
		}
	}
}

// stale returns the partitions held under a member id other than member.
func (o *owners) stale(member string) map[string][]int32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var stale map[string][]int32
	for topic, parts := range o.by {
		for p, id := range parts {
			if id != member {
				if stale == nil {
					stale = map[string][]int32{}
				}
				stale[topic] = append(stale[topic], p)
			}
		}
	}
	for _, ps := range stale {
		slices.Sort(ps)
	}
	return stale
}

// revoke forgets r.
func (o *owners) revoke(r map[string][]int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for topic, ps := range r {
		for _, p := range ps {
			delete(o.by[topic], p)
		}
		if len(o.by[topic]) == 0 {
			delete(o.by, topic)
		}
	}
}

// check fails (aborted: the loops of those partitions are about to be
// revoked) unless every partition of offsets is held under member.
func (o *owners) check(member string, offsets map[string]map[int32]intentlog.EpochOffset) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, topic := range slices.Sorted(maps.Keys(offsets)) {
		for _, p := range slices.Sorted(maps.Keys(offsets[topic])) {
			if id, ok := o.by[topic][p]; !ok || id != member {
				return fmt.Errorf("%w: %s/%d is not assigned to member %q (the member joined the group again; its new assignment decides)", errAborted, topic, p, member)
			}
		}
	}
	return nil
}

// merged returns the partitions of a and b, each once.
func merged(a, b map[string][]int32) map[string][]int32 {
	if len(b) == 0 {
		return a
	}
	out := map[string][]int32{}
	for _, m := range []map[string][]int32{a, b} {
		for topic, ps := range m {
			for _, p := range ps {
				if !slices.Contains(out[topic], p) {
					out[topic] = append(out[topic], p)
				}
			}
		}
	}
	return out
}
