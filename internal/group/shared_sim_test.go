package group

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// simProc is a process in TestSharedSim: what sync.go keeps, run over
// planShared with a simulated clock and entry.
type simProc struct {
	name    string
	members []string
	held    map[int32]uint64
	heldBy  map[int32]string
	valid   time.Time
	renewed time.Time
	obs     observed
	crashed bool // never runs again
	cut     bool // cannot reach the entry (but still delivers while valid)
}

type sim struct {
	t      *testing.T
	n      int32
	lease  time.Duration
	now    time.Time
	entry  []byte
	epochs map[int32]uint64 // last epoch granted per partition
	// exclusive: all partitions to the first member
	exclusive bool
}

// read runs the first half of a sync (lapse, read, plan, releases); write
// the second (compare-and-set, then the grants).
func (s *sim) read(pr *simProc) ([]byte, Plan, time.Time) {
	if !s.now.Before(pr.valid) {
		clear(pr.held)
	}
	cur := s.entry
	st, err := decodeShared(cur)
	if err != nil {
		s.t.Fatal(err)
	}
	held := map[int32]uint64{}
	for p, e := range pr.held {
		held[p] = e
	}
	plan := planShared(st, Local{Proc: pr.name, Members: slices.Clone(pr.members), Held: held}, "t", "g", s.n, s.lease, pr.obs, s.now,
		s.now.Sub(pr.renewed) >= s.lease/4, s.exclusive)
	for _, p := range plan.Release {
		delete(pr.held, p)
	}
	return cur, plan, s.now
}

func (s *sim) write(pr *simProc, cur []byte, plan Plan, start time.Time) {
	if plan.Next == nil || !bytes.Equal(cur, s.entry) {
		return // nothing to write, or a conflict: again at the next sync
	}
	s.entry = plan.Next.encode()
	if _, ok := plan.Next.Procs[pr.name]; ok {
		pr.renewed, pr.valid = start, start.Add(trusted(s.lease))
	}
	if !s.now.Before(pr.valid) {
		return
	}
	for i, c := range plan.Claims {
		if !slices.Contains(pr.members, plan.ClaimMembers[i]) {
			continue
		}
		if c.Epoch <= s.epochs[c.Partition] {
			s.t.Fatalf("partition %d granted at epoch %d after %d", c.Partition, c.Epoch, s.epochs[c.Partition])
		}
		s.epochs[c.Partition] = c.Epoch
		pr.held[c.Partition], pr.heldBy[c.Partition] = c.Epoch, plan.ClaimMembers[i]
	}
}

// check: no partition held by two processes that may still deliver it.
func (s *sim) check(procs []*simProc, step int) {
	for p := range s.n {
		var holders []string
		for _, pr := range procs {
			if _, ok := pr.held[p]; ok && !pr.crashed && s.now.Before(pr.valid) {
				holders = append(holders, pr.name)
			}
		}
		if len(holders) > 1 {
			for _, pr := range procs {
				s.t.Logf("%s crashed=%v cut=%v valid=%v held=%v by=%v members=%v", pr.name, pr.crashed, pr.cut, pr.valid.Sub(s.now), pr.held, pr.heldBy, pr.members)
			}
			st, _ := decodeShared(s.entry)
			s.t.Logf("entry %+v", st)
			s.t.Fatalf("step %d: partition %d held by %v at once", step, p, holders)
		}
	}
}

// TestSharedSim: processes join and leave members, crash, lose the store
// for a while and sync in random interleavings (a write may come long
// after its read) with a random clock: no partition is ever held by two
// processes that may deliver it, epochs of a partition increase, and once
// the live processes sync undisturbed every partition is owned by a live
// member, balanced (exclusive: all by the first member).
func TestSharedSim(t *testing.T) {
	t.Parallel()
	const lease = 4 * time.Second
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 11))
		s := &sim{t: t, n: int32(1 + rng.IntN(8)), lease: lease, now: time.Unix(1000, 0), epochs: map[int32]uint64{}, exclusive: seed%2 == 1}
		var procs []*simProc
		newProc := func() {
			procs = append(procs, &simProc{name: fmt.Sprintf("p%d", len(procs)), held: map[int32]uint64{}, heldBy: map[int32]string{}, obs: observed{}})
		}
		for range 3 {
			newProc()
		}
		memberSeq := 0
		live := func() []*simProc {
			var out []*simProc
			for _, pr := range procs {
				if !pr.crashed {
					out = append(out, pr)
				}
			}
			return out
		}
		for step := range 400 {
			s.now = s.now.Add(time.Duration(rng.IntN(int(lease / 5))))
			lp := live()
			if len(lp) == 0 {
				newProc()
				continue
			}
			pr := lp[rng.IntN(len(lp))]
			switch r := rng.IntN(100); {
			case r < 10:
				memberSeq++
				pr.members = append(pr.members, fmt.Sprintf("m%d", memberSeq))
			case r < 15 && len(pr.members) > 0:
				i := rng.IntN(len(pr.members))
				gone := pr.members[i]
				pr.members = slices.Delete(pr.members, i, i+1)
				for p := range pr.held { // its partitions stop here at once (Core.Leave)
					if pr.heldBy[p] == gone {
						delete(pr.held, p)
					}
				}
			case r < 17:
				pr.crashed = true
				newProc()
			case r < 22:
				pr.cut = !pr.cut
			case r < 30 && !pr.cut:
				// A write long after its read; others sync meanwhile.
				cur, plan, start := s.read(pr)
				s.check(procs, step)
				for range rng.IntN(3) {
					s.now = s.now.Add(time.Duration(rng.IntN(int(lease))))
					if o := lp[rng.IntN(len(lp))]; o != pr && !o.cut {
						c2, p2, st2 := s.read(o)
						s.write(o, c2, p2, st2)
						s.check(procs, step)
					}
				}
				s.write(pr, cur, plan, start)
			case !pr.cut:
				cur, plan, start := s.read(pr)
				s.write(pr, cur, plan, start)
			}
			s.check(procs, step)
		}
		// Undisturbed: every live process reaches the entry and syncs.
		for _, pr := range procs {
			pr.cut = false
		}
		for range 40 {
			s.now = s.now.Add(lease / 8)
			for _, pr := range live() {
				cur, plan, start := s.read(pr)
				s.write(pr, cur, plan, start)
				s.check(procs, -1)
			}
		}
		var all []string
		counts := map[string]int{}
		for _, pr := range live() {
			for _, m := range pr.members {
				all = append(all, pr.name+"/"+m)
				counts[pr.name+"/"+m] = 0
			}
		}
		if len(all) == 0 {
			continue
		}
		for p := range s.n {
			var holder string
			for _, pr := range live() {
				if _, ok := pr.held[p]; ok {
					holder = pr.name + "/" + pr.heldBy[p]
				}
			}
			if _, ok := counts[holder]; !ok {
				t.Fatalf("seed %d: partition %d held by %q, not a live member of %v", seed, p, holder, all)
			}
			counts[holder]++
		}
		if s.exclusive {
			st, _ := decodeShared(s.entry)
			if first := st.Members[0].Proc + "/" + st.Members[0].ID; counts[first] != int(s.n) {
				t.Fatalf("seed %d: exclusive, but %v (first member %s)", seed, counts, first)
			}
			continue
		}
		lo, hi := int(s.n), 0
		for _, c := range counts {
			lo, hi = min(lo, c), max(hi, c)
		}
		if hi-lo > 1 {
			t.Fatalf("seed %d: unbalanced %v", seed, counts)
		}
	}
}

// TestSharedPartitionCount: an entry written for another partition count
// starts over only when no other live process is in it.
func TestSharedPartitionCount(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	old := &SharedState{Partitions: 2, Seq: 5, Beat: 3, Procs: map[string]uint64{"B": 3},
		Members: []SharedMember{{"B", "b"}}, Owners: []SharedOwner{{SharedMember{"B", "b"}, 4}, {SharedMember{"B", "b"}, 5}}}
	for _, tc := range []struct {
		name    string
		entry   *SharedState
		wantErr bool
	}{
		{"another live process", old, true},
		{"only this process", &SharedState{Partitions: 2, Seq: 5, Beat: 3, Procs: map[string]uint64{"A": 3},
			Members: []SharedMember{{"A", "a"}}, Owners: []SharedOwner{{SharedMember{"A", "a"}, 4}, {SharedMember{"A", "a"}, 5}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := planShared(tc.entry, Local{Proc: "A", Members: []string{"a"}, Held: map[int32]uint64{}}, "t", "g", 3, time.Second, observed{}, now, false, false)
			if tc.wantErr {
				if !errors.Is(plan.Err, ErrPartitions) || plan.Next != nil || len(plan.Claims) > 0 {
					t.Fatalf("plan %+v, want ErrPartitions and nothing written", plan)
				}
				return
			}
			if plan.Err != nil || plan.Next == nil || plan.Next.Partitions != 3 || len(plan.Claims) != 3 || plan.Claims[0].Epoch <= 5 {
				t.Fatalf("plan %+v (next %+v), want the entry started over for 3 partitions, all claimed with new epochs", plan, plan.Next)
			}
		})
	}
}
