package group

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"
)

// TestSharedPlanDrains: a process whose member must give up a partition
// of which it has unacknowledged events keeps it in the group's entry
// and drains it (Plan.Drain) instead of releasing it; a partition
// draining here is neither counted in its member's share nor free; once
// its drain ended here (it is not held any more), the entry frees it.
// Before, the partition was released at once, and a member of another
// process got it while its owner could still apply its events.
func TestSharedPlanDrains(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	entry := func() *SharedState {
		return &SharedState{Partitions: 2, Seq: 2, Beat: 3, Procs: map[string]uint64{"A": 2, "B": 3},
			Members: []SharedMember{{"A", "a"}, {"B", "b"}},
			Owners:  []SharedOwner{{SharedMember{"A", "a"}, 1}, {SharedMember{"A", "a"}, 2}}}
	}
	held := map[int32]uint64{0: 1, 1: 2}
	for _, tc := range []struct {
		name           string
		busy, draining []int32
		held           map[int32]uint64
		release, drain []int32
		owner1         string // partition 1's owner in the entry written ("" free)
	}{
		{name: "nothing unacknowledged: released at once", busy: nil, held: held, release: []int32{1}},
		{name: "unacknowledged events: drains", busy: []int32{0, 1}, held: held, drain: []int32{1}, owner1: "a"},
		{name: "the busy one is kept", busy: []int32{1}, held: held, release: []int32{0}, owner1: "a"},
		{name: "draining: kept in the entry", busy: []int32{0}, draining: []int32{1}, held: held, owner1: "a"},
		{name: "drained here: freed", busy: []int32{0}, held: map[int32]uint64{0: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := Local{Proc: "A", Members: []string{"a"}, Held: tc.held, Busy: map[int32]bool{}, Draining: map[int32]bool{}}
			for _, p := range tc.busy {
				l.Busy[p] = true
			}
			for _, p := range tc.draining {
				l.Draining[p] = true
			}
			plan := planShared(entry(), l, "t", "g", 2, time.Second, observed{}, now, true, false)
			if !slices.Equal(plan.Release, tc.release) || !slices.Equal(plan.Drain, tc.drain) || len(plan.Claims) != 0 {
				t.Fatalf("release %v drain %v claims %v, want release %v drain %v, no claim", plan.Release, plan.Drain, plan.Claims, tc.release, tc.drain)
			}
			if got := plan.Next.Owners[1].ID; got != tc.owner1 {
				t.Fatalf("partition 1 owned by %q in the entry written, want %q", got, tc.owner1)
			}
			// B, reading what A wrote: claims partition 1 only once free.
			pb := planShared(plan.Next, Local{Proc: "B", Members: []string{"b"}, Held: map[int32]uint64{}}, "t", "g", 2, time.Second, observed{}, now, true, false)
			if claimed := len(pb.Claims) > 0; claimed != (tc.owner1 == "" || plan.Next.Owners[0].ID == "") {
				t.Fatalf("b claims %v with partition owners %+v", pb.Claims, plan.Next.Owners)
			}
		})
	}
}

// TestSharedHandoverDrains: two processes share a group; a (on A) holds
// unacknowledged records of both partitions when b joins on B: b gets no
// partition while a may still be processing them; once a acknowledged
// one partition's records, b gets that one, from there.
func TestSharedHandoverDrains(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	tb := table(t, l, 2, 5)
	const lease = time.Second
	cat := &memCatalog{m: map[string][]byte{}}
	logger := slog.New(slog.DiscardHandler)
	A := New(l, time.Minute).Share(Sharing{Store: &memSwapper{c: cat}, Process: "A", Lease: lease, Logger: logger})
	defer A.Close()
	B := New(l, time.Minute).Share(Sharing{Store: &memSwapper{c: cat}, Process: "B", Lease: lease, Logger: logger})
	defer B.Close()
	a, err := A.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	oa := owned{}
	last := map[int32]Message{} // a's last batch of each partition, not acknowledged
	until(t, a, oa, func(m Message) {
		if len(m.Records) > 0 && a.Check(m) {
			last[m.Partition] = m
		}
	}, func() bool { return len(last) == 2 })
	b, err := B.Join(ctx, tb, "g", "b", false)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan Message, 16)
	go func() {
		for {
			m, err := b.Next(ctx)
			if err != nil {
				close(got)
				return
			}
			if m.Granted != nil || b.Check(m) {
				got <- m
			}
		}
	}()
	select {
	case m := <-got:
		t.Fatalf("b got %+v while a holds unacknowledged records of both partitions", m)
	case <-time.After(lease): // several syncs of both processes
	}
	// a acknowledges the partition it gives up (the balance keeps the
	// first): b gets it, from there.
	p := int32(1)
	if refused, err := A.Ack(ctx, tb, "g", "a", []Ack{{p, last[p].Epoch, last[p].Next}}); err != nil || len(refused) > 0 {
		t.Fatalf("a's ack: %v %v", refused, err)
	}
	select {
	case m := <-got:
		if len(m.Granted) != 1 || m.Granted[0].Partition != p || m.Granted[0].Offset != last[p].Next {
			t.Fatalf("b got %+v, want partition %d granted from %d", m, p, last[p].Next)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("b did not get the partition a acknowledged")
	}
	until(t, a, oa, nil, func() bool { _, ok := oa[p]; return !ok })
	if _, ok := oa[0]; !ok {
		t.Fatalf("a owns %v, want partition 0 still", oa)
	}
}

// TestSharedPlanDrainingNotCounted: a partition draining here does not
// count in its member's share: the member keeps its others up to its
// share (a at 2 of 3 keeps idle 0 and busy 1 while 2 drains to b's
// process), rather than releasing an idle one while the draining one
// stays its in the entry.
func TestSharedPlanDrainingNotCounted(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	a := SharedMember{"A", "a"}
	st := &SharedState{Partitions: 3, Seq: 3, Beat: 3, Procs: map[string]uint64{"A": 2, "B": 3},
		Members: []SharedMember{a, {"B", "b"}},
		Owners:  []SharedOwner{{a, 1}, {a, 2}, {a, 3}}}
	l := Local{Proc: "A", Members: []string{"a"}, Held: map[int32]uint64{0: 1, 1: 2, 2: 3},
		Busy: map[int32]bool{1: true, 2: true}, Draining: map[int32]bool{2: true}}
	plan := planShared(st, l, "t", "g", 3, time.Second, observed{}, now, true, false)
	if len(plan.Release) != 0 || len(plan.Drain) != 0 || len(plan.Claims) != 0 {
		t.Fatalf("release %v drain %v claims %v, want none (a keeps 0 and 1, 2 drains)", plan.Release, plan.Drain, plan.Claims)
	}
}

// TestSharedPlanEpochsUnique: every claim takes an epoch above the last
// one given, even when the entry's sequence is ahead of this process's
// clock (another process's clock ahead): two claims of one sync never
// share one, nor reuse the last (a late acknowledgement of that grant
// would match).
func TestSharedPlanEpochsUnique(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	seq := uint64(now.UnixMicro()) + 1e9
	st := &SharedState{Partitions: 2, Seq: seq, Beat: 1, Procs: map[string]uint64{"A": 1},
		Members: []SharedMember{{"A", "a"}}, Owners: make([]SharedOwner, 2)}
	l := Local{Proc: "A", Members: []string{"a"}, Held: map[int32]uint64{}}
	plan := planShared(st, l, "t", "g", 2, time.Second, observed{}, now, true, false)
	if len(plan.Claims) != 2 {
		t.Fatalf("claims %v, want both partitions", plan.Claims)
	}
	e0, e1 := plan.Claims[0].Epoch, plan.Claims[1].Epoch
	if e0 <= seq || e1 <= seq || e0 == e1 || plan.Next.Seq != max(e0, e1) {
		t.Fatalf("claims at %d and %d, entry's sequence %d from %d: want two distinct epochs above it", e0, e1, plan.Next.Seq, seq)
	}
}
