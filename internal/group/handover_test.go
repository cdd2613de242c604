package group

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestCoreHandoverDrains: a partition that moves from a live member with
// unacknowledged events (its key k's event held by m1 while m2 joins) is
// first drained: m1 gets no more of its events but may still acknowledge
// what it was sent, and m2 gets it only once m1 acknowledged all of it,
// from there. Without the drain m2 got it at once, from the committed
// offset, and delivered k's later events while m1 could still apply its
// older one.
func TestCoreHandoverDrains(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	c := NewCore(2, time.Second, map[int32]int64{0: 0, 1: 0}, 0)
	ch, _ := c.Join("m1", t0)
	if len(ch.Granted["m1"]) != 2 {
		t.Fatalf("m1 granted %v, want both partitions", ch.Granted["m1"])
	}
	_, e0 := c.Owner(0)
	_, e1 := c.Owner(1)
	c.Delivered(0, e0, 3, true, t0) // both partitions have events m1 did not acknowledge
	c.Delivered(1, e1, 5, true, t0)
	ch, _ = c.Join("m2", t0)
	if len(ch.Granted["m2"]) != 0 || len(ch.Revoked["m1"]) != 0 {
		t.Fatalf("m2 joined: granted %v, m1 revoked %v: a partition m1 has unacknowledged events of moved at once", ch.Granted, ch.Revoked)
	}
	if !slices.Equal(ch.Draining["m1"], []int32{1}) {
		t.Fatalf("draining %v, want m1's partition 1", ch.Draining)
	}
	if o, e := c.Owner(1); o != "m1" || e != e1 || !c.Revoking(1) {
		t.Fatalf("partition 1: owner %q epoch %d revoking %v, want m1's at %d, revoking", o, e, c.Revoking(1), e1)
	}
	if c.Delivered(1, e1, 8, true, t0) {
		t.Fatal("a batch of the draining partition was let through to m1")
	}
	if !c.Delivered(0, e0, 4, true, t0) {
		t.Fatal("a batch of the partition m1 keeps was refused")
	}
	ack := func(p int32, epoch uint64, next int64, at time.Time) {
		t.Helper()
		move, err := c.Ack("m1", p, epoch, next)
		if err != nil {
			t.Fatalf("m1's ack of %d at %d: %v", p, next, err)
		}
		if move {
			c.Commit(p, epoch, next, at)
		}
	}
	ack(1, e1, 3, t0.Add(100*time.Millisecond))
	if ch := c.Handover(t0.Add(100 * time.Millisecond)); len(ch.Granted) != 0 {
		t.Fatalf("partly acknowledged, the partition moved: %v", ch.Granted)
	}
	ack(1, e1, 5, t0.Add(200*time.Millisecond))
	ch = c.Handover(t0.Add(200 * time.Millisecond))
	g := ch.Granted["m2"]
	if len(g) != 1 || g[0].Partition != 1 || g[0].Offset != 5 || g[0].Epoch <= e1 {
		t.Fatalf("drained: granted %v, want partition 1 to m2 from 5 at a new epoch", ch.Granted)
	}
	if !slices.Equal(ch.Revoked["m1"], []int32{1}) {
		t.Fatalf("drained: revoked %v, want m1's partition 1", ch.Revoked)
	}
	if _, err := c.Ack("m1", 1, e1, 5); err == nil {
		t.Fatal("m1 acknowledged partition 1 after it moved")
	}
	if c.Revoking(1) {
		t.Fatal("partition 1 still revoking once it moved")
	}
	owners(t, c)
}

// TestCoreHandoverEnds: a drain ends, and the partition moves at once
// from the committed offset (its unacknowledged events go again to the
// next owner), when the old owner leaves (its stream ended), when its
// lease expires over the events it does not acknowledge, and when the
// drain took the lease though the owner acknowledged bit by bit; a
// partition without unacknowledged events moves at once; and one whose
// new owner leaves meanwhile still drains, then goes where the balance
// says.
func TestCoreHandoverEnds(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	const lease = time.Second
	for _, tc := range []struct {
		name string
		// unacked: m1 has unacknowledged events of partition 1 when m2
		// joins; then run; want: partition 1's owner and committed after.
		unacked bool
		run     func(t *testing.T, c *Core, e1 uint64) Change
		owner   string
		from    int64
	}{
		{name: "nothing unacknowledged moves at once", run: func(t *testing.T, c *Core, e1 uint64) Change { return Change{} }, owner: "m2", from: 0},
		{name: "the old owner leaves", unacked: true, owner: "m2", from: 2, run: func(t *testing.T, c *Core, e1 uint64) Change {
			return c.Leave("m1", t0.Add(10*time.Millisecond))
		}},
		{name: "the old owner's lease expires", unacked: true, owner: "m2", from: 2, run: func(t *testing.T, c *Core, e1 uint64) Change {
			if got := c.Expired(t0.Add(lease / 2)); len(got) != 0 {
				t.Fatalf("expired %v within the lease", got)
			}
			got := c.Expired(t0.Add(lease + time.Millisecond))
			if !slices.Equal(got, []string{"m1"}) {
				t.Fatalf("expired %v, want m1 (it never acknowledged)", got)
			}
			return c.Leave("m1", t0.Add(lease+time.Millisecond))
		}},
		{name: "the drain takes the lease", unacked: true, owner: "m2", from: 4, run: func(t *testing.T, c *Core, e1 uint64) Change {
			// progress renews m1's lease, but the drain is bounded by
			// one lease from its start
			_, e0 := c.Owner(0)
			if _, err := c.Ack("m1", 0, e0, 3); err != nil {
				t.Fatal(err)
			}
			c.Commit(0, e0, 3, t0.Add(lease/2))
			for i, at := range []time.Duration{lease / 2, lease - time.Millisecond} {
				if _, err := c.Ack("m1", 1, e1, int64(3+i)); err != nil {
					t.Fatal(err)
				}
				c.Commit(1, e1, int64(3+i), t0.Add(at))
				if ch := c.Handover(t0.Add(at)); len(ch.Granted) != 0 {
					t.Fatalf("moved at %s, within the drain's lease: %v", at, ch.Granted)
				}
			}
			if got := c.Expired(t0.Add(lease + time.Millisecond)); len(got) != 0 {
				t.Fatalf("expired %v though m1 acknowledged within the lease", got)
			}
			return c.Handover(t0.Add(lease + time.Millisecond))
		}},
		{name: "the new owner leaves meanwhile", unacked: true, owner: "m1", from: 6, run: func(t *testing.T, c *Core, e1 uint64) Change {
			if ch := c.Leave("m2", t0.Add(10*time.Millisecond)); len(ch.Granted) != 0 {
				t.Fatalf("m2 left: granted %v, want nothing (it had nothing: partition 1 drains)", ch.Granted)
			}
			if !c.Revoking(1) {
				t.Fatal("the drain ended when m2 left")
			}
			if _, err := c.Ack("m1", 1, e1, 6); err != nil {
				t.Fatal(err)
			}
			c.Commit(1, e1, 6, t0.Add(20*time.Millisecond))
			return c.Handover(t0.Add(20 * time.Millisecond))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCore(2, lease, map[int32]int64{0: 0, 1: 2}, 0)
			c.Join("m1", t0)
			_, e0 := c.Owner(0)
			_, e1 := c.Owner(1)
			c.Delivered(0, e0, 3, true, t0)
			if tc.unacked {
				c.Delivered(1, e1, 6, true, t0)
			}
			c.Join("m2", t0)
			if c.Revoking(1) != tc.unacked {
				t.Fatalf("revoking %v, want %v", c.Revoking(1), tc.unacked)
			}
			ch := tc.run(t, c, e1)
			o, e := c.Owner(1)
			if o != tc.owner || e == e1 || c.Revoking(1) {
				t.Fatalf("partition 1: owner %q epoch %d (was %d) revoking %v, want %q at a new epoch", o, e, e1, c.Revoking(1), tc.owner)
			}
			if !tc.unacked {
				return
			}
			i := slices.IndexFunc(ch.Granted[tc.owner], func(g Grant) bool { return g.Partition == 1 })
			if i < 0 || ch.Granted[tc.owner][i].Offset != tc.from {
				t.Fatalf("granted %v, want partition 1 to %s from %d", ch.Granted, tc.owner, tc.from)
			}
			if c.Delivered(1, e1, 7, true, t0) {
				t.Fatal("a batch of m1's old epoch was let through")
			}
			owners(t, c)
		})
	}
}

// TestGroupsHandoverDrains: the loop over Core. Member a holds records of
// both partitions unacknowledged when b joins: b gets nothing, a's
// partition 1 is revoking (Describe, wail_group_revoking_partitions) and
// a gets no more of its records; once a acknowledged them, a is told it
// was revoked and b gets it from there.
func TestGroupsHandoverDrains(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t)
	tb := table(t, l, 2, 5)
	g := New(l, time.Minute)
	defer g.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(g.Collector())
	a, err := g.Join(ctx, tb, "g", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	oa := owned{}
	last := map[int32]Message{}
	until(t, a, oa, func(m Message) {
		if len(m.Records) > 0 && a.Check(m) {
			last[m.Partition] = m
		}
	}, func() bool { return len(last) == 2 })
	b, err := g.Join(ctx, tb, "g", "b", false)
	if err != nil {
		t.Fatal(err)
	}
	_, parts, err := g.Describe(ctx, tb, "g")
	if err != nil {
		t.Fatal(err)
	}
	if parts[0].Revoking || !parts[1].Revoking || parts[1].Owner != "a" {
		t.Fatalf("described %+v, want partition 1 a's, revoking", parts)
	}
	if n := revokingMetric(t, reg); n != 1 {
		t.Fatalf("wail_group_revoking_partitions %v, want 1", n)
	}
	appendRecords(t, l, 40)
	nctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	for {
		m, err := a.Next(nctx)
		if err != nil {
			break
		}
		if m.Partition == 1 && (m.Revoked != nil || (m.Granted == nil && a.Check(m))) {
			t.Fatalf("a got %+v of its draining partition", m)
		}
	}
	cancel()
	bctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	if m, err := b.Next(bctx); err == nil {
		t.Fatalf("b got %+v while a holds unacknowledged records of both partitions", m)
	}
	cancel()
	p1 := last[1]
	if refused, err := g.Ack(ctx, tb, "g", "a", []Ack{{1, p1.Epoch, p1.Next}}); err != nil || len(refused) > 0 {
		t.Fatalf("a's ack: %v %v", refused, err)
	}
	until(t, a, oa, nil, func() bool { _, ok := oa[1]; return !ok })
	ob := owned{}
	until(t, b, ob, nil, func() bool { return len(ob) == 1 })
	if _, ok := ob[1]; !ok {
		t.Fatalf("b owns %v, want partition 1", ob)
	}
	_, parts, err = g.Describe(ctx, tb, "g")
	if err != nil {
		t.Fatal(err)
	}
	if parts[1].Revoking || parts[1].Owner != "b" || parts[1].Committed != p1.Next {
		t.Fatalf("described %+v, want partition 1 b's from %d", parts, p1.Next)
	}
	if n := revokingMetric(t, reg); n != 0 {
		t.Fatalf("wail_group_revoking_partitions %v once moved, want 0", n)
	}
}

func revokingMetric(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "wail_group_revoking_partitions" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no wail_group_revoking_partitions")
	return 0
}
