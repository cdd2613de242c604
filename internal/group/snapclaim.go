package group

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// Snapshots of start "snapshot" groups (and sinks), one taker at a time.
// A group with no committed positions first delivers the table's
// snapshot to one member, then commits the snapshot's end as its
// positions (eventbus.SnapshotGroup streams it; this file decides who
// takes it and fences the commit). On a process, members wait on a lock
// per group. In a shared group (Share), the taker also holds the claim
// SharedState.Snapshot in the group's entry, under its process's lease
// like a partition: claimed by compare-and-set with a new epoch, renewed
// by the process's syncs, and removed by another process once that lease
// ended (the taker died or was cut from the store), which then takes the
// snapshot again from the start. The taker stops (its context ends) once
// it cannot trust its lease (4/5 of it), before anyone may take over, and
// its commit is accepted only under the claim and if it returned within
// the trusted lease, as an acknowledgement. A waiter that finds the
// group with positions (the snapshot was committed) takes none.

// ErrSnapshotLost: this process's claim on the group's snapshot lapsed
// (its lease was not renewed in time): another process may take the
// snapshot, and this one's end is not committed.
var ErrSnapshotLost = errors.New("the claim on the group's snapshot lapsed")

// snapLocal is a group's snapshot on this process: the lock its members
// take it under, and who takes it (progress for Describe).
type snapLocal struct {
	lock   chan struct{}
	member atomic.Pointer[string]
	events atomic.Int64
	end    atomic.Pointer[endWait] // the run waits for its end's acknowledgement (snapend.go)
}

// snapClaim is the shared claim of a group on this process (under gr.mu).
type snapClaim struct {
	want   string // a member here waits to claim it
	epoch  uint64 // the claim held (0: none)
	lost   bool   // the claim was lost: the snapshot must stop
	events *atomic.Int64
}

// planSnapshot applies this process's snapshot claim to next (the entry
// being written, after expiries): a claim of a process no longer in the
// entry is removed (it died or left), this process's stale claim too;
// a free claim is taken for l.SnapWant. It reports whether next changed.
func planSnapshot(next *SharedState, l Local, plan *Plan) bool {
	changed := false
	if sn := next.Snapshot; sn != nil {
		_, live := next.Procs[sn.Proc]
		if (sn.Proc != l.Proc && !live) || (sn.Proc == l.Proc && sn.Epoch != l.SnapEpoch) {
			next.Snapshot = nil
			changed = true
		}
	}
	if l.SnapEpoch != 0 && (next.Snapshot == nil || next.Snapshot.Proc != l.Proc || next.Snapshot.Epoch != l.SnapEpoch) {
		plan.SnapLost = true
	}
	if l.SnapWant != "" && l.SnapEpoch == 0 && next.Snapshot == nil {
		next.Seq++
		next.Snapshot = &SharedSnapshot{Proc: l.Proc, Member: l.SnapWant, Epoch: next.Seq}
		plan.SnapClaim = next.Seq
		changed = true
	}
	return changed
}

// SnapshotRun is a snapshot being taken (Groups.Snapshot).
type SnapshotRun struct {
	g      *Groups
	t      Table
	name   string
	member string
	local  *snapLocal
	gr     *grp // shared groups: the group holding the claim
	epoch  uint64
	commit atomic.Bool
	// topicID: the topic's id before the snapshot was taken (zero: the
	// log pins no committers): its end, read from that topic, is
	// committed only on it (a topic deleted and created again meanwhile
	// behind wail's back has another, whose events below the old end
	// the group would skip: TestSnapshotEndAfterTopicCreatedAgain).
	topicID intentlog.TopicID
	// endID: the id of the end its member acknowledged (AwaitEnd; 0:
	// none), recorded once the end is committed (CommittedSnapshot).
	endID uint64
}

// Count adds n rows sent (progress, in DescribeGroup).
func (r *SnapshotRun) Count(n int) { r.local.events.Add(int64(n)) }

// Commit commits the snapshot's end as the group's positions, once every
// row was sent. It fails with ErrMembers when members joined the group
// meanwhile, or when the group has positions by now (a member joined
// from "beginning" or "latest" and left during the snapshot: its
// acknowledgements stand, the snapshot's end would move them), and in a
// shared group with ErrSnapshotLost when the claim is not (or no longer)
// this process's, or the commit returned after the process's lease could
// lapse: another process may then take the snapshot.
func (r *SnapshotRun) Commit(ctx context.Context, offsets map[int32]int64) error {
	g := r.g
	if has, err := g.hasPositions(ctx, r.t, r.name); err != nil || has {
		if err == nil {
			err = errPositionsMeanwhile
		}
		return err
	}
	// No record may name a snapshot whose end the positions are not:
	// cleared first, and this one's id written once committed.
	if err := g.recordSnapshot(ctx, r.t, r.name, 0); err != nil {
		return fmt.Errorf("group %s of %s: the snapshot's end: %w", r.name, r.t.Name, err)
	}
	if r.gr == nil {
		err := g.reset(ctx, r.t, r.name, offsets, true, r.topicID)
		r.commit.Store(err == nil)
		if err == nil {
			r.recordCommitted(ctx)
		}
		return err
	}
	st, err := g.sharedView(ctx, r.t, r.name)
	if err != nil {
		return err
	}
	if err := membersErr(st); err != nil {
		return err
	}
	if sn := st.Snapshot; sn == nil || sn.Proc != g.proc || sn.Epoch != r.epoch {
		return fmt.Errorf("%w: the group's entry gives it to another process or to none", ErrSnapshotLost)
	}
	if err := g.register(ctx, r.t, r.name, r.topicID); err != nil {
		return err
	}
	// On a log that fences, the end commits through committers fenced
	// first: applied late (the process paused, the request stuck in the
	// broker), it fails once a member took the partition.
	fs, prev, err := g.fenceAll(ctx, r.t, r.name, r.topicID)
	if err != nil {
		return fmt.Errorf("group %s of %s: the snapshot's end: %w", r.name, r.t.Name, err)
	}
	if len(prev) > 0 { // a member joined and left since the check above
		return errPositionsMeanwhile
	}
	if err := r.commitShared(ctx, fs, offsets); err != nil {
		return err
	}
	// Before Snapshot gives the claim up (CommittedSnapshot), and not
	// under the group's lock: the write may take a lease, and this
	// process's syncs, which renew every group's lease in turn, would
	// wait for it (TestSharedSnapshotRecordHoldsNoGroupLock).
	r.recordCommitted(ctx)
	return nil
}

// commitShared commits the snapshot's end of a shared group under the
// group's lock, once no member is in it and while this process holds the
// claim and its lease.
func (r *SnapshotRun) commitShared(ctx context.Context, fs map[int32]fenced, offsets map[int32]int64) error {
	g, gr := r.g, r.gr
	gr.mu.Lock()
	defer gr.mu.Unlock()
	if m := gr.core.Members(); len(m) > 0 {
		return fmt.Errorf("%w (%s): the snapshot's end is not committed", ErrMembers, strings.Join(m, ", "))
	}
	if gr.snap.epoch != r.epoch || gr.snap.lost || !gr.validNow(time.Now()) {
		return fmt.Errorf("%w: this process did not renew its lease in time", ErrSnapshotLost)
	}
	// Bounded by the end of the trusted lease, as an acknowledgement.
	cctx, cancel := context.WithDeadline(ctx, gr.sh.valid)
	defer cancel()
	if _, err := g.commitAll(cctx, r.t, r.name, fs, offsets); err != nil {
		return fmt.Errorf("group %s of %s: commit the snapshot's end: %w", r.name, r.t.Name, err)
	}
	if !gr.validNow(time.Now()) {
		// Returned after the lease could lapse: another process may have
		// claimed the snapshot and found no positions. Refused (the
		// positions committed are still ones this snapshot reached).
		return fmt.Errorf("%w: the commit returned after this process's lease lapsed", ErrSnapshotLost)
	}
	r.commit.Store(true)
	return nil
}

// snapLocalOf returns the local snapshot state of a group.
func (g *Groups) snapLocalOf(table, name string) *snapLocal {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := [2]string{table, name}
	s, ok := g.snaps[k]
	if !ok {
		s = &snapLocal{lock: make(chan struct{}, 1)}
		g.snaps[k] = s
	}
	return s
}

// Snapshot runs take, the group's start "snapshot" snapshot for member,
// unless the group has committed positions: then it returns false
// without calling take (the snapshot was over before, maybe taken by
// another member or process while this one waited). take sends the rows,
// reports them with run.Count and ends with run.Commit; its context ends
// when ctx does or when this process loses the claim (shared groups).
func (g *Groups) Snapshot(ctx context.Context, t Table, name, member string, take func(ctx context.Context, run *SnapshotRun) error) (bool, error) {
	local := g.snapLocalOf(t.Name, name)
	select {
	case local.lock <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-local.lock }()
	if has, err := g.hasPositions(ctx, t, name); err != nil || has {
		return false, err
	}
	// Read before the snapshot reads the ends it commits (take).
	id, err := g.pinID(ctx, t.Topic)
	if err != nil {
		return false, fmt.Errorf("group %s of %s: the snapshot: %w", name, t.Name, err)
	}
	run := &SnapshotRun{g: g, t: t, name: name, member: member, local: local, topicID: id}
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if g.shared != nil {
		taken, err := g.claimSnapshot(ctx, t, name, member, run)
		if err != nil || !taken {
			return false, err
		}
		defer g.releaseSnapshot(run)
		go g.watchSnapshot(tctx, cancel, run)
	}
	local.events.Store(0)
	local.member.Store(&member)
	defer local.member.Store(nil)
	err = take(tctx, run)
	if err != nil && ctx.Err() == nil && tctx.Err() != nil {
		err = fmt.Errorf("%w: it stopped at this process (%v)", ErrSnapshotLost, err)
	}
	if err == nil && !run.commit.Load() {
		err = errors.New("the snapshot ended without committing its end")
	}
	return err == nil, err
}

// hasPositions says whether the group has committed positions.
func (g *Groups) hasPositions(ctx context.Context, t Table, name string) (bool, error) {
	c, err := g.log.Committed(ctx, LogGroup(name), t.Topic)
	if err != nil {
		return false, fmt.Errorf("group %s of %s: committed offsets: %w", name, t.Name, err)
	}
	return len(c) > 0, nil
}

// wantSnapshot returns the group's state on this process (without
// loading its positions: a snapshot claim is held before the group has
// any) with member waiting for the claim; under the group's key lock, so
// that no reload replaces it meanwhile (load keeps a group with a claim
// wanted).
func (g *Groups) wantSnapshot(ctx context.Context, t Table, name, member string, events *atomic.Int64) (*grp, error) {
	k := [2]string{t.Name, name}
	unlock, err := g.lockKey(ctx, k)
	if err != nil {
		return nil, err
	}
	defer unlock()
	g.mu.Lock() // only around the map: gr.mu may wait on a commit
	gr, ok := g.groups[k]
	if !ok {
		gr = &grp{g: g, table: t.Name, name: name, topic: t.Topic, core: NewCore(t.Partitions, g.lease, nil, g.lastEpoch(k)), sessions: map[string]*Session{},
			sh: sharedLocal{obs: observed{}}}
		gr.core.shared = true
		g.groups[k] = gr
	}
	g.mu.Unlock()
	gr.mu.Lock()
	gr.snap = snapClaim{want: member, events: events}
	gr.mu.Unlock()
	return gr, nil
}

// claimSnapshot waits until this process holds the group's snapshot
// claim (true) or the group has positions (false).
func (g *Groups) claimSnapshot(ctx context.Context, t Table, name, member string, run *SnapshotRun) (bool, error) {
	gr, err := g.wantSnapshot(ctx, t, name, member, &run.local.events)
	if err != nil {
		return false, err
	}
	g.kickSync()
	tick := time.NewTicker(max(g.syncTick()/2, 5*time.Millisecond))
	defer tick.Stop()
	checked := time.Now()
	for {
		select {
		case <-ctx.Done():
			g.releaseSnapshot(run)
			return false, ctx.Err()
		case <-tick.C:
		}
		gr.mu.Lock()
		epoch, want := gr.snap.epoch, gr.snap.want
		gr.mu.Unlock()
		if epoch == 0 && want == "" {
			return false, errors.New("the group's snapshot claim was given up here (the server is shutting down)")
		}
		if epoch != 0 {
			run.gr, run.epoch = gr, epoch
			// The previous taker committed before it released the claim.
			if has, err := g.hasPositions(ctx, t, name); err != nil || has {
				g.releaseSnapshot(run)
				return false, err
			}
			return true, nil
		}
		if time.Since(checked) >= g.syncTick() {
			checked = time.Now()
			if has, err := g.hasPositions(ctx, t, name); err != nil || has {
				g.releaseSnapshot(run)
				return false, err
			}
		}
	}
}

// releaseSnapshot gives the claim up (written at the next sync).
func (g *Groups) releaseSnapshot(run *SnapshotRun) {
	g.mu.Lock()
	gr := g.groups[[2]string{run.t.Name, run.name}]
	g.mu.Unlock()
	if gr == nil {
		return
	}
	gr.mu.Lock()
	gr.snap = snapClaim{}
	gr.mu.Unlock()
	g.kickSync()
}

// watchSnapshot ends the snapshot (cancel) once this process lost its
// claim or cannot trust its lease.
func (g *Groups) watchSnapshot(ctx context.Context, cancel context.CancelFunc, run *SnapshotRun) {
	tick := time.NewTicker(max(g.syncTick()/2, 5*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		gr := run.gr
		gr.mu.Lock()
		lost := gr.snap.epoch != run.epoch || gr.snap.lost || !gr.validNow(time.Now())
		if lost && gr.snap.epoch == run.epoch {
			// Final: a sync that renews the lease later (the store back)
			// must not let the stopped snapshot commit its end (Commit).
			gr.snap.lost = true
		}
		gr.mu.Unlock()
		if lost {
			g.logger.Warn("consumer group: this process lost its claim on the group's snapshot (its lease on the group's entry lapsed: the store was slow or out of reach, or the process was paused); "+
				"the snapshot stops here and another process takes it again from the start",
				"table", run.t.Name, "group", run.name, "action", "check the store (`wail doctor`); the member that took it gets an error and consumes again")
			cancel()
			return
		}
	}
}

// SnapshotProgress returns who takes the group's snapshot ("": none) and
// the rows sent: on this process, or (shared groups) as the taker last
// wrote them in the group's entry.
func (g *Groups) SnapshotProgress(ctx context.Context, t Table, name string) (string, int64, error) {
	local := g.snapLocalOf(t.Name, name)
	if m := local.member.Load(); m != nil {
		return *m, local.events.Load(), nil
	}
	if g.shared == nil {
		return "", 0, nil
	}
	st, err := g.sharedView(ctx, t, name)
	if err != nil {
		return "", 0, err
	}
	if sn := st.Snapshot; sn != nil {
		return sn.Member, sn.Events, nil
	}
	return "", 0, nil
}

// membersErr is ErrMembers when the entry lists members.
func membersErr(st *SharedState) error {
	if len(st.Members) == 0 {
		return nil
	}
	var m []string
	for _, mb := range st.Members {
		m = append(m, mb.ID)
	}
	return fmt.Errorf("%w on other processes (%s): stop them first (a process that died keeps its members listed for at most api.group_lease_timeout)",
		ErrMembers, strings.Join(m, ", "))
}
