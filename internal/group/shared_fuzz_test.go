package group

import (
	"reflect"
	"testing"
	"time"
)

// FuzzPlanShared: a group's shared entry is read from the store, written
// by other processes (and other versions of wail): whatever it holds,
// planning a sync from it does not panic, every partition it releases,
// drains or claims is one of the table's, and the entry it would write
// decodes back to itself; an entry that decodes encodes to one that
// decodes the same.
func FuzzPlanShared(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	// Seeds: entries as syncs write them.
	st, _ := decodeShared(nil)
	for i, l := range []Local{
		{Proc: "p1", Members: []string{"m1", "m2"}},
		{Proc: "p2", Members: []string{"m3"}, SnapWant: "m3"},
		{Proc: "p1", Members: []string{"m1"}, Held: map[int32]uint64{0: 1}},
	} {
		plan := planShared(st, l, "t", "g", 4, time.Second, observed{}, now.Add(time.Duration(i)*time.Second), true, false)
		if plan.Next == nil {
			f.Fatalf("seed %d: nothing to write", i)
		}
		st = plan.Next
		f.Add(st.encode(), int8(4), uint8(0))
	}
	f.Add([]byte(`{"table":"t","group":"g","partitions":2,"owners":[{"proc":"p1","id":"m1","epoch":3}]}`), int8(2), uint8(1))
	f.Add([]byte(`{"partitions":-1,"owners":[],"procs":{"p2":1},"members":[{"proc":"p2","id":"x"}]}`), int8(3), uint8(2))
	f.Add([]byte(`{"snapshot":{"proc":"p1","member":"m1","epoch":1},"procs":{"p1":1}}`), int8(1), uint8(3))
	f.Fuzz(func(t *testing.T, b []byte, n int8, which uint8) {
		s, err := decodeShared(b)
		if err != nil {
			return
		}
		again, err := decodeShared(s.encode())
		if err != nil || !reflect.DeepEqual(again.encode(), s.encode()) {
			t.Fatalf("round trip: %v\n%s\n%s", err, s.encode(), again.encode())
		}
		parts := int32(n)
		if parts < 1 {
			parts = 1 + (-parts % 16)
		}
		l := Local{Proc: "p1", Members: []string{"m1", "m2"}, Held: map[int32]uint64{}, Busy: map[int32]bool{}, Draining: map[int32]bool{}}
		if which&1 != 0 {
			l.Held[0], l.Busy[0] = 3, true
		}
		if which&2 != 0 {
			l.SnapWant = "m1"
		}
		if which&4 != 0 {
			l.SnapEpoch = 1
		}
		if which&8 != 0 {
			l.Members = nil
		}
		if which&16 != 0 {
			l.Draining[0] = true
		}
		obs := observed{}
		for i := range 3 {
			plan := planShared(s, l, "t", "g", parts, time.Second, obs, now.Add(time.Duration(i)*2*time.Second), i > 0, which&32 != 0)
			for _, ps := range [][]int32{plan.Release, plan.Drain} {
				for _, p := range ps {
					if p < 0 || p >= parts {
						t.Fatalf("plan names partition %d of %d", p, parts)
					}
				}
			}
			for _, g := range plan.Claims {
				if g.Partition < 0 || g.Partition >= parts {
					t.Fatalf("plan claims partition %d of %d", g.Partition, parts)
				}
			}
			if plan.Err != nil || plan.Next == nil {
				continue
			}
			if len(plan.Next.Owners) != int(parts) || plan.Next.Partitions != parts {
				t.Fatalf("next entry has %d owners, partitions %d; want %d", len(plan.Next.Owners), plan.Next.Partitions, parts)
			}
			next, err := decodeShared(plan.Next.encode())
			if err != nil || !reflect.DeepEqual(next.encode(), plan.Next.encode()) {
				t.Fatalf("the next entry does not round-trip: %v", err)
			}
			s = next
		}
	})
}
