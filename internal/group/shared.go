package group

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// Groups shared by the processes of a deployment (see DESIGN.md,
// "Groups across processes"). When several processes share a
// store and a bus, a group's membership and partition ownership live in
// one catalog entry of the store (SharedState), changed only by
// compare-and-set, so every process sees one owner per partition. Each
// process with members of the group syncs the entry: it renews its
// process lease (a counter, Procs), writes its live members, releases
// the partitions its members must give up (after it stopped them
// locally) and claims the free partitions the balance gives to its
// members, each claim with a new epoch. Leases are timed without
// comparing clocks: a process is dead to an observer once its counter
// stayed the same for a lease timeout on the observer's clock, and a
// process trusts its own lease only for 4/5 of that timeout after the
// start of its last successful write, so that it stops before anyone
// can take its partitions (clock rates may differ by up to a fifth).
// This file decides, without I/O; sync.go runs it.

// trusted is how long a process trusts its lease after the start of its
// last write of the entry: 4/5 of the lease, which others wait for on
// their clocks before taking its partitions.
func trusted(lease time.Duration) time.Duration { return lease * 4 / 5 }

// SharedState is a group's catalog entry.
type SharedState struct {
	Table      string `json:"table"`
	Group      string `json:"group"`
	Partitions int32  `json:"partitions"`
	// Seq is the last epoch given (epochs are unique in the group).
	Seq uint64 `json:"seq"`
	// Procs: each process with members, and its lease counter: the
	// value of Beat at its last write (Beat increases at every write, so
	// that a counter never repeats, even for a process that left and
	// came back).
	Procs map[string]uint64 `json:"procs"`
	Beat  uint64            `json:"beat"`
	// Members in join order.
	Members []SharedMember `json:"members"`
	// Owners per partition (an empty Member: free).
	Owners []SharedOwner `json:"owners"`
	// Snapshot is the claim of the process taking the group's start
	// "snapshot" snapshot (nil: none; snapclaim.go).
	Snapshot *SharedSnapshot `json:"snapshot,omitempty"`
	// Starts is where the partitions without a committed position start
	// (nil: none written yet): the first process to list a member of the
	// new group writes what its join found (Local.Starts), and every
	// process that claims such a partition starts it there, so the group
	// starts where its first member's join was answered, not where each
	// process's join found the end ("latest"). A partition's start is
	// spent (startSpent) once a process holds it with a committed
	// position: a later claim of it without one (the log lost the
	// group's commits: Kafka expired them, or the consumer group was
	// deleted) starts where that process's join put it, as a new group's
	// does, not at the group's first start again.
	Starts *SharedStarts `json:"starts,omitempty"`
}

// nextEpoch takes the group's next epoch for a claim at now: above the
// last one given, and not below the clock in microseconds, as the epochs
// of a group of one process are (Groups.epochBase): a sink's redrive
// claim carries its partition's epoch, and one left by a process of a
// deployment before it switched to shared groups (its epochs above its
// start's clock) is taken over only by a claim at an epoch at least as
// high. From 1, the shared epochs stayed below it, and the claim held its
// letter for good (TestSharedEpochsAboveUnsharedOnes).
func (s *SharedState) nextEpoch(now time.Time) uint64 {
	s.Seq = max(s.Seq+1, uint64(max(now.UnixMicro(), 0)))
	return s.Seq
}

// startSpent is the offset in SharedStarts.Offsets of a partition that
// had a committed position: its start is not used again.
const startSpent = -1

// SharedStarts is a new group's start (SharedState.Starts).
type SharedStarts struct {
	// Created is the table's creation time the offsets are of (Unix
	// microseconds, 0 unknown): a table created again has other offsets.
	Created int64           `json:"created,omitempty"`
	Offsets map[int32]int64 `json:"offsets"`
	// Topic is the id (hex) of the topic the offsets are of, read before
	// them ("": unknown): a partition granted on a topic of another id
	// (deleted and created again behind wail's back since) starts at
	// its start instead (grant).
	Topic string `json:"topic,omitempty"`
}

// covers says whether s holds the start of every partition of starts for
// the table created at created.
func (s *SharedStarts) covers(created int64, starts map[int32]int64) bool {
	if s == nil || s.Created != created {
		return false
	}
	for p := range starts {
		if _, ok := s.Offsets[p]; !ok {
			return false
		}
	}
	return true
}

// SharedSnapshot is who takes a group's snapshot: one process at a time,
// under its lease; its epoch comes from the group's sequence.
type SharedSnapshot struct {
	Proc   string `json:"proc"`
	Member string `json:"member"`
	Epoch  uint64 `json:"epoch"`
	// Events: the rows it had sent at its last write of the entry.
	Events int64 `json:"events,omitempty"`
}

// SharedMember is a member of the group on a process.
type SharedMember struct {
	Proc string `json:"proc"`
	ID   string `json:"id"`
}

// SharedOwner is who owns a partition, under which epoch.
type SharedOwner struct {
	SharedMember
	Epoch uint64 `json:"epoch,omitempty"`
}

// SharedEntry is the catalog entry name of a group of a table.
func SharedEntry(table, name string) string {
	h := sha256.Sum256([]byte(table + "\x00" + name))
	return store.ReservedPrefix + "group_" + hex.EncodeToString(h[:20])
}

// decodeShared reads an entry (nil: a new group).
func decodeShared(b []byte) (*SharedState, error) {
	s := &SharedState{}
	if b == nil {
		return s, nil
	}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("group entry: %w", err)
	}
	return s, nil
}

func (s *SharedState) encode() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // plain structs
	}
	return b
}

// observed is what a process saw of the others' lease counters: the
// counter and when it first saw it, on its own clock.
type observed map[string]seen

type seen struct {
	count uint64
	at    time.Time
}

// Local is what a process holds of a group when it syncs.
type Local struct {
	Proc string
	// Members are its live members, in join order.
	Members []string
	// Held are the partitions its members own here, by epoch.
	Held map[int32]uint64
	// SnapWant: a member here waits to take the group's snapshot ("":
	// none); SnapEpoch: the epoch of the snapshot claim held here (0:
	// none); SnapEvents: the rows that snapshot sent so far.
	SnapWant   string
	SnapEpoch  uint64
	SnapEvents int64
	// Busy: held partitions with events their member was sent and did
	// not acknowledge; Draining: held partitions that drain (Core.Drain),
	// released once Core.Handover took them (they are not Held then).
	Busy     map[int32]bool
	Draining map[int32]bool
	// Starts: where its join put the partitions without a committed
	// position, for the table created at Created (SharedState.Starts).
	Starts  map[int32]int64
	Created int64
	// StartsTopic: the id (hex) of the topic Starts are of ("": unknown).
	StartsTopic string
	// Committed: held partitions with a committed position (their
	// starts in the entry are spent).
	Committed map[int32]bool
}

// Plan is what a sync does: Release first (stop those partitions
// locally, so that nothing more is delivered or committed for them) and
// start the drain of Drain (partitions over the member's share that it
// has unacknowledged events of: they stay its in the entry until it
// acknowledged them, Core.Drain), then write Next (compare-and-set),
// then grant Claims locally.
type Plan struct {
	Release []int32
	Drain   []int32
	Next    *SharedState // nil: nothing to write
	Claims  []Grant      // the member of each claim: ClaimMembers
	// ClaimMembers[i] is the member of Claims[i].
	ClaimMembers []string
	// Expired are the processes found dead (their members removed).
	Expired []string
	// SnapClaim: the epoch of the snapshot claim this write takes for
	// Local.SnapWant (0: none). SnapLost: the claim Local.SnapEpoch is no
	// longer this process's (it lapsed and another process's write
	// removed it): its snapshot must stop.
	SnapClaim uint64
	SnapLost  bool
	// Err: nothing may be done (ErrPartitions); release everything held.
	Err error
}

// ErrPartitions: the group's entry was written for another partition count
// by live processes.
var ErrPartitions = errors.New("partition count differs")

// planStarts writes this process's starts (Local.Starts) into the entry
// for the partitions it has none of (another table's, of an earlier
// incarnation, are replaced), when this process has members: the first
// process to list a member fixes the group's start. It reports a change.
func planStarts(next *SharedState, l Local) bool {
	changed := spendStarts(next, l)
	if len(l.Members) == 0 || len(l.Starts) == 0 || next.Starts.covers(l.Created, l.Starts) {
		return changed
	}
	st := &SharedStarts{Created: l.Created, Offsets: map[int32]int64{}, Topic: l.StartsTopic}
	if next.Starts != nil && next.Starts.Created == l.Created {
		maps.Copy(st.Offsets, next.Starts.Offsets)
		st.Topic = next.Starts.Topic // (offsets of another topic: its partitions start at its start, grant)
	}
	for p, o := range l.Starts {
		if _, ok := st.Offsets[p]; !ok {
			st.Offsets[p] = o
		}
	}
	next.Starts = st
	return true
}

// spendStarts marks spent the starts in the entry of the partitions this
// process holds with a committed position (l.Committed). It reports a
// change.
func spendStarts(next *SharedState, l Local) bool {
	s := next.Starts
	if s == nil || s.Created != l.Created {
		return false
	}
	var st *SharedStarts
	for p := range l.Committed {
		if o, ok := s.Offsets[p]; !ok || o == startSpent {
			continue
		}
		if st == nil { // (s is the entry read: not changed in place)
			st = &SharedStarts{Created: s.Created, Offsets: maps.Clone(s.Offsets), Topic: s.Topic}
		}
		st.Offsets[p] = startSpent
	}
	if st == nil {
		return false
	}
	next.Starts = st
	return true
}

// planShared returns what process l.Proc does with state s (read from the
// entry) at now, given what it observed before (updated). A process whose
// counter has not moved for lease on this clock is dead: its members and
// partitions are removed. Every write of a process with members increases
// its counter; renew says it must write even when nothing else changes.
//
// exclusive gives every partition to the group's first member (in join
// order): one deliverer at a time for the whole group (webhook sinks),
// which moves only when that member leaves or its process dies.
func planShared(s *SharedState, l Local, table, name string, n int32, lease time.Duration, obs observed, now time.Time, renew, exclusive bool) Plan {
	next := *s
	next.Procs = map[string]uint64{}
	for p, c := range s.Procs {
		next.Procs[p] = c
	}
	next.Members = slices.Clone(s.Members)
	next.Owners = slices.Clone(s.Owners)
	changed := false
	var plan Plan
	// Expire the processes whose counters stood still for a lease.
	for p, c := range s.Procs {
		if p == l.Proc {
			continue
		}
		o, ok := obs[p]
		if !ok || o.count != c {
			obs[p] = seen{count: c, at: now}
			continue
		}
		if now.Sub(o.at) > lease {
			delete(next.Procs, p)
			plan.Expired = append(plan.Expired, p)
			changed = true
		}
	}
	for p := range obs {
		if _, ok := next.Procs[p]; !ok {
			delete(obs, p)
		}
	}
	slices.Sort(plan.Expired)
	if planSnapshot(&next, l, &plan) {
		changed = true
	}
	if next.Partitions != n || len(next.Owners) != int(n) {
		// A new entry, or the table was created again with another
		// count: ownership starts over (epochs keep increasing), once no
		// other live process may hold a partition of the old count.
		for p := range next.Procs {
			if p != l.Proc {
				plan.Err = fmt.Errorf("%w: the group's members on other processes joined when the table had %d partitions, this process sees %d "+
					"(the table was dropped and created again?): stop them, or wait for this process's catalog refresh", ErrPartitions, s.Partitions, n)
				return plan
			}
		}
		next.Table, next.Group, next.Partitions = table, name, n
		next.Owners = make([]SharedOwner, n)
		next.Starts = nil // (offsets of another count's table)
		changed = true
	}
	if planStarts(&next, l) {
		changed = true
	}
	// This process's members: exactly its live ones (none: it leaves).
	mine := map[string]bool{}
	for _, id := range l.Members {
		mine[id] = true
	}
	kept := next.Members[:0:0]
	for _, m := range next.Members {
		_, live := next.Procs[m.Proc]
		if (m.Proc == l.Proc && !mine[m.ID]) || (m.Proc != l.Proc && !live) {
			changed = true
			continue
		}
		kept = append(kept, m)
	}
	next.Members = kept
	// Sets and cursors, not scans: a sync plans under the group's lock,
	// and scans made it O(members × partitions) (with 1,000 members and
	// 1,024 partitions, 20 to 65 ms a sync: BenchmarkPlanShared).
	member := make(map[SharedMember]bool, len(next.Members)+len(l.Members))
	for _, m := range next.Members {
		member[m] = true
	}
	for _, id := range l.Members {
		if m := (SharedMember{l.Proc, id}); !member[m] {
			next.Members = append(next.Members, m)
			member[m] = true
			changed = true
		}
	}
	// A process stays in the entry (renewing its lease) while it has
	// members or holds the snapshot claim.
	active := len(l.Members) > 0 || plan.SnapClaim != 0 || (l.SnapEpoch != 0 && !plan.SnapLost)
	if _, ok := next.Procs[l.Proc]; ok && !active {
		delete(next.Procs, l.Proc)
		changed = true
	}
	// Owners that are no longer members are free; partitions this process
	// holds that the entry does not give it are released (it lost them).
	for p := range next.Owners {
		o := next.Owners[p]
		if o.ID == "" {
			continue
		}
		if !member[o.SharedMember] || (o.Proc == l.Proc && l.Held[int32(p)] != o.Epoch) {
			next.Owners[p].SharedMember = SharedMember{}
			changed = true
		}
	}
	for p, e := range l.Held {
		if o := next.Owners[p]; o.Proc != l.Proc || o.Epoch != e {
			plan.Release = append(plan.Release, p)
		}
	}
	// Balance: as Core.rebalance, over every process's members.
	caps := map[SharedMember]int{}
	for i, m := range next.Members {
		caps[m] = int(n) / len(next.Members)
		if i < int(n)%len(next.Members) {
			caps[m]++
		}
		if exclusive {
			caps[m] = 0
			if i == 0 {
				caps[m] = int(n)
			}
		}
	}
	// Kept first: every partition of another process's member (what it
	// keeps is its process's decision), and this process's with
	// unacknowledged events (moving one waits for its drain); then this
	// process's others. A partition draining here is neither kept nor
	// free: it is released once drained.
	count := map[SharedMember]int{}
	keep := make([]bool, n)
	for _, first := range []bool{true, false} {
		for p := range n {
			o := next.Owners[p].SharedMember
			mine := o.Proc == l.Proc
			if o.ID == "" || (mine && l.Draining[p]) || (!mine || l.Busy[p]) != first {
				continue
			}
			if count[o] < caps[o] {
				count[o]++
				keep[p] = true
			}
		}
	}
	var free []int32
	for p := range n {
		o := next.Owners[p].SharedMember
		switch {
		case o.ID == "":
			free = append(free, p)
		case keep[p], o.Proc != l.Proc, l.Draining[p]:
			// (over its share on another process: released at its sync)
		case l.Busy[p]: // over its share: drained here, then released
			plan.Drain = append(plan.Drain, p)
		default: // over its share: released now
			plan.Release = append(plan.Release, p)
			next.Owners[p].SharedMember = SharedMember{}
			changed = true
		}
	}
	// Each free partition goes to the first member in join order under
	// its share; counts only grow, so the members before the cursor stay
	// full.
	cur := 0
	for _, p := range free {
		for cur < len(next.Members) && count[next.Members[cur]] >= caps[next.Members[cur]] {
			cur++
		}
		if cur == len(next.Members) {
			break
		}
		m := next.Members[cur]
		count[m]++
		if m.Proc == l.Proc {
			e := next.nextEpoch(now)
			next.Owners[p] = SharedOwner{SharedMember: m, Epoch: e}
			plan.Claims = append(plan.Claims, Grant{Partition: p, Epoch: e})
			plan.ClaimMembers = append(plan.ClaimMembers, m.ID)
			changed = true
		}
		// (another process's member claims it at its sync)
	}
	slices.Sort(plan.Release)
	plan.Release = slices.Compact(plan.Release)
	if active {
		// Every write renews this process's lease (so that it can trust
		// its claims for as long); renew writes one when nothing changed.
		if _, ok := next.Procs[l.Proc]; !ok || renew || changed {
			next.Beat++
			next.Procs[l.Proc] = next.Beat
			changed = true
			if sn := next.Snapshot; sn != nil && sn.Proc == l.Proc && sn.Events != l.SnapEvents {
				c := *sn
				c.Events = l.SnapEvents // progress, written with the renewal
				next.Snapshot = &c
			}
		}
	}
	if changed {
		plan.Next = &next
	}
	return plan
}
