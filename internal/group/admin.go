package group

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// PartitionState is a partition of a group as Describe reports it.
type PartitionState struct {
	Partition int32
	Committed int64 // -1: never
	End       int64
	Owner     string
	Epoch     uint64
	Unacked   time.Time // when the oldest unacknowledged delivery was sent
	Delivered int64
	// Revoking: it moves from Owner once Owner acknowledged what it was
	// sent (or within the lease); Owner is sent no more of it.
	Revoking bool
}

// Describe returns a group's members (in join order) and partitions.
func (g *Groups) Describe(ctx context.Context, t Table, name string) ([]string, []PartitionState, error) {
	committed, err := g.log.Committed(ctx, LogGroup(name), t.Topic)
	if err != nil {
		return nil, nil, fmt.Errorf("group %s of %s: committed offsets: %w", name, t.Name, err)
	}
	g.mu.Lock()
	gr := g.groups[[2]string{t.Name, name}]
	g.mu.Unlock()
	// The group's core and loaded are read under its lock: a shared group
	// waiting for its snapshot claim is reloaded in place by a Join
	// (load), meanwhile (TestDescribeWhileReloaded).
	loaded := false
	if gr != nil {
		gr.mu.Lock()
		loaded = gr.loaded
		gr.mu.Unlock()
	}
	if len(committed) == 0 && !loaded {
		return nil, nil, nil
	}
	out := make([]PartitionState, t.Partitions)
	for p := range t.Partitions {
		_, end, err := g.log.Bounds(ctx, t.Topic, p)
		if err != nil {
			return nil, nil, fmt.Errorf("group %s of %s: bounds of partition %d: %w", name, t.Name, p, err)
		}
		c, ok := committed[p]
		if !ok {
			c = -1
		}
		out[p] = PartitionState{Partition: p, Committed: c, End: end}
	}
	var members []string
	if g.shared != nil {
		return g.describeShared(ctx, t, name, gr, out)
	}
	if gr != nil {
		gr.mu.Lock()
		if gr.core.n == t.Partitions {
			members = gr.core.Members()
			for p := range t.Partitions {
				out[p].Owner, out[p].Epoch = gr.core.Owner(p)
				out[p].Unacked, out[p].Delivered = gr.core.unacked[p], gr.core.delivered[p]
				out[p].Revoking = gr.core.Revoking(p)
			}
		}
		gr.mu.Unlock()
	}
	return members, out, nil
}

// Reset commits offsets for a group without live members (a new group
// is created).
func (g *Groups) Reset(ctx context.Context, t Table, name string, offsets map[int32]int64) error {
	return g.reset(ctx, t, name, offsets, false, intentlog.TopicID{})
}

// errPositionsMeanwhile refuses a snapshot's end once the group has
// positions.
var errPositionsMeanwhile = fmt.Errorf("%w: the group has positions committed during the snapshot (a member joined and left): the snapshot's end is not committed", ErrMembers)

// reset is Reset; onlyNew (a snapshot's end) refuses it with ErrMembers
// when the group has positions, read under g.mu after the members were
// checked (and, shared, after the fence): a member that joined, committed
// and left after an earlier check keeps its acknowledgements. The
// offsets are committed only on the topic with id (zero: the topic's id
// at the fence; fenceAll).
func (g *Groups) reset(ctx context.Context, t Table, name string, offsets map[int32]int64, onlyNew bool, id intentlog.TopicID) error {
	k := [2]string{t.Name, name}
	unlock, err := g.lockKey(ctx, k)
	if err != nil {
		return err
	}
	defer unlock()
	g.mu.Lock()
	gr := g.groups[k]
	var taker *string
	if local := g.snaps[k]; local != nil && !onlyNew { // (the snapshot's own end: onlyNew)
		taker = local.member.Load()
	}
	g.mu.Unlock()
	if taker != nil {
		// Its end would be refused (errPositionsMeanwhile), and the
		// member told that another one joined
		// (eventbus.TestGroupResetDuringSnapshot).
		return fmt.Errorf("%w: member %s is taking the group's snapshot: stop it first", ErrMembers, *taker)
	}
	if gr != nil {
		gr.mu.Lock()
		m := gr.core.Members()
		snap := gr.snap.want != "" || gr.snap.epoch != 0
		last := gr.core.LastEpoch()
		gr.mu.Unlock()
		if len(m) > 0 {
			return fmt.Errorf("%w (%s): stop them first", ErrMembers, strings.Join(m, ", "))
		}
		if snap {
			return fmt.Errorf("%w: a member here is taking (or waits to take) the group's snapshot: stop it first", ErrMembers)
		}
		g.mu.Lock()
		g.epochs[k] = max(g.epochs[k], last)
		g.mu.Unlock()
	}
	if g.shared != nil {
		st, err := g.sharedView(ctx, t, name)
		if err != nil {
			return err
		}
		if err := membersErr(st); err != nil {
			return err
		}
		if sn := st.Snapshot; sn != nil {
			return fmt.Errorf("%w: member %s is taking the group's snapshot (a process that died keeps its claim for at most api.group_lease_timeout)", ErrMembers, sn.Member)
		}
	}
	// The next member loads what is committed here. Only now: while the
	// entry lists this process's members (a leave not written yet: the
	// store was out of reach), only this group's syncs remove them.
	if gr != nil {
		g.mu.Lock()
		delete(g.groups, k)
		g.mu.Unlock()
	}
	// No committer of a member that was in the group commits after this.
	// Its commit goes through the committers fenced here: a commit the
	// bus applies late fails once a member took the partition.
	fs, prev, err := g.fenceAll(ctx, t, name, id)
	if err != nil {
		return fmt.Errorf("group %s of %s: %w", name, t.Name, err)
	}
	if g.shared != nil {
		// Again after the fence: a member of another process that joined
		// since the check above claimed (and fenced) a partition, and
		// read its position from before the reset (it is in the entry
		// before it fences); one that claims after this read fences the
		// committers above, and the commit fails. The fence stopped its
		// commits: its process claims the partition again
		// (TestSharedResetRacesJoin).
		st, err := g.sharedView(ctx, t, name)
		if err != nil {
			return err
		}
		if err := membersErr(st); err != nil {
			return fmt.Errorf("%w (joined during the reset, which committed nothing)", err)
		}
		if sn := st.Snapshot; sn != nil {
			return fmt.Errorf("%w: member %s claimed the group's snapshot during the reset, which committed nothing", ErrMembers, sn.Member)
		}
	}
	if onlyNew && len(prev) > 0 {
		return errPositionsMeanwhile
	}
	if len(prev) == 0 {
		pin := id
		if pin == (intentlog.TopicID{}) {
			if pin, err = g.pinID(ctx, t.Topic); err != nil {
				return fmt.Errorf("group %s of %s: %w", name, t.Name, err)
			}
		}
		if err := g.register(ctx, t, name, pin); err != nil {
			return err
		}
	}
	if !onlyNew {
		// The positions are no snapshot's end any more.
		if err := g.recordSnapshot(ctx, t, name, 0); err != nil {
			return fmt.Errorf("group %s of %s: %w", name, t.Name, err)
		}
	}
	if _, err := g.commitAll(ctx, t, name, fs, offsets); err != nil {
		return fmt.Errorf("group %s of %s: commit: %w", name, t.Name, err)
	}
	return nil
}

// describeShared completes Describe from the group's shared entry: every
// process's members and each partition's owner; what was delivered and
// is unacknowledged only for the partitions owned here.
func (g *Groups) describeShared(ctx context.Context, t Table, name string, gr *grp, out []PartitionState) ([]string, []PartitionState, error) {
	st, err := g.sharedView(ctx, t, name)
	if err != nil {
		return nil, nil, err
	}
	var members []string
	for _, m := range st.Members {
		members = append(members, m.ID)
	}
	if st.Partitions != t.Partitions || len(st.Owners) != int(t.Partitions) {
		return members, out, nil
	}
	if gr != nil {
		gr.mu.Lock()
		defer gr.mu.Unlock()
	}
	for p := range t.Partitions {
		o := st.Owners[p]
		out[p].Owner, out[p].Epoch = o.ID, o.Epoch
		if gr == nil || o.Proc != g.proc || gr.core.n != t.Partitions {
			continue
		}
		if id, e := gr.core.Owner(p); id == o.ID && e == o.Epoch {
			out[p].Unacked, out[p].Delivered = gr.core.unacked[p], gr.core.delivered[p]
			out[p].Revoking = gr.core.Revoking(p)
		}
	}
	return members, out, nil
}
