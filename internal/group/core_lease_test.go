package group

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// The leases and grants of Core in the cases the hand mutation pass found
// untested (hunt-p): what restarts or clears a member's lease, what a
// grant of the shared entry resets, and what a drain keeps.

// coreOf returns a core of n partitions, lease 1s, with member a joined
// at t0 (it holds every partition) and each partition's epoch.
func coreOf(t *testing.T, n int32, committed map[int32]int64, t0 time.Time) (*Core, []uint64) {
	t.Helper()
	c := NewCore(n, time.Second, committed, 0)
	if _, err := c.Join("a", t0); err != nil {
		t.Fatal(err)
	}
	epochs := make([]uint64, n)
	for p := range n {
		_, epochs[p] = c.Owner(p)
	}
	return c, epochs
}

// TestCoreNoOpCommitKeepsTheLease: a commit at the committed offset
// (ownCommitter reads the offset after its fence: mostly the one the core
// has) restarts no lease: the member that was sent events and
// acknowledges none still expires a lease after it was sent them.
func TestCoreNoOpCommitKeepsTheLease(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	c, e := coreOf(t, 1, map[int32]int64{0: 4}, t0)
	c.Delivered(0, e[0], 10, true, t0)
	c.Commit(0, e[0], 4, t0.Add(900*time.Millisecond))
	if got := c.Expired(t0.Add(1100 * time.Millisecond)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("expired %v a lease after events were sent and a commit that moved nothing, want [a]", got)
	}
}

// TestCoreStaleCommitKeepsTheOwnersLease: a commit of an earlier owner's
// epoch (its acknowledgement's commit returned after the partition moved,
// the lock let go meanwhile) moves the committed offset but neither
// clears nor restarts the lease of the new owner on what it was sent.
func TestCoreStaleCommitKeepsTheOwnersLease(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	c, e := coreOf(t, 1, map[int32]int64{0: 0}, t0)
	old := e[0]
	if _, err := c.Join("b", t0); err != nil {
		t.Fatal(err)
	}
	c.Leave("a", t0)
	o, e1 := c.Owner(0)
	if o != "b" || e1 == old {
		t.Fatalf("after a left: owner %q epoch %d, want b at a new epoch", o, e1)
	}
	c.Delivered(0, e1, 10, true, t0)
	c.Commit(0, old, 12, t0.Add(500*time.Millisecond)) // a's, late
	if c.Committed(0) != 12 {
		t.Fatalf("committed %d, want the late commit's 12", c.Committed(0))
	}
	if !c.Busy(0) {
		t.Fatal("b's events count as acknowledged after a commit of a's epoch")
	}
	if got := c.Expired(t0.Add(1100 * time.Millisecond)); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("expired %v, want [b]: a commit of an earlier epoch restarted b's lease", got)
	}
}

// TestCoreLateCommitCoversABatch: a batch whose events an earlier
// owner's late commit already covers (read after the fence) asks no
// acknowledgement: the member acknowledging its next moves nothing, and
// must not expire for it.
func TestCoreLateCommitCoversABatch(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	c, e := coreOf(t, 1, map[int32]int64{0: 0}, t0)
	c.Delivered(0, e[0], 10, true, t0)
	c.Commit(0, e[0], 10, t0)
	c.Commit(0, e[0], 12, t0) // the fence read an earlier owner's late commit
	if !c.Delivered(0, e[0], 12, true, t0) {
		t.Fatal("the batch [10, 12) was refused")
	}
	if c.Busy(0) {
		t.Fatal("a batch below the committed offset counts as unacknowledged")
	}
	if move, err := c.Ack("a", 0, e[0], 12); err != nil || move {
		t.Fatalf("ack at 12 = %v, %v; want nothing to move", move, err)
	}
	if got := c.Expired(t0.Add(2 * time.Second)); len(got) != 0 {
		t.Fatalf("expired %v, want none: the events were committed", got)
	}
}

// TestCoreEventlessTailNeedsNoAck: batches without events (envelope
// deletes' tombstones, a retention gap) after the last event ask no
// acknowledgement: an ack of the last event's next clears the lease.
func TestCoreEventlessTailNeedsNoAck(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	c, e := coreOf(t, 1, map[int32]int64{0: 0}, t0)
	c.Delivered(0, e[0], 10, true, t0)
	c.Delivered(0, e[0], 15, false, t0)
	if move, err := c.Ack("a", 0, e[0], 10); err != nil || !move {
		t.Fatalf("ack at 10 = %v, %v", move, err)
	}
	c.Commit(0, e[0], 10, t0.Add(100*time.Millisecond))
	if c.Busy(0) {
		t.Fatal("busy after every event was acknowledged (only tombstones follow)")
	}
	if got := c.Expired(t0.Add(2 * time.Second)); len(got) != 0 {
		t.Fatalf("expired %v, want none", got)
	}
}

// TestCoreGrantStartsClean: a grant of the shared entry gives the
// partition to its new owner as new: not draining (its batches go
// through), with nothing unacknowledged of the previous owner's, and a
// partition never committed counts as delivered from 0 (its owner may
// acknowledge 0).
func TestCoreGrantStartsClean(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	c := NewCore(2, time.Second, nil, 0)
	c.shared = true
	for _, id := range []string{"a", "b"} {
		if _, err := c.Join(id, t0); err != nil {
			t.Fatal(err)
		}
	}
	c.Grant(0, "a", 4, 10)
	c.Delivered(0, 4, 20, true, t0)
	c.Drain(0, t0)
	c.Grant(0, "b", 5, 10) // the entry moved it to b
	if c.Revoking(0) {
		t.Fatal("revoking after a grant to another member")
	}
	if c.Busy(0) {
		t.Fatal("busy with a's events after the grant to b")
	}
	if got := c.Expired(t0.Add(2 * time.Second)); len(got) != 0 {
		t.Fatalf("expired %v: b answers for a's events", got)
	}
	if !c.Delivered(0, 5, 12, true, t0) {
		t.Fatal("b's batch refused after the grant")
	}
	c.Grant(1, "a", 6, -1)
	if move, err := c.Ack("a", 1, 6, 0); err != nil || !move {
		t.Fatalf("ack at 0 of a partition never committed = %v, %v; want it committed", move, err)
	}
}

// TestCoreDrainOnce: a drain runs for one lease from when it started: a
// second Drain (a later sync) or a membership change during it neither
// reports it again nor extends it.
func TestCoreDrainOnce(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	t.Run("shared", func(t *testing.T) {
		c := NewCore(1, time.Second, nil, 0)
		c.shared = true
		if _, err := c.Join("a", t0); err != nil {
			t.Fatal(err)
		}
		c.Grant(0, "a", 4, 0)
		c.Delivered(0, 4, 10, true, t0)
		if ch := c.Drain(0, t0); !slices.Equal(ch.Draining["a"], []int32{0}) {
			t.Fatalf("drain = %+v", ch)
		}
		if ch := c.Drain(0, t0.Add(500*time.Millisecond)); len(ch.Draining) != 0 {
			t.Fatalf("second drain = %+v, want nothing", ch)
		}
		if ch := c.Handover(t0.Add(1100 * time.Millisecond)); !slices.Equal(ch.Revoked["a"], []int32{0}) {
			t.Fatalf("handover a lease after the drain started = %+v, want 0 revoked from a", ch)
		}
	})
	t.Run("a join during the drain", func(t *testing.T) {
		c, e := coreOf(t, 2, map[int32]int64{0: 0, 1: 0}, t0)
		c.Delivered(0, e[0], 3, true, t0)
		c.Delivered(1, e[1], 3, true, t0)
		if ch, _ := c.Join("b", t0); !slices.Equal(ch.Draining["a"], []int32{1}) {
			t.Fatalf("b's join: %+v, want 1 draining", ch)
		}
		if ch, _ := c.Join("c", t0.Add(500*time.Millisecond)); len(ch.Draining) != 0 || len(ch.Revoked) != 0 {
			t.Fatalf("c's join during the drain: %+v, want no change of a's partitions", ch)
		}
		ch := c.Handover(t0.Add(1100 * time.Millisecond))
		if !slices.Equal(ch.Revoked["a"], []int32{1}) {
			t.Fatalf("handover a lease after the drain started = %+v, want 1 revoked from a", ch)
		}
	})
}

// TestCoreDrainingNotKept: a partition draining from a member does not
// count among those it keeps: a member that joins during the drain
// takes nothing else of that member's (the draining one comes to it once
// drained) rather than an idle partition while the draining one comes
// back to its owner.
func TestCoreDrainingNotKept(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	c, e := coreOf(t, 3, map[int32]int64{0: 0, 1: 0, 2: 0}, t0)
	for p := range int32(3) {
		c.Delivered(p, e[p], 3, true, t0)
	}
	if ch, _ := c.Join("b", t0); !slices.Equal(ch.Draining["a"], []int32{2}) {
		t.Fatalf("b's join: %+v, want 2 draining", ch)
	}
	c.Commit(0, e[0], 3, t0) // 0 is idle now
	c.Leave("b", t0)
	ch, _ := c.Join("c", t0)
	if len(ch.Revoked) != 0 || len(ch.Granted) != 0 {
		t.Fatalf("c's join during 2's drain: %+v, want no change (2 comes to c once drained)", ch)
	}
	c.Commit(2, e[2], 3, t0)
	ch = c.Handover(t0)
	if g := ch.Granted["c"]; len(g) != 1 || g[0].Partition != 2 {
		t.Fatalf("handover: %+v, want 2 granted to c", ch)
	}
	owners(t, c)
}

// TestCoreRevokedSendsNothing: once the shared entry took a partition
// from its member (Revoke: nobody's here, its epoch kept), a batch of
// that member's epoch still queued is not let through, and starts no
// lease.
func TestCoreRevokedSendsNothing(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	c := NewCore(1, time.Second, nil, 0)
	c.shared = true
	if _, err := c.Join("a", t0); err != nil {
		t.Fatal(err)
	}
	c.Grant(0, "a", 4, 0)
	if ch := c.Revoke(0); !slices.Equal(ch.Revoked["a"], []int32{0}) {
		t.Fatalf("revoke = %+v", ch)
	}
	if c.Delivered(0, 4, 10, true, t0) {
		t.Fatal("a batch of a revoked partition was let through to its former owner")
	}
	if _, err := c.Ack("a", 0, 4, 0); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("ack of a revoked partition: %v, want ErrNotOwner", err)
	}
}
