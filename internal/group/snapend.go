package group

import (
	"context"
	"errors"
	"fmt"
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
	once   sync.Once
	done   chan struct{}
}

// AwaitEnd tells the member that the rows are over (tell, called once the
// acknowledgement can be taken) and waits for it (Groups.AckSnapshotEnd)
// for at most the group lease, as for any event delivered. It fails with
// ErrSnapshotUnacked past it, with ctx's error or with tell's.
func (r *SnapshotRun) AwaitEnd(ctx context.Context, tell func() error) error {
	w := &endWait{member: r.member, done: make(chan struct{})}
	r.local.end.Store(w)
	defer r.local.end.CompareAndSwap(w, nil)
	if err := tell(); err != nil {
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
		return fmt.Errorf("%w: member %q of group %q of %s did not acknowledge the snapshot's end within %s (api.group_lease_timeout): "+
			"acknowledge every snapshot row once processed (client.Consumer.Ack), then consume again: the snapshot is taken again",
			ErrSnapshotUnacked, r.member, r.name, r.t.Name, r.g.lease)
	}
}

// AckSnapshotEnd is member's acknowledgement of the snapshot it takes of
// group name: every row was processed. It fails with ErrNotMember when no
// snapshot of that member waits for it on this process.
func (g *Groups) AckSnapshotEnd(t Table, name, member string) error {
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
	w.once.Do(func() { close(w.done) })
	return nil
}
