package group

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPlanShared: one sync's plan of a group with many members
// spread over 10 processes, the entry balanced (a renewal: the common
// case) or every partition free (a new group's first claims).
func BenchmarkPlanShared(b *testing.B) {
	for _, c := range []struct {
		members    int
		partitions int32
		free       bool
	}{
		{100, 64, false}, {1000, 64, false}, {1000, 1024, false}, {1000, 1024, true}, {5000, 1024, false},
	} {
		b.Run(fmt.Sprintf("members=%d/partitions=%d/free=%v", c.members, c.partitions, c.free), func(b *testing.B) {
			st := &SharedState{Table: "t", Group: "g", Partitions: c.partitions, Procs: map[string]uint64{}, Owners: make([]SharedOwner, c.partitions)}
			var mine []string
			for i := range c.members {
				m := SharedMember{Proc: fmt.Sprint("p", i%10), ID: fmt.Sprint("m", i)}
				st.Members = append(st.Members, m)
				st.Procs[m.Proc] = 1
				if m.Proc == "p0" {
					mine = append(mine, m.ID)
				}
			}
			held := map[int32]uint64{}
			if !c.free {
				for p := range c.partitions {
					m := st.Members[int(p)%c.members]
					st.Owners[p] = SharedOwner{SharedMember: m, Epoch: uint64(p) + 1}
					if m.Proc == "p0" {
						held[p] = uint64(p) + 1
					}
				}
				st.Seq = uint64(c.partitions)
			}
			now := time.Now()
			b.ResetTimer()
			for b.Loop() {
				planShared(st, Local{Proc: "p0", Members: mine, Held: held}, "t", "g", c.partitions, time.Minute, observed{}, now, true, false)
			}
		})
	}
}

// BenchmarkCoreJoin: members joining one by one a group of the embedded
// log (each Join balances the partitions): a stampede of consumers
// reconnecting after a restart.
func BenchmarkCoreJoin(b *testing.B) {
	for _, c := range []struct {
		members    int
		partitions int32
	}{{100, 64}, {1000, 1024}} {
		b.Run(fmt.Sprintf("members=%d/partitions=%d", c.members, c.partitions), func(b *testing.B) {
			now := time.Now()
			for b.Loop() {
				core := NewCore(c.partitions, time.Minute, nil, 0)
				for i := range c.members {
					if _, err := core.Join(fmt.Sprint("m", i), now); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
