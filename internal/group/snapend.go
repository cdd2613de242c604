package group

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// The snapshot's end, acknowledged. A member that asks for it (a client
// that acknowledges snapshot rows) is told when the rows are over and
// answers once it processed them all; only then is the end committed as
// the group's positions. Without it the end is committed once every row
// was sent, and a member that dies with rows received but not processed
// leaves the group past them: no member gets them again.

// ErrSnapshotUnacked: the member taking a group's snapshot did not
// acknowledge its end within the group lease; nothing is committed, and
// the next member takes the snapshot again.
var ErrSnapshotUnacked = errors.New("the snapshot's end was not acknowledged in time")

// endWait is a snapshot run waiting for its member's acknowledgement.
type endWait struct {
	member string
	// id names this wait: the member's acknowledgement carries it back.
	// The member id alone does not tell snapshots apart: a member whose
	// stream ended (its snapshot aborted) comes back under the same id,
	// and its previous stream's late acknowledgement would end the new
	// snapshot, none of whose rows it processed.
	id   uint64
	once sync.Once
	done chan struct{}
}

// AwaitEnd tells the member that the rows are over (tell, called once the
// acknowledgement can be taken, with the id the acknowledgement must
// carry) and waits for it (Groups.AckSnapshotEnd) for at most the group
// lease, as for any event delivered. It fails with ErrSnapshotUnacked past
// it, with ctx's error or with tell's.
func (r *SnapshotRun) AwaitEnd(ctx context.Context, tell func(id uint64) error) error {
	w := &endWait{member: r.member, id: snapshotID(), done: make(chan struct{})}
	r.local.end.Store(w)
	defer r.local.end.CompareAndSwap(w, nil)
	if err := tell(w.id); err != nil {
		return err
	}
	timer := time.NewTimer(r.g.lease)
	defer timer.Stop()
	select {
	case <-w.done:
		r.endID = w.id
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		select {
		case <-w.done: // it came with the timer: taken
			r.endID = w.id
			return nil
		default:
		}
		return fmt.Errorf("%w: member %q of group %q of %s did not acknowledge the snapshot's end within %s (api.group_lease_timeout): "+
			"acknowledge every snapshot row once processed (client.Consumer.Ack), then consume again: the snapshot is taken again",
			ErrSnapshotUnacked, r.member, r.name, r.t.Name, r.g.lease)
	}
}

// snapshotID returns a snapshot end's id: random (a process that
// restarted numbers none again), never 0 (an acknowledgement without one).
func snapshotID() uint64 {
	for {
		if id := rand.Uint64(); id != 0 {
			return id
		}
	}
}

// AckSnapshotEnd is member's acknowledgement of the snapshot it takes of
// group name, whose end was told with id: every row was processed. It
// fails with ErrNotMember when no snapshot of that member waits for it on
// this process, or when id is not that snapshot's (an earlier snapshot's
// acknowledgement).
func (g *Groups) AckSnapshotEnd(t Table, name, member string, id uint64) error {
	g.mu.Lock()
	local := g.snaps[[2]string{t.Name, name}] // not made here: any name may be asked
	g.mu.Unlock()
	var w *endWait
	if local != nil {
		w = local.end.Load()
	}
	if w == nil || w.member != member {
		return fmt.Errorf("%w: no snapshot of member %q of group %q of %s waits for its end's acknowledgement on this server "+
			"(its stream ended, the snapshot was aborted, or its end was acknowledged already): consume again",
			ErrNotMember, member, name, t.Name)
	}
	if w.id != id {
		return fmt.Errorf("%w: the snapshot of member %q of group %q of %s that waits for its end's acknowledgement is not snapshot %d "+
			"(an earlier stream's, which ended: its rows go again with the snapshot taken now): acknowledge the rows of the stream in place",
			ErrNotMember, member, name, t.Name, id)
	}
	w.once.Do(func() { close(w.done) })
	return nil
}

// Whose snapshot the group's positions are. A member that acknowledged
// its snapshot's end and whose stream dropped before its join does not
// know whether the end was committed: the drop may have cancelled the
// commit (or the process died), and another member, waiting, may have
// taken the snapshot and committed its own end before this one joins
// again. Its join says it (CommittedSnapshot): the id of the snapshot
// whose end the group's positions were committed at, kept in the group
// registry (a record of its own per group: key "table/group/snapshot",
// which List skips, value the table's creation time and the id,
// big-endian). A snapshot's commit clears it first (0) and writes its
// id once the commit succeeded, so the record never names a snapshot
// whose end the positions are not; a reset clears it. 0 says nothing is
// known (positions of a member's start, a reset, a commit whose record
// could not be written, or a wail before it).

// snapshotRecordKey is the registry key of a group's committed snapshot.
func snapshotRecordKey(t Table, name string) []byte {
	return []byte(t.Name + "/" + name + "/snapshot")
}

// recordSnapshot writes id as the group's committed snapshot (0: none
// known).
func (g *Groups) recordSnapshot(ctx context.Context, t Table, name string, id uint64) error {
	v := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(t.Created)), id)
	if err := g.log.CreateTopic(ctx, registryTopic, 1, intentlog.TopicOptions{Compact: true}); err != nil {
		return fmt.Errorf("group registry: %w", err)
	}
	if err := g.log.Append(ctx, registryTopic, []*intentlog.Record{{Key: snapshotRecordKey(t, name), Value: v}}); err != nil {
		return fmt.Errorf("group registry: the group's committed snapshot: %w", err)
	}
	return nil
}

// recordCommitted writes the id of the snapshot whose end run just
// committed (acknowledged by its member; 0 otherwise: nothing to write,
// the commit cleared the record). Best effort, and not under the
// snapshot's context, which the member's drop ends: without it, a member
// whose acknowledged end was not committed is not told that this one was
// (its join says nothing, and it goes on as before).
func (r *SnapshotRun) recordCommitted(ctx context.Context) {
	if r.endID == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.g.lease)
	defer cancel()
	if err := r.g.recordSnapshot(ctx, r.t, r.name, r.endID); err != nil {
		r.g.logger.Warn("consumer group: could not record which snapshot's end the group's positions are; a member whose own snapshot's end "+
			"was not committed (its stream dropped first) and that joins again is not told, and keeps its rows",
			"table", r.t.Name, "group", r.name, "err", err, "action", "check the log (`wail doctor`)")
	}
}

// CommittedSnapshot returns the id of the snapshot (SnapshotRun.AwaitEnd's)
// whose end the group's positions were committed at, 0 when not known. In
// a group shared by processes it first waits, at most a lease, while
// another process holds the snapshot claim: a taker writes the id after
// its commit, before it gives the claim up, and a member of another
// process may have found its positions and joined in between. It fails
// past two leases (a store or a registry that does not answer): the
// member asking has joined, and its partitions wait for its join
// (TestCommittedSnapshotHungRegistry).
func (g *Groups) CommittedSnapshot(ctx context.Context, t Table, name string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*g.lease)
	defer cancel()
	if g.shared != nil {
		deadline := time.Now().Add(g.lease)
		for {
			st, err := g.sharedView(ctx, t, name)
			if err != nil {
				return 0, err
			}
			if st.Snapshot == nil || time.Now().After(deadline) {
				break
			}
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(g.syncTick()):
			}
		}
	}
	key := string(snapshotRecordKey(t, name))
	var last []byte
	if err := g.scanRegistry(ctx, func(rec intentlog.Record) {
		if string(rec.Key) == key {
			last = rec.Value
		}
	}); err != nil {
		return 0, fmt.Errorf("group %s of %s: whose snapshot's end the positions are: %w", name, t.Name, err)
	}
	if len(last) != 16 || int64(binary.BigEndian.Uint64(last)) != t.Created {
		return 0, nil // none, or of a table dropped since
	}
	return binary.BigEndian.Uint64(last[8:]), nil
}
