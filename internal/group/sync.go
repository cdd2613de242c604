package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
)

// ErrProcessLease: this process could not renew its lease on the group's
// shared entry in time (the store was unreachable or slow): its members'
// partitions were taken from them here, and may be another process's.
var ErrProcessLease = errors.New("this process's lease on the group lapsed")

// Sharing configures groups shared by several processes.
type Sharing struct {
	// Store holds each group's entry (the store's catalog).
	Store store.CatalogSwapper
	// Process names this process (unique: host, pid and a random part).
	Process string
	// Lease: a process that does not renew its lease on a group for
	// this long loses its members' partitions.
	Lease  time.Duration
	Logger *slog.Logger
	// Health gets a degraded condition while a group's entry cannot be
	// synced (nil: none).
	Health *health.Registry
	// Exclusive: each group has one owner of all its partitions at a
	// time, its first member (webhook sinks: one deliverer per sink).
	Exclusive bool
}

// Share makes the groups of this process members of groups shared by
// every process that shares o.Store (shared.go). Call it before any Join.
func (g *Groups) Share(o Sharing) *Groups {
	if o.Logger == nil {
		o.Logger = g.logger
	}
	g.shared, g.proc, g.procLease, g.logger, g.health, g.exclusive = o.Store, o.Process, o.Lease, o.Logger, o.Health, o.Exclusive
	g.wg.Add(1)
	go g.syncLoop()
	return g
}

// sharedState of a group of this process (under gr.mu).
type sharedLocal struct {
	obs observed
	// valid: until when this process may deliver and commit for the
	// partitions it holds (4/5 of a lease after the start of its last
	// write of the entry).
	valid time.Time
	// renewed: the start of its last write.
	renewed time.Time
	// listed: the entry lists this process (it must write to leave it).
	listed bool
	// failing: the last sync failed (logged and on health once), with
	// lastErr.
	failing bool
	lastErr error
	// fixed is closed once the entry holds the group's start of the
	// partitions starts lists (nil: none to wait for; waitStarts).
	fixed chan struct{}
}

// syncTick is how often a process syncs each group's shared entry.
func (g *Groups) syncTick() time.Duration {
	return min(max(g.procLease/8, 10*time.Millisecond), time.Second)
}

// syncLoop syncs every group with members here (or listed in its
// entry) at each tick, and at once after a join or leave.
func (g *Groups) syncLoop() {
	defer g.wg.Done()
	t := time.NewTicker(g.syncTick())
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-g.stop
		cancel()
	}()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		case <-g.kick:
		}
		g.mu.Lock()
		grs := make([]*grp, 0, len(g.groups))
		for _, gr := range g.groups {
			grs = append(grs, gr)
		}
		g.mu.Unlock()
		for _, gr := range grs {
			err := g.sync(ctx, gr)
			if ctx.Err() == nil {
				g.report(gr, err)
			}
		}
	}
}

// lapse takes every partition from this process's members once its
// lease lapsed; under gr.mu.
func (gr *grp) lapse(now time.Time) {
	held := gr.core.Held()
	if len(held) == 0 || now.Before(gr.sh.valid) {
		return
	}
	for p := range held {
		gr.apply(gr.core.Revoke(p))
	}
}

// validNow says whether this process may deliver and commit for the
// partitions it holds; under gr.mu.
func (gr *grp) validNow(now time.Time) bool {
	return gr.g.shared == nil || now.Before(gr.sh.valid)
}

// sync reads the group's entry, releases what this process must give up,
// writes the entry (compare-and-set, again on a concurrent change) and
// grants what it claimed.
func (g *Groups) sync(ctx context.Context, gr *grp) error {
	name := SharedEntry(gr.table, gr.name)
	for range 8 {
		gr.mu.Lock()
		gr.lapse(time.Now())
		idle := len(gr.sessions) == 0 && !gr.sh.listed && len(gr.core.Held()) == 0 && gr.snap.want == "" && gr.snap.epoch == 0
		gr.mu.Unlock()
		if idle {
			return nil
		}
		rctx, cancel := context.WithTimeout(ctx, g.procLease/4)
		cur, _, err := g.shared.SwapTable(rctx, name, nil, nil)
		cancel()
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		st, err := decodeShared(cur)
		if err != nil {
			return err
		}
		start := time.Now()
		gr.mu.Lock()
		l := Local{Proc: g.proc, Members: gr.core.Members(), Held: gr.core.Held(), SnapEpoch: gr.snap.epoch,
			Busy: map[int32]bool{}, Draining: map[int32]bool{}, Starts: gr.starts, Created: gr.created, StartsTopic: gr.startsTopic}
		for p := range l.Held {
			l.Busy[p], l.Draining[p] = gr.core.Busy(p), gr.core.Revoking(p)
			if gr.core.Committed(p) >= 0 {
				if l.Committed == nil {
					l.Committed = map[int32]bool{}
				}
				l.Committed[p] = true
			}
		}
		if l.SnapEpoch == 0 {
			l.SnapWant = gr.snap.want
		}
		if gr.snap.events != nil {
			l.SnapEvents = gr.snap.events.Load()
		}
		plan := planShared(st, l, gr.table, gr.name, gr.core.n, g.procLease, gr.sh.obs, start, start.Sub(gr.sh.renewed) >= g.procLease/4, g.exclusive)
		if plan.SnapLost && gr.snap.epoch == l.SnapEpoch {
			gr.snap.lost = true // its snapshot stops (watchSnapshot)
		}
		if plan.Err != nil {
			for p := range l.Held {
				plan.Release = append(plan.Release, p)
			}
		}
		for _, p := range plan.Release {
			gr.apply(gr.core.Revoke(p)) // waits for a commit in flight: it holds gr.mu
		}
		for _, p := range plan.Drain {
			gr.apply(gr.core.Drain(p, start)) // released at a sync once drained (Handover)
		}
		gr.mu.Unlock()
		if plan.Err != nil {
			return plan.Err
		}
		if len(plan.Expired) > 0 {
			g.logger.Info("consumer group: processes stopped renewing their lease; their partitions go to live members",
				"table", gr.table, "group", gr.name, "processes", plan.Expired)
		}
		if plan.Next == nil {
			gr.mu.Lock()
			_, gr.sh.listed = st.Procs[g.proc]
			gr.startsWritten(st.Starts)
			gr.mu.Unlock()
			return nil
		}
		wctx, cancel := context.WithTimeout(ctx, g.procLease/4)
		_, swapped, err := g.shared.SwapTable(wctx, name, cur, plan.Next.encode())
		cancel()
		if err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		if !swapped {
			continue // another process wrote it: again on what it wrote
		}
		gr.mu.Lock()
		_, gr.sh.listed = plan.Next.Procs[g.proc]
		gr.startsWritten(plan.Next.Starts)
		if gr.sh.listed {
			gr.sh.renewed, gr.sh.valid = start, start.Add(trusted(g.procLease))
		}
		if plan.SnapClaim != 0 && gr.snap.epoch == 0 && gr.snap.want == l.SnapWant {
			gr.snap.epoch = plan.SnapClaim // (released meanwhile: the next sync removes it)
		}
		gr.mu.Unlock()
		if len(plan.Claims) > 0 {
			return g.grant(ctx, gr, plan)
		}
		return nil
	}
	return errors.New("the entry kept changing under this process's writes")
}

// startsWritten notes that the group's entry holds starts (written by
// this process or another): a Join waiting for the group's start to be
// fixed (waitStarts) returns once they cover this process's; under gr.mu.
func (gr *grp) startsWritten(s *SharedStarts) {
	if gr.sh.fixed != nil && s.covers(gr.created, gr.starts) {
		close(gr.sh.fixed)
		gr.sh.fixed = nil
	}
}

// startOf is where a claimed partition without a committed position
// starts: at the group's start in its entry (s), unless spent (the
// partition had a committed position, which the log lost), else where
// this process's join put it, with the id (hex) of the topic it is of
// ("": unknown); under gr.mu.
func (gr *grp) startOf(s *SharedStarts, p int32) (int64, string, bool) {
	if s != nil && s.Created == gr.created {
		if o, ok := s.Offsets[p]; ok && o != startSpent {
			return o, s.Topic, true
		}
	}
	o, ok := gr.starts[p]
	return o, gr.startsTopic, ok
}

// waitStarts waits until the group's entry holds the start of the
// partitions this process's join found without a committed position
// (startsWritten), so that a member is answered only once the group's
// start is fixed for every process: one that joins later, and claims a
// partition first, starts it there, not at the end of its own join. It
// waits at most two process leases (the store is out of reach: the join
// fails, to be retried). A member ended meanwhile (its table dropped)
// fails it at once with why.
func (g *Groups) waitStarts(ctx context.Context, s *Session) error {
	gr := s.gr
	gr.mu.Lock()
	fixed := gr.sh.fixed
	gr.mu.Unlock()
	if fixed == nil {
		return nil
	}
	g.kickSync()
	t := time.NewTimer(2 * g.procLease)
	defer t.Stop()
	select {
	case <-fixed:
		return nil
	case <-s.done:
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		gr.mu.Lock()
		why := gr.sh.lastErr
		gr.mu.Unlock()
		if why != nil { // (the syncs fail: say why, ErrPartitions kept)
			return fmt.Errorf("group %s of %s: the group's start could not be written to its shared entry within %s: %w: retry",
				gr.name, gr.table, 2*g.procLease, why)
		}
		return fmt.Errorf("group %s of %s: the group's start could not be written to its shared entry within %s (is the store reachable?): retry",
			gr.name, gr.table, 2*g.procLease)
	case <-g.stop:
		return errors.New("the server is shutting down")
	}
}

// grant starts the partitions this process claimed, each at its committed
// offset, read now: the previous owner stopped committing before it
// released the partition (or its lease lapsed). On a log that fences,
// each claimed partition is fenced before the read, so that no commit of
// a previous owner lands after it (fence.go). A partition never committed
// starts where this process's load put it, committed first, within the
// lease, as an acknowledgement is: only the owner commits, so no start
// lands over another member's acknowledgements. A partition that could
// not be fenced or started is not granted: released at the next sync.
func (g *Groups) grant(ctx context.Context, gr *grp, plan Plan) error {
	cctx, cancel := context.WithTimeout(ctx, g.procLease/4)
	defer cancel()
	gr.mu.Lock()
	valid, topic := gr.sh.valid, gr.topic // (a Join may reload the group in place)
	gr.mu.Unlock()
	vctx, vcancel := context.WithDeadline(cctx, valid)
	defer vcancel()
	var fences map[int32]fenced
	var committed map[int32]intentlog.EpochOffset // with their leader epochs (epochs.go)
	var ferr error
	if g.fencer != nil {
		// Pinned to the topic's id at the fence, read before the
		// committed offsets (of that id) the readers start at.
		fences, committed, ferr = g.fence(vctx, gr.name, topic, intentlog.TopicID{}, plan.Claims)
	} else {
		var err error
		if committed, err = intentlog.CommittedAt(cctx, g.log, LogGroup(gr.name), topic); err != nil {
			return fmt.Errorf("committed offsets (the claimed partitions are released at the next sync): %w", err)
		}
	}
	starts := map[int32]int64{}
	var replaced []int32 // starts of a topic deleted and created again since
	gr.mu.Lock()
	for _, c := range plan.Claims {
		f, ok := fences[c.Partition]
		if g.fencer != nil && !ok {
			continue // not fenced: not granted
		}
		if _, ok := committed[c.Partition]; !ok {
			if o, of, ok := gr.startOf(plan.Next.Starts, c.Partition); ok {
				starts[c.Partition] = o
				if ft := fencedTopic(f); of != "" && ft != "" && of != ft {
					replaced = append(replaced, c.Partition)
				}
			}
		}
	}
	gr.mu.Unlock()
	// A start read from a topic deleted and created again (behind
	// wail's back) since: every event of the topic fenced came after
	// it, so the partition starts at its start, not at the old topic's
	// offset, below which the new topic's events would be skipped
	// (TestSharedStartAfterTopicCreatedAgain).
	for _, p := range replaced {
		start, _, err := g.log.Bounds(vctx, topic, p)
		if err != nil {
			delete(fences, p) // not granted: released at the next sync
			delete(starts, p)
			ferr = errors.Join(ferr, fmt.Errorf("the start of partition %d, whose topic was deleted and created again "+
				"(released at the next sync): %w", p, err))
			continue
		}
		starts[p] = start
	}
	if len(starts) > 0 {
		// With the leader epoch of the event before each (epochs.go).
		at, err := intentlog.EpochsBefore(vctx, g.log, topic, starts)
		switch {
		case err != nil && g.fencer == nil:
			return fmt.Errorf("the leader epochs of the starts of claimed partitions (released at the next sync): %w", err)
		case err != nil:
			for p := range starts {
				delete(fences, p) // not granted: released at the next sync
			}
			ferr = errors.Join(ferr, fmt.Errorf("the leader epochs of the starts of claimed partitions (released at the next sync): %w", err))
		case g.fencer != nil:
			for p, err := range commitFenced(vctx, fences, starts, leadersOf(at)) {
				delete(fences, p)
				delete(at, p)
				ferr = errors.Join(ferr, fmt.Errorf("commit the start of partition %d (released at the next sync): %w", p, err))
			}
			maps.Copy(committed, at)
		default:
			if err := intentlog.CommitAt(vctx, g.log, LogGroup(gr.name), topic, at); err != nil {
				return fmt.Errorf("commit the start of claimed partitions (released at the next sync): %w", err)
			}
			maps.Copy(committed, at)
		}
	}
	gr.mu.Lock()
	defer gr.mu.Unlock()
	if !gr.validNow(time.Now()) {
		return ferr // released at the next sync
	}
	live := map[string]bool{}
	for _, id := range gr.core.Members() {
		live[id] = true
	}
	for i, c := range plan.Claims {
		if !live[plan.ClaimMembers[i]] {
			continue // it left meanwhile: released at the next sync
		}
		if g.fencer != nil {
			f, ok := fences[c.Partition]
			if !ok {
				continue // not fenced: released at the next sync
			}
			if gr.fences == nil {
				gr.fences = map[int32]fenced{}
			}
			gr.fences[c.Partition] = f
		}
		at, ok := committed[c.Partition]
		if !ok {
			at = intentlog.EpochOffset{Offset: -1, Epoch: -1}
		}
		ch := gr.core.Grant(c.Partition, plan.ClaimMembers[i], c.Epoch, at.Offset)
		gr.knownAt(c.Partition, at) // before apply starts the reader
		gr.apply(ch)
	}
	return ferr
}

// kickSync syncs the groups at once (a member joined or left).
func (g *Groups) kickSync() {
	if g.shared == nil {
		return
	}
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// sharedView reads a group's entry for Describe and Reset.
func (g *Groups) sharedView(ctx context.Context, t Table, name string) (*SharedState, error) {
	cur, _, err := g.shared.SwapTable(ctx, SharedEntry(t.Name, name), nil, nil)
	if err != nil {
		return nil, fmt.Errorf("group %s of %s: read its shared entry: %w", name, t.Name, err)
	}
	return decodeShared(cur)
}

// healthComponent is a shared group's condition on the health registry.
func healthComponent(gr *grp) string { return "group/" + gr.table + "/" + gr.name }

// report says when a group's syncs start and stop failing (once each):
// in the log and as a degraded condition.
func (g *Groups) report(gr *grp, err error) {
	gr.mu.Lock()
	was := gr.sh.failing
	gr.sh.failing, gr.sh.lastErr = err != nil, err
	gr.mu.Unlock()
	switch {
	case err != nil && !was:
		reason := fmt.Sprintf("consumer group %s of %s cannot sync with the other processes: %v; "+
			"its members here keep their partitions until this process's lease lapses (4/5 of api.group_lease_timeout), then lose them to members on other processes", gr.name, gr.table, err)
		action := "check the store (`wail doctor`): the group's membership lives in its catalog; the condition clears at the next sync"
		g.logger.Warn(reason, "action", action)
		if g.health != nil {
			g.health.Set(healthComponent(gr), health.Degraded, reason, action)
		}
	case err == nil && was:
		g.logger.Info("consumer group syncs with the other processes again", "table", gr.table, "group", gr.name)
		if g.health != nil {
			g.health.Clear(healthComponent(gr))
		}
	}
}

// Owns reports whether the member still owns p at epoch, here and now
// (in a shared group: with this process's lease trusted). A deliverer
// that works on a batch for long (a webhook sink retrying) asks before
// each attempt.
func (s *Session) Owns(p int32, epoch uint64) bool {
	s.gr.mu.Lock()
	defer s.gr.mu.Unlock()
	id, e := s.gr.core.Owner(p)
	return id == s.id && e == epoch && s.gr.validNow(time.Now())
}

// fencedTopic is the id (hex) of the topic f's committer commits on ("":
// unknown).
func fencedTopic(f fenced) string {
	if tr, ok := f.c.(intentlog.TopicIDReader); ok {
		return hexID(tr.TopicID())
	}
	return ""
}
