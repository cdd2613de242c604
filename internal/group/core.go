// Package group runs consumer groups over wail's own API: members of a
// named group of a table share its event partitions, each partition's
// events go to one member at a time, in order; members acknowledge
// (commit) how far they processed, durably, in the log's committed
// offsets; a member that leaves, dies or stops acknowledging loses its
// partitions, and the next owner starts at the committed offset, so that
// exactly the unacknowledged events are delivered again. A partition that
// moves from a live member (the balance changed) drains first: it moves
// once that member acknowledged what it was sent, or after a lease. See
// DESIGN.md, "Consumer groups".
//
// Core (this file) decides membership, assignment and leases without I/O;
// Groups (groups.go) runs it over a log. A group shared by several
// processes (Sharing) keeps its membership and partition ownership in one
// entry of the store's catalog instead (shared.go, sync.go), and commits
// through a fenced committer per partition (fence.go); a "snapshot" start
// has one taker at a time (snapclaim.go, snapend.go). See DESIGN.md,
// "Groups across processes".
package group

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrNotOwner: an acknowledgement for a partition the member does not own
// (any more) at that epoch; it was not committed.
var ErrNotOwner = errors.New("partition not owned by this member")

// ErrDuplicateMember: a member joined with the id of a live member.
var ErrDuplicateMember = errors.New("member id already in the group")

// ErrBeyondDelivered: an acknowledgement past what was delivered.
var ErrBeyondDelivered = errors.New("acknowledged past the delivered events")

// ErrInvalidAck: an acknowledgement request that names a partition the
// table does not have, or one partition twice, or a next below 0;
// nothing of it was committed.
var ErrInvalidAck = errors.New("invalid acknowledgement")

// Core is the state of one group of one table. Not safe for concurrent
// use.
type Core struct {
	n     int32
	lease time.Duration
	// members in join order, and their ids (has is asked per partition
	// in every rebalance: a set keeps a stampede of joins O(m×(m+p))
	// instead of O(m²×p))
	members []*member
	ids     map[string]bool
	// per partition: owner ("" none), epoch (increases at every change of
	// owner), committed next offset (-1: never committed), delivered next
	// offset of the current owner's stream, and when the oldest
	// unacknowledged delivery was sent (zero: none).
	owner     []string
	epoch     []uint64
	committed []int64
	delivered []int64
	eventsTo  []int64 // delivered's value after the last batch that had events
	unacked   []time.Time
	// revoking: the partition moves from its live owner, which is sent
	// no more of its events; it keeps it (and may acknowledge it) until
	// it acknowledged what it was sent or drainBy passed (Handover).
	revoking []bool
	drainBy  []time.Time
	seq      uint64 // epochs are unique across partitions and changes
	// shared: ownership is decided by the group's shared entry (shared.go)
	// and given with Grant; Join and Leave do not balance.
	shared bool
}

type member struct {
	id string
}

// Grant is a partition given to a member: it reads from Offset (the
// committed offset) under Epoch.
type Grant struct {
	Partition int32
	Epoch     uint64
	Offset    int64
}

// Change is what a membership change does: per member, the partitions it
// loses and those it gets. Revocations must take effect (the member's
// reader of the partition stopped) before grants are started. Draining
// are the partitions a member is to lose once it acknowledged what it was
// sent (Handover): their readers stop now, the member is told when they
// are revoked.
type Change struct {
	Revoked  map[string][]int32
	Granted  map[string][]Grant
	Draining map[string][]int32
}

// NewCore returns the core of a group over n partitions whose members
// lose their partitions when an acknowledgement is overdue by lease;
// committed are the durable offsets (absent: never committed). Its epochs
// are above after (the last epoch of the group's previous core, so that
// epochs keep increasing while the process lives).
func NewCore(n int32, lease time.Duration, committed map[int32]int64, after uint64) *Core {
	c := &Core{n: n, lease: lease, seq: after, owner: make([]string, n), epoch: make([]uint64, n),
		committed: make([]int64, n), delivered: make([]int64, n), eventsTo: make([]int64, n), unacked: make([]time.Time, n),
		revoking: make([]bool, n), drainBy: make([]time.Time, n), ids: map[string]bool{}}
	for p := range c.committed {
		c.committed[p] = -1
		if o, ok := committed[int32(p)]; ok {
			c.committed[p] = o
		}
	}
	return c
}

// Members returns the member ids in join order.
func (c *Core) Members() []string {
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = m.id
	}
	return out
}

// LastEpoch returns the last epoch given.
func (c *Core) LastEpoch() uint64 { return c.seq }

// Owner returns a partition's owner ("" none) and epoch.
func (c *Core) Owner(p int32) (string, uint64) { return c.owner[p], c.epoch[p] }

// Revoking reports whether p drains: it moves from its owner once the
// owner acknowledged what it was sent.
func (c *Core) Revoking(p int32) bool { return c.revoking[p] }

// Committed returns a partition's committed offset (-1: never).
func (c *Core) Committed(p int32) int64 { return c.committed[p] }

// Join adds a member at now (a member id already in is an error: two
// live members must not share an id).
func (c *Core) Join(id string, now time.Time) (Change, error) {
	if c.has(id) {
		return Change{}, fmt.Errorf("%w: %q is a live member: give each member its own id (a member that died leaves when its stream ends)", ErrDuplicateMember, id)
	}
	c.members = append(c.members, &member{id: id})
	c.ids[id] = true
	return c.rebalance(now), nil
}

// Leave removes a member at now (unknown: nothing happens); its
// partitions move at once, draining ones too.
func (c *Core) Leave(id string, now time.Time) Change {
	i := slices.IndexFunc(c.members, func(m *member) bool { return m.id == id })
	if i < 0 {
		return Change{}
	}
	c.members = slices.Delete(c.members, i, i+1)
	delete(c.ids, id)
	return c.rebalance(now)
}

func (c *Core) has(id string) bool {
	return c.ids[id]
}

// Grant gives p to member id at epoch, reading from offset (the committed
// one, -1 never), when the group's shared entry gave it (shared mode).
func (c *Core) Grant(p int32, id string, epoch uint64, offset int64) Change {
	ch := Change{Revoked: map[string][]int32{}, Granted: map[string][]Grant{}}
	if o := c.owner[p]; o != "" && c.has(o) {
		ch.Revoked[o] = append(ch.Revoked[o], p)
	}
	c.owner[p], c.epoch[p], c.committed[p] = id, epoch, offset
	c.revoking[p], c.drainBy[p] = false, time.Time{}
	c.delivered[p] = max(offset, 0)
	c.eventsTo[p] = c.delivered[p]
	c.unacked[p] = time.Time{}
	ch.Granted[id] = []Grant{{Partition: p, Epoch: epoch, Offset: offset}}
	return ch
}

// Revoke takes p from its owner (shared mode).
func (c *Core) Revoke(p int32) Change {
	ch := Change{Revoked: map[string][]int32{}}
	if o := c.owner[p]; o != "" {
		if c.has(o) {
			ch.Revoked[o] = []int32{p}
		}
		c.free(p)
	}
	return ch
}

// free takes p from its owner.
func (c *Core) free(p int32) {
	c.owner[p] = ""
	c.unacked[p] = time.Time{}
	c.revoking[p], c.drainBy[p] = false, time.Time{}
}

// Drain marks p, owned here, revoking from now (shared mode: the group's
// entry keeps it its owner's until Handover frees it and a sync releases
// it).
func (c *Core) Drain(p int32, now time.Time) Change {
	o := c.owner[p]
	if o == "" || c.revoking[p] {
		return Change{}
	}
	c.revoking[p], c.drainBy[p] = true, now.Add(c.lease)
	return Change{Draining: map[string][]int32{o: {p}}}
}

// Busy reports whether p's owner was sent events of it that it did not
// acknowledge.
func (c *Core) Busy(p int32) bool { return !c.unacked[p].IsZero() }

// Held returns the partitions owned here, by epoch (shared mode).
func (c *Core) Held() map[int32]uint64 {
	out := map[int32]uint64{}
	for p, o := range c.owner {
		if o != "" {
			out[int32(p)] = c.epoch[p]
		}
	}
	return out
}

// rebalance gives every partition to a live member, as evenly as the
// counts allow (the first n%m members in join order take one more),
// keeping partitions where they are when it can, those with
// unacknowledged events first. A partition that must move from a live
// member that has unacknowledged events of it drains first (Draining;
// Handover moves it), from now on; one of a member that left moves at
// once.
func (c *Core) rebalance(now time.Time) Change {
	ch := Change{Revoked: map[string][]int32{}, Granted: map[string][]Grant{}, Draining: map[string][]int32{}}
	if c.shared {
		for p, o := range c.owner { // a member that left: its partitions are free here
			if o != "" && !c.has(o) {
				c.free(int32(p))
			}
		}
		return ch
	}
	m := len(c.members)
	caps := map[string]int{}
	for i, mb := range c.members {
		caps[mb.id] = int(c.n) / m
		if i < int(c.n)%m {
			caps[mb.id]++
		}
	}
	kept := map[string]int{}
	keep := make([]bool, c.n)
	// Kept first: the partitions with unacknowledged events (moving one
	// of those waits for its drain), then the others.
	for _, busy := range []bool{true, false} {
		for p := range c.n {
			o := c.owner[p]
			if o != "" && c.has(o) && !c.revoking[p] && !c.unacked[p].IsZero() == busy && kept[o] < caps[o] {
				kept[o]++
				keep[p] = true
			}
		}
	}
	var free []int32
	for p := range c.n {
		o := c.owner[p]
		switch {
		case keep[p]:
		case o == "":
			free = append(free, p)
		case !c.has(o): // it left: at once
			c.free(p)
			free = append(free, p)
		case c.revoking[p]: // draining already: Handover moves it
		case !c.unacked[p].IsZero():
			c.revoking[p], c.drainBy[p] = true, now.Add(c.lease)
			ch.Draining[o] = append(ch.Draining[o], p)
		default:
			ch.Revoked[o] = append(ch.Revoked[o], p)
			c.free(p)
			free = append(free, p)
		}
	}
	// A member full stays full: the search for room goes on from the
	// last member given one.
	next := 0
	for _, p := range free {
		for ; next < m; next++ {
			if mb := c.members[next]; kept[mb.id] < caps[mb.id] {
				kept[mb.id]++
				c.seq++
				c.owner[p], c.epoch[p] = mb.id, c.seq
				c.delivered[p] = max(c.committed[p], 0)
				c.eventsTo[p] = c.delivered[p]
				ch.Granted[mb.id] = append(ch.Granted[mb.id], Grant{Partition: p, Epoch: c.seq, Offset: c.committed[p]})
				break
			}
		}
	}
	return ch
}

// Handover moves the draining partitions whose owner acknowledged every
// event it was sent of them, and those that drained for a lease (an owner
// that acknowledges bit by bit: the drain is bounded by the lease even
// when the owner's is renewed): each is revoked from its owner and given
// where the balance says, from the committed offset (the events the
// owner did not acknowledge go again to the next).
func (c *Core) Handover(now time.Time) Change {
	ch := Change{Revoked: map[string][]int32{}}
	for p := range c.n {
		if !c.revoking[p] || (!c.unacked[p].IsZero() && now.Before(c.drainBy[p])) {
			continue
		}
		o := c.owner[p]
		ch.Revoked[o] = append(ch.Revoked[o], p)
		c.free(p)
	}
	if len(ch.Revoked) == 0 {
		return Change{}
	}
	next := c.rebalance(now)
	for o, ps := range next.Revoked {
		ch.Revoked[o] = append(ch.Revoked[o], ps...)
	}
	ch.Granted, ch.Draining = next.Granted, next.Draining
	return ch
}

// Delivered records that the owner of p at epoch was sent the events
// before next; it reports false when that owner lost p meanwhile (the
// events must not be sent).
//
// A draining partition's owner is sent nothing more of it.
func (c *Core) Delivered(p int32, epoch uint64, next int64, events bool, now time.Time) bool {
	if c.epoch[p] != epoch || c.owner[p] == "" || c.revoking[p] {
		return false
	}
	if events && c.unacked[p].IsZero() && next > c.committedOrZero(p) {
		c.unacked[p] = now
	}
	c.delivered[p] = max(c.delivered[p], next)
	if events {
		c.eventsTo[p] = c.delivered[p]
	}
	return true
}

func (c *Core) committedOrZero(p int32) int64 { return max(c.committed[p], 0) }

// Ack checks an acknowledgement of p up to next (exclusive) by member id
// at epoch: it must own p at that epoch, and next must not pass what was
// delivered. It returns whether it moves the committed offset; the caller
// makes it durable, then calls Committed.
func (c *Core) Ack(id string, p int32, epoch uint64, next int64) (bool, error) {
	switch {
	case p < 0 || p >= c.n:
		return false, fmt.Errorf("partition %d does not exist (the table has %d)", p, c.n)
	case c.owner[p] != id || c.epoch[p] != epoch:
		return false, fmt.Errorf("%w: partition %d epoch %d (it moved to another member: its unacknowledged events go there)", ErrNotOwner, p, epoch)
	case next > c.delivered[p]:
		return false, fmt.Errorf("%w: partition %d offset %d, delivered up to %d", ErrBeyondDelivered, p, next, c.delivered[p])
	}
	return next > c.committed[p], nil
}

// Commit records a durable commit of p at next by the owner at epoch.
func (c *Core) Commit(p int32, epoch uint64, next int64, now time.Time) {
	if next <= c.committed[p] {
		return
	}
	c.committed[p] = next
	if c.epoch[p] == epoch {
		if next >= c.eventsTo[p] {
			c.unacked[p] = time.Time{}
		} else {
			c.unacked[p] = now // the rest was delivered before now: its lease starts again
		}
	}
}

// Expired returns the members with an acknowledgement overdue: events
// delivered to them and unacknowledged for longer than the lease.
func (c *Core) Expired(now time.Time) []string {
	var out []string
	for p := range c.n {
		if o := c.owner[p]; o != "" && !c.unacked[p].IsZero() && now.Sub(c.unacked[p]) > c.lease && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}
