package group

import (
	"context"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// forgetCommits is a log whose group has lost its committed offsets:
// Kafka expired them (offsets.retention.minutes: a partition without a
// commit for that long, in a group without Kafka members), or an operator
// deleted the Kafka consumer group. Its commits still land.
type forgetCommits struct{ intentlog.Log }

func (forgetCommits) Committed(context.Context, string, string) (map[int32]int64, error) {
	return nil, nil
}

// TestSharedStartNotReusedOnceCommitted: the start a shared group's first
// join wrote to its entry is the start of partitions never committed. Once
// a member committed past it (its acknowledgements), a member that joins
// after the group lost its committed offsets starts where its own join
// puts it ("latest": the end), as a new group does; it must not start at
// the group's first start again, delivering for a second time the events
// acknowledged since (the entry's start was used as long as the table was
// the same one).
func TestSharedStartNotReusedOnceCommitted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base := openLog(t)
	tb := table(t, base, 2, 5)
	cat, share := memSharing()
	A := New(base, time.Minute).Share(share("A"))
	defer A.Close()
	a, err := A.Join(ctx, tb, "g", "a", true)
	if err != nil {
		t.Fatal(err)
	}
	oa := owned{}
	until(t, a, oa, nil, func() bool { return len(oa) == 2 })
	appendRecords(t, base, 40)
	ends := map[int32]int64{}
	for p := range tb.Partitions {
		_, end, err := base.Bounds(ctx, tb.Topic, p)
		if err != nil {
			t.Fatal(err)
		}
		ends[p] = end
	}
	// a reads every event and acknowledges them.
	read := map[int32]int64{}
	until(t, a, oa, func(m Message) {
		if a.Check(m) {
			read[m.Partition] = m.Next
		}
	}, func() bool {
		return read[0] == ends[0] && read[1] == ends[1]
	})
	refused, err := A.Ack(ctx, tb, "g", "a", []Ack{{0, oa[0], ends[0]}, {1, oa[1], ends[1]}})
	if err != nil || len(refused) > 0 {
		t.Fatalf("ack: %v %v", refused, err)
	}
	entry := func() *SharedState {
		t.Helper()
		cat.mu.Lock()
		b := cat.m[SharedEntry(tb.Name, "g")]
		cat.mu.Unlock()
		st, err := decodeShared(b)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	waitEntry := func(what string, cond func(*SharedState) bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(entry()); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not in the entry: %+v", what, entry())
			}
		}
	}
	// a stays until its process wrote the entry twice more (as a member
	// that runs for a while does), then leaves.
	beat := entry().Beat
	waitEntry("two more writes", func(st *SharedState) bool { return st.Beat >= beat+2 })
	a.Leave()
	waitEntry("a's leave", func(st *SharedState) bool { return len(st.Members) == 0 })
	// The group's committed offsets are lost; a member joins from "latest".
	C := New(forgetCommits{base}, time.Minute).Share(share("C"))
	defer C.Close()
	c, err := C.Join(ctx, tb, "g", "c", true)
	if err != nil {
		t.Fatal(err)
	}
	granted := grantedOffsets(ctx, t, c, 2)
	for p, o := range granted {
		if o < ends[p] {
			t.Errorf("c's partition %d starts at %d, the group's first start: the events to %d, acknowledged by a, are delivered again "+
				"(want the end, %d, where a new group's join from \"latest\" starts)", p, o, ends[p], ends[p])
		}
	}
}

// TestPlanStartsSpent: planStarts marks spent the entry's starts of the
// partitions the process holds with a committed position (of the same
// table only), and a spent start counts as written: a process whose join
// found the partition without a committed position (before the commit)
// does not write it again. The topic the starts are of is kept.
func TestPlanStartsSpent(t *testing.T) {
	t.Parallel()
	entry := func(created int64, offs map[int32]int64) *SharedStarts {
		return &SharedStarts{Created: created, Offsets: offs}
	}
	of := func(topic string, s *SharedStarts) *SharedStarts {
		s.Topic = topic
		return s
	}
	for _, tc := range []struct {
		name    string
		starts  *SharedStarts
		l       Local
		want    *SharedStarts
		changed bool
	}{
		{"committed held partition spent", entry(7, map[int32]int64{0: 5, 1: 6}),
			Local{Members: []string{"a"}, Created: 7, Committed: map[int32]bool{1: true}},
			entry(7, map[int32]int64{0: 5, 1: startSpent}), true},
		{"already spent", entry(7, map[int32]int64{0: startSpent}),
			Local{Members: []string{"a"}, Created: 7, Committed: map[int32]bool{0: true}},
			entry(7, map[int32]int64{0: startSpent}), false},
		{"another table's starts left", entry(7, map[int32]int64{0: 5}),
			Local{Members: []string{"a"}, Created: 8, Committed: map[int32]bool{0: true}},
			entry(7, map[int32]int64{0: 5}), false},
		{"spent is written: not again", entry(7, map[int32]int64{0: startSpent, 1: 6}),
			Local{Members: []string{"b"}, Created: 7, Starts: map[int32]int64{0: 9, 1: 9}},
			entry(7, map[int32]int64{0: startSpent, 1: 6}), false},
		{"a partition not written yet added", entry(7, map[int32]int64{0: startSpent}),
			Local{Members: []string{"b"}, Created: 7, Starts: map[int32]int64{0: 9, 1: 9}},
			entry(7, map[int32]int64{0: startSpent, 1: 9}), true},
		// The topic the starts are of stays with those not spent: a
		// partition granted later on a topic created again since starts
		// at its start (grant).
		{"spent: the topic kept", of("ab", entry(7, map[int32]int64{0: 5, 1: 6})),
			Local{Members: []string{"a"}, Created: 7, Committed: map[int32]bool{1: true}, StartsTopic: "ab"},
			of("ab", entry(7, map[int32]int64{0: 5, 1: startSpent})), true},
		{"added: the entry's topic kept", of("ab", entry(7, map[int32]int64{0: startSpent})),
			Local{Members: []string{"b"}, Created: 7, Starts: map[int32]int64{0: 9, 1: 9}, StartsTopic: "cd"},
			of("ab", entry(7, map[int32]int64{0: startSpent, 1: 9})), true},
		{"an entry of an older wail (no topic): none", entry(7, map[int32]int64{0: 5}),
			Local{Members: []string{"b"}, Created: 7, Starts: map[int32]int64{0: 9, 1: 9}, StartsTopic: "cd"},
			entry(7, map[int32]int64{0: 5, 1: 9}), true},
		{"a new entry: this process's topic", nil,
			Local{Members: []string{"b"}, Created: 7, Starts: map[int32]int64{0: 9}, StartsTopic: "cd"},
			of("cd", entry(7, map[int32]int64{0: 9})), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before map[int32]int64
			if tc.starts != nil {
				before = maps.Clone(tc.starts.Offsets)
			}
			next := SharedState{Starts: tc.starts}
			if changed := planStarts(&next, tc.l); changed != tc.changed {
				t.Errorf("changed = %v, want %v", changed, tc.changed)
			}
			if !reflect.DeepEqual(next.Starts, tc.want) {
				t.Errorf("starts = %+v, want %+v", next.Starts, tc.want)
			}
			if tc.starts != nil && !maps.Equal(tc.starts.Offsets, before) {
				t.Errorf("the entry read was changed in place: %v, was %v", tc.starts.Offsets, before)
			}
		})
	}
}

// grantedOffsets reads s's messages until n partitions were granted to it
// and returns the offset each was granted at.
func grantedOffsets(ctx context.Context, t *testing.T, s *Session, n int) map[int32]int64 {
	t.Helper()
	granted := map[int32]int64{}
	for len(granted) < n {
		m, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("%s got no partition: %v (granted %v)", s.id, err, granted)
		}
		for _, g := range m.Granted {
			granted[g.Partition] = g.Offset
		}
	}
	return granted
}
