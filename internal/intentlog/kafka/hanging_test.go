package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

func TestHanging(t *testing.T) {
	t.Parallel()
	const topic, part = "wail.events.t", int32(3)
	with := kadm.TopicsSet{topic: {part: {}}}
	other := kadm.TopicsSet{topic: {1: {}}}
	open := openTxn{pid: 7, epoch: 9}
	tests := []struct {
		name string
		c    coordView
		want bool
	}{
		{"transactional id expired", coordView{}, true},
		{"id moved to another producer id", coordView{found: true, pid: 8, epoch: 0, state: "Ongoing", parts: with}, true},
		{"id moved, the same epoch ongoing", coordView{found: true, pid: 8, epoch: 9, state: "Ongoing", parts: with}, true},
		{"id moved, the same epoch preparing", coordView{found: true, pid: 8, epoch: 9, state: "PrepareCommit"}, true},
		{"its own transaction, ongoing", coordView{found: true, pid: 7, epoch: 9, state: "Ongoing", parts: with}, false},
		{"ongoing without the partition", coordView{found: true, pid: 7, epoch: 9, state: "Ongoing", parts: other}, true},
		{"a later transaction ongoing", coordView{found: true, pid: 7, epoch: 10, state: "Ongoing", parts: with}, true},
		{"markers being written (v2 epoch bump)", coordView{found: true, pid: 7, epoch: 10, state: "PrepareCommit"}, false},
		{"markers being written (v1)", coordView{found: true, pid: 7, epoch: 9, state: "PrepareAbort"}, false},
		{"a later transaction preparing", coordView{found: true, pid: 7, epoch: 12, state: "PrepareCommit"}, true},
		{"fenced while preparing", coordView{found: true, pid: 7, epoch: 10, state: "PrepareEpochFence"}, false},
		{"completed: markers lost", coordView{found: true, pid: 7, epoch: 10, state: "CompleteCommit"}, true},
		{"aborted: markers lost", coordView{found: true, pid: 7, epoch: 10, state: "CompleteAbort"}, true},
		{"empty", coordView{found: true, pid: 7, epoch: 9, state: "Empty"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := hanging(open, tc.c, topic, part); got != tc.want {
				t.Errorf("hanging = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestJavaHash(t *testing.T) {
	t.Parallel()
	// Values printed by Java's String.hashCode.
	for s, want := range map[string]int32{"": 0, "hello": 99162322, "é": 233, "wail-resolver.orders": -203493011} {
		if got := javaHash(s); got != want {
			t.Errorf("javaHash(%q) = %d, want %d", s, got, want)
		}
	}
}

// TestOffsetsPartition: a group's offsets partition is Kafka's, for
// groups whose Java hash is negative too.
func TestOffsetsPartition(t *testing.T) {
	t.Parallel()
	for group, want := range map[string]int32{"": 0, "hello": 22, "wail-resolver.orders": 37} {
		if got := offsetsPartition(group, 50); got != want {
			t.Errorf("offsetsPartition(%q, 50) = %d, want %d", group, got, want)
		}
	}
}
