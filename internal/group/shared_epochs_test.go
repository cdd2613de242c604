package group

import (
	"context"
	"testing"
	"time"
)

// TestSharedEpochsAboveUnsharedOnes: a deployment switches from groups of
// one process (their epochs above the clock in microseconds at the
// process's start: epochBase) to groups shared by processes. A partition's
// epoch under the shared group must not be below the one an earlier
// unshared process gave it: a sink's redrive claim carries its partition's
// epoch, and one left by the unshared process when it died is taken over
// only by a claim at an epoch at least as high. Shared epochs came from
// the entry's sequence, which started at 1: such a claim held its letter
// for good.
func TestSharedEpochsAboveUnsharedOnes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base := openLog(t)
	tb := table(t, base, 1, 5)
	A := New(base, time.Minute) // the process before the switch
	a, err := A.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	oa := owned{}
	until(t, a, oa, nil, func() bool { return len(oa) == 1 })
	a.Leave()
	A.Close()

	_, share := memSharing()
	B := New(base, time.Minute).Share(share("B")) // after it
	defer B.Close()
	b, err := B.Join(ctx, tb, "g", "b", false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Leave()
	ob := owned{}
	until(t, b, ob, nil, func() bool { return len(ob) == 1 })
	if ob[0] < oa[0] {
		t.Fatalf("the shared group's epoch of partition 0 is %d, below %d, the unshared one's before the switch: "+
			"a redrive claim left at that epoch is never taken over", ob[0], oa[0])
	}
}

// TestNeverGave: an unshared group's process tells the epochs it never
// gave (above every one it numbered the group's grants with: a process
// before it, its clock ahead, gave them) from its own; a shared group's
// are never its alone.
func TestNeverGave(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base := openLog(t)
	tb := table(t, base, 1, 5)
	for _, shared := range []bool{false, true} {
		G := New(base, time.Minute)
		if shared {
			_, share := memSharing()
			G.Share(share("A"))
		}
		defer G.Close()
		s, err := G.Join(ctx, tb, "g", "a", false)
		if err != nil {
			t.Fatal(err)
		}
		o := owned{}
		until(t, s, o, nil, func() bool { return len(o) == 1 })
		if G.NeverGave(tb.Name, "g", o[0]) || G.NeverGave(tb.Name, "g", o[0]-1) {
			t.Errorf("shared=%v: epoch %d (or one below) that this process gave is said never given", shared, o[0])
		}
		if got := G.NeverGave(tb.Name, "g", o[0]+1<<40); got == shared {
			t.Errorf("shared=%v: NeverGave of an epoch far above every one given = %v", shared, got)
		}
		s.Leave()
	}
}
