package group

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// A group shared by processes commits each partition's position through
// the committer its owner got when it took the partition, on a log that
// can fence (intentlog.PartitionFencer: Kafka). Taking a partition fences
// every earlier committer of it before its committed offset is read: a
// commit of a previous owner still on its way (its process paused past
// its lease, its request slow in the broker) fails instead of moving the
// position back under the new owner. On a log that cannot fence, commits
// are bounded by the process's lease only (DESIGN.md, "Groups across
// processes").

// fenced is the committer of a partition taken here at an epoch.
type fenced struct {
	epoch uint64
	c     intentlog.FencedCommitter
}

// fence fences each claimed partition, in parallel, and then reads its
// committed offset (final: no earlier owner commits after the fence) with
// its leader epoch (-1: none); it returns the committers and offsets of
// those fenced (a partition never committed has none) and the errors of
// the others.
// Each committer commits only on the topic with id (zero: the topic's id
// at the fence; fencePartition).
func (g *Groups) fence(ctx context.Context, name, topic string, id intentlog.TopicID, claims []Grant) (map[int32]fenced, map[int32]intentlog.EpochOffset, error) {
	var mu sync.Mutex
	out, committed := map[int32]fenced{}, map[int32]intentlog.EpochOffset{}
	var errs []error
	var wg sync.WaitGroup
	for _, c := range claims {
		wg.Go(func() {
			fc, err := g.fencePartition(ctx, name, topic, c.Partition, id)
			var o intentlog.EpochOffset
			var ok bool
			if err == nil {
				o, ok, err = intentlog.CommittedFenced(ctx, fc)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("partition %d: %w", c.Partition, err))
				return
			}
			out[c.Partition] = fenced{epoch: c.Epoch, c: fc}
			if ok {
				committed[c.Partition] = o
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return out, committed, fmt.Errorf("fence the claimed partitions (released at the next sync): %w", errors.Join(errs...))
	}
	return out, committed, nil
}

// fencePartition fences p of group name's topic; its committer commits
// only on the topic with id when the log can pin it (a zero id pins the
// topic's id now).
func (g *Groups) fencePartition(ctx context.Context, name, topic string, p int32, id intentlog.TopicID) (intentlog.FencedCommitter, error) {
	if pf, ok := g.fencer.(intentlog.PinnedFencer); ok {
		return pf.FencePartitionOf(ctx, LogGroup(name), topic, p, id)
	}
	return g.fencer.FencePartition(ctx, LogGroup(name), topic, p)
}

// pinID returns the id of topic now on a log that pins its committers
// (Kafka), zero otherwise (or when the topic has none).
func (g *Groups) pinID(ctx context.Context, topic string) (intentlog.TopicID, error) {
	_, pins := g.fencer.(intentlog.PinnedFencer)
	ids, ok := g.log.(intentlog.TopicIDDeleter)
	if !pins || !ok {
		return intentlog.TopicID{}, nil
	}
	m, err := ids.TopicIDs(ctx, topic)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		return intentlog.TopicID{}, nil
	case err != nil:
		return intentlog.TopicID{}, fmt.Errorf("topic id: %w", err)
	}
	return m[topic], nil
}

// commitFenced commits offsets through the partitions' committers, in
// parallel, each with its leader epoch in leaders (absent: none); it
// returns the error of each partition that failed.
func commitFenced(ctx context.Context, cs map[int32]fenced, offsets map[int32]int64, leaders map[int32]int32) map[int32]error {
	var mu sync.Mutex
	errs := map[int32]error{}
	var wg sync.WaitGroup
	for p, o := range withEpochs(offsets, leaders) {
		f, ok := cs[p]
		if !ok {
			errs[p] = fmt.Errorf("%w: partition %d has no committer here", ErrNotOwner, p)
			continue
		}
		wg.Go(func() {
			if err := intentlog.CommitFenced(ctx, f.c, o); err != nil {
				mu.Lock()
				errs[p] = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errs
}

// ownCommitters returns the committers of an unshared group's
// acknowledged partitions at their epochs, fencing each partition that
// has none here at its epoch (the owner's first commit); under gr.mu.
// The fence fails every commit of an earlier committer of the partition
// that the bus applies after it. A commit of an earlier owner that landed
// before the fence (its acknowledgement had timed out, after this owner's
// grant) is read after it: it becomes the committed offset, and
// acknowledgements at or below it are dropped from commit (durable
// already), so that the first commit never moves the position back
// (TestLateAckLandsBeforeFirstCommit).
func (gr *grp) ownCommitters(ctx context.Context, commit map[int32]int64, epochs map[int32]uint64) (map[int32]fenced, error) {
	cs := map[int32]fenced{}
	for p := range commit {
		f, err := gr.ownCommitter(ctx, p, epochs[p])
		if err != nil {
			return nil, err
		}
		cs[p] = f
	}
	for p, o := range commit {
		if o <= gr.core.Committed(p) {
			delete(commit, p)
		}
	}
	return cs, nil
}

// ownCommitter returns the committer of an unshared group's partition p
// at its owner's epoch, fencing p when it has none here at that epoch
// (ownCommitters); under gr.mu. Its committer commits only on the topic
// the group was loaded from (grp.topicID), whose offsets the core holds
// and whose records its members' readers read (Session.read): made at
// the first acknowledgement, it would otherwise take the id of a topic
// deleted and created again since, and commit the old topic's offset on
// it, where the group's next member skips the new topic's events below
// it (TestFirstAckAfterTopicCreatedAgain).
func (gr *grp) ownCommitter(ctx context.Context, p int32, epoch uint64) (fenced, error) {
	if f, ok := gr.fences[p]; ok && f.epoch == epoch {
		return f, nil
	}
	c, err := gr.g.fencePartition(ctx, gr.name, gr.topic, p, gr.topicID)
	if err != nil {
		return fenced{}, fmt.Errorf("fence partition %d: %w", p, err)
	}
	o, ok, err := intentlog.CommittedFenced(ctx, c) // final: no earlier committer commits after the fence
	if err != nil {
		return fenced{}, fmt.Errorf("partition %d: committed offset after its fence: %w", p, err)
	}
	if ok {
		gr.core.Commit(p, epoch, o.Offset, time.Now())
		gr.knownAt(p, o)
	}
	f := fenced{epoch: epoch, c: c}
	if gr.fences == nil {
		gr.fences = map[int32]fenced{}
	}
	gr.fences[p] = f
	return f, nil
}

// fenceAll fences every partition of a group (Reset, a shared snapshot's
// end): no committer of a member that was in it can commit after; it
// returns the committers (nil on a log that cannot fence)
// and the group's committed positions read after the fence (on a log
// that fences, final: a member that takes a partition later fences the
// committers returned first).
// Each committer commits only on the topic with id (zero: the topic's id
// at the fence).
func (g *Groups) fenceAll(ctx context.Context, t Table, name string, id intentlog.TopicID) (map[int32]fenced, map[int32]int64, error) {
	if g.fencer == nil {
		c, err := g.log.Committed(ctx, LogGroup(name), t.Topic)
		if err != nil {
			return nil, nil, fmt.Errorf("committed offsets: %w", err)
		}
		return nil, c, nil
	}
	claims := make([]Grant, t.Partitions)
	for p := range t.Partitions {
		claims[p] = Grant{Partition: p}
	}
	fs, committed, err := g.fence(ctx, name, t.Topic, id, claims)
	if err != nil {
		return nil, nil, err
	}
	return fs, intentlog.PlainOffsets(committed), nil
}

// commitAll commits offsets of a group without members (Reset, a shared
// snapshot's end, an unshared group's start): through the committers
// fenceAll returned when there are (a commit the bus applies late then
// fails once a member of any process took the partition, instead of
// moving its position back), else unfenced. Each offset carries the
// leader epoch of the event before it, read from the log (epochs.go),
// which it returns. A partition fenced meanwhile fails with ErrMembers.
func (g *Groups) commitAll(ctx context.Context, t Table, name string, fs map[int32]fenced, offsets map[int32]int64) (map[int32]intentlog.EpochOffset, error) {
	at, err := intentlog.EpochsBefore(ctx, g.log, t.Topic, offsets)
	if err != nil {
		return nil, err
	}
	if fs == nil {
		return at, intentlog.CommitAt(ctx, g.log, LogGroup(name), t.Topic, at)
	}
	var out []error
	for p, err := range commitFenced(ctx, fs, offsets, leadersOf(at)) {
		if errors.Is(err, intentlog.ErrFenced) {
			err = fmt.Errorf("%w: partition %d was taken by a member meanwhile: %w", ErrMembers, p, err)
		}
		out = append(out, err)
	}
	return at, errors.Join(out...)
}

// committers returns the committers of an acknowledgement's partitions at
// their epochs (under gr.mu); a partition without one here is refused and
// removed from commit.
func (gr *grp) committers(commit map[int32]int64, epochs map[int32]uint64, refused map[int32]error) map[int32]fenced {
	cs := map[int32]fenced{}
	for p := range commit {
		if f, ok := gr.fences[p]; ok && f.epoch == epochs[p] {
			cs[p] = f
			continue
		}
		refused[p] = fmt.Errorf("%w: partition %d: it has no committer here at epoch %d (it moved)", ErrNotOwner, p, epochs[p])
		delete(commit, p)
	}
	return cs
}

// fencedResult sorts the failed commits of an acknowledgement: a
// partition whose committer was fenced (another process took it) is
// refused and removed from commit; another failure is returned.
func fencedResult(errs map[int32]error, commit map[int32]int64, refused map[int32]error) error {
	var out []error
	for p, err := range errs {
		if errors.Is(err, intentlog.ErrFenced) {
			refused[p] = fmt.Errorf("%w: partition %d: another process took it: %w", ErrNotOwner, p, err)
			delete(commit, p)
			continue
		}
		out = append(out, err)
	}
	return errors.Join(out...)
}

// dropFenced gives up p here when its committer at epoch was fenced while
// this process still holds p at that epoch (a reset's fence, or another
// process whose claim this one has not read yet); under gr.mu. Kept, its
// member's acknowledgements were refused until the member's lease
// expired; released, the next sync claims it again if the entry still
// gives it here (a new epoch, fenced anew, from the committed offset),
// or leaves it to the process that took it.
func (gr *grp) dropFenced(p int32, epoch uint64) {
	if f, ok := gr.fences[p]; !ok || f.epoch != epoch {
		return
	}
	delete(gr.fences, p)
	if _, e := gr.core.Owner(p); e == epoch {
		gr.apply(gr.core.Revoke(p))
	}
	gr.g.kickSync()
}

// hexID is id in hex ("": zero).
func hexID(id intentlog.TopicID) string {
	if id == (intentlog.TopicID{}) {
		return ""
	}
	return fmt.Sprintf("%x", id[:])
}
