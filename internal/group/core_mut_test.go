package group

import (
	"maps"
	"testing"
	"time"
)

// TestCoreSharedLeaveFreesOnlyItsPartitions: in shared mode a member that
// leaves gives up its partitions here at once (the next sync releases
// them), and only those: the other members keep theirs, at their epochs.
func TestCoreSharedLeaveFreesOnlyItsPartitions(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	c := NewCore(3, time.Second, nil, 0)
	c.shared = true
	for _, id := range []string{"a", "b"} {
		if ch, err := c.Join(id, t0); err != nil || len(ch.Granted)+len(ch.Revoked)+len(ch.Draining) != 0 {
			t.Fatalf("join %s in shared mode = %+v, %v: want no change (the shared entry grants)", id, ch, err)
		}
	}
	c.Grant(0, "a", 4, 10)
	c.Grant(1, "b", 5, 20)
	// 2 is nobody's.
	if ch := c.Leave("a", t0); len(ch.Granted)+len(ch.Revoked)+len(ch.Draining) != 0 {
		t.Fatalf("leave in shared mode = %+v, want no change sent (a left)", ch)
	}
	if got, want := c.Held(), map[int32]uint64{1: 5}; !maps.Equal(got, want) {
		t.Fatalf("held after a left = %v, want %v", got, want)
	}
	if o, _ := c.Owner(0); o != "" {
		t.Fatalf("partition 0 still owned by %q after its owner left", o)
	}
	if o, e := c.Owner(1); o != "b" || e != 5 {
		t.Fatalf("partition 1 owned by %q at %d, want b at 5", o, e)
	}
}

// TestCoreAckAtGrantedOffset: a member granted a partition may acknowledge
// the offset it was granted at before it was sent anything (nothing to
// commit but the first offset when none was, no error): what was
// committed counts as delivered, whether the partition is granted on a join
// or moves from a member that left.
func TestCoreAckAtGrantedOffset(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name      string
		committed int64
		move      bool // from a member that left
		commits   bool
	}{
		{"granted on join", 5, false, false},
		{"never committed", -1, false, true},
		{"moved from a member that left", 7, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCore(1, time.Second, map[int32]int64{0: tc.committed}, 0)
			ch, err := c.Join("a", t0)
			if err != nil {
				t.Fatal(err)
			}
			id, g := "a", ch.Granted["a"][0]
			if tc.move {
				if _, err := c.Join("b", t0); err != nil {
					t.Fatal(err)
				}
				ch = c.Leave("a", t0)
				id, g = "b", ch.Granted["b"][0]
			}
			at := max(tc.committed, 0)
			if commits, err := c.Ack(id, 0, g.Epoch, at); err != nil || commits != tc.commits {
				t.Fatalf("ack at the granted %d = %v, %v; want %v, nil", at, commits, err, tc.commits)
			}
		})
	}
}
