package group

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
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
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		select {
		case <-w.done: // it came with the timer: taken
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
