package group

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// owners checks that every partition has one live owner and that the
// counts are balanced (they differ by at most one); it returns the counts.
func owners(t *testing.T, c *Core) map[string]int {
	t.Helper()
	counts := map[string]int{}
	live := map[string]bool{}
	for _, id := range c.Members() {
		live[id] = true
		counts[id] = 0
	}
	for p := range c.n {
		o, _ := c.Owner(p)
		if len(live) > 0 && !live[o] {
			t.Fatalf("partition %d owned by %q, not a live member of %v", p, o, c.Members())
		}
		if len(live) == 0 && o != "" {
			t.Fatalf("partition %d owned by %q in an empty group", p, o)
		}
		counts[o]++
	}
	lo, hi := int(c.n), 0
	for _, n := range counts {
		lo, hi = min(lo, n), max(hi, n)
	}
	if len(live) > 0 && hi-lo > 1 {
		t.Fatalf("unbalanced: %v", counts)
	}
	return counts
}

// TestCoreMembership: joins and leaves in random orders keep every
// partition with exactly one live member, balanced; a change only moves
// partitions it must, each grant at the committed offset with a new epoch.
func TestCoreMembership(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 7))
		n := int32(1 + rng.IntN(12))
		c := NewCore(n, time.Second, map[int32]int64{0: 5}, 0)
		var live []string
		epochs := map[uint64]bool{}
		for step := range 40 {
			var ch Change
			if len(live) == 0 || rng.IntN(3) > 0 {
				id := fmt.Sprintf("m%d", step)
				var err error
				if ch, err = c.Join(id, t0); err != nil {
					t.Fatal(err)
				}
				live = append(live, id)
			} else {
				i := rng.IntN(len(live))
				ch = c.Leave(live[i], t0)
				live = append(live[:i], live[i+1:]...)
			}
			owners(t, c)
			moved := 0
			for _, gs := range ch.Granted {
				for _, g := range gs {
					moved++
					if epochs[g.Epoch] {
						t.Fatalf("seed %d: epoch %d granted twice", seed, g.Epoch)
					}
					epochs[g.Epoch] = true
					if want := c.Committed(g.Partition); g.Offset != want {
						t.Fatalf("seed %d: grant of %d at %d, committed %d", seed, g.Partition, g.Offset, want)
					}
				}
			}
			// at most the partitions over the new quota move, plus those of a leaver
			if m := len(live); m > 0 && moved > int(n)/m+int(n) {
				t.Fatalf("seed %d: %d partitions moved", seed, moved)
			}
		}
	}
}

func TestCoreJoinTwice(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	c := NewCore(2, time.Second, nil, 0)
	if _, err := c.Join("a", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Join("a", t0); err == nil {
		t.Fatal("a second member with the same id was let in")
	}
}

// TestCoreAcks: only the owner at the current epoch commits, never past
// what it was delivered; an overdue acknowledgement expires the member.
func TestCoreAcks(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	c := NewCore(1, time.Second, map[int32]int64{0: 10}, 0)
	ch, _ := c.Join("a", t0)
	g := ch.Granted["a"][0]
	if g.Offset != 10 {
		t.Fatalf("grant at %d, want the committed 10", g.Offset)
	}
	if !c.Delivered(0, g.Epoch, 15, true, t0) {
		t.Fatal("delivery to the owner refused")
	}
	if _, err := c.Ack("a", 0, g.Epoch, 16); !errors.Is(err, ErrBeyondDelivered) {
		t.Fatalf("ack past the delivered: %v", err)
	}
	if _, err := c.Ack("a", 0, g.Epoch+1, 12); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("ack at another epoch: %v", err)
	}
	if got := c.Expired(t0.Add(900 * time.Millisecond)); len(got) != 0 {
		t.Fatalf("expired before the lease: %v", got)
	}
	if move, err := c.Ack("a", 0, g.Epoch, 12); err != nil || !move {
		t.Fatalf("ack = %v, %v", move, err)
	}
	c.Commit(0, g.Epoch, 12, t0.Add(900*time.Millisecond))
	if got := c.Expired(t0.Add(1500 * time.Millisecond)); len(got) != 0 {
		t.Fatalf("expired though an ack came: %v", got) // the rest's lease started again at the ack
	}
	if got := c.Expired(t0.Add(2 * time.Second)); len(got) != 1 || got[0] != "a" {
		t.Fatalf("expired = %v, want a (events 12..14 unacknowledged for over a second)", got)
	}
	ch, _ = c.Join("b", t0)
	c.Leave("a", t0)
	o, e := c.Owner(0)
	if o != "b" || e == g.Epoch {
		t.Fatalf("owner %q epoch %d after a left", o, e)
	}
	if c.Delivered(0, g.Epoch, 20, true, t0) {
		t.Fatal("a delivery of the old owner's epoch passed")
	}
	if _, err := c.Ack("a", 0, g.Epoch, 14); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("the old owner's ack: %v", err)
	}
	if c.Committed(0) != 12 {
		t.Fatalf("committed %d, want 12", c.Committed(0))
	}
}

// TestCoreAckReplays: acknowledgements out of order, repeated, or of an
// older epoch of the same member neither move the committed offset back
// nor renew the lease: only progress does, so a member that replays one
// acknowledgement in a loop still loses its partitions after the lease.
func TestCoreAckReplays(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	c := NewCore(1, time.Second, map[int32]int64{0: 0}, 0)
	ch, _ := c.Join("a", t0)
	old := ch.Granted["a"][0]
	c.Join("b", t0)
	c.Leave("b", t0) // nothing moves: a keeps partition 0 at its epoch
	c.Leave("a", t0)
	ch, _ = c.Join("a", t0)
	g := ch.Granted["a"][0]
	if g.Epoch == old.Epoch {
		t.Fatalf("a got partition 0 back at its old epoch %d", g.Epoch)
	}
	c.Delivered(0, g.Epoch, 10, true, t0)
	ack := func(epoch uint64, next int64, at time.Duration) {
		t.Helper()
		move, err := c.Ack("a", 0, epoch, next)
		if err == nil && move {
			c.Commit(0, epoch, next, t0.Add(at))
		}
	}
	ack(g.Epoch, 6, 500*time.Millisecond)
	ack(g.Epoch, 3, 900*time.Millisecond) // out of order
	ack(g.Epoch, 6, 900*time.Millisecond) // again
	if _, err := c.Ack("a", 0, old.Epoch, 8); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("an ack of the old epoch: %v", err)
	}
	if got := c.Committed(0); got != 6 {
		t.Fatalf("committed %d, want 6", got)
	}
	if got := c.Expired(t0.Add(1400 * time.Millisecond)); len(got) != 0 {
		t.Fatalf("expired %v within a lease of the last progress", got)
	}
	if got := c.Expired(t0.Add(1600 * time.Millisecond)); len(got) != 1 {
		t.Fatalf("expired %v: the replayed acks renewed the lease", got)
	}
}
