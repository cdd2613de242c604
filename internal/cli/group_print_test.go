package cli

import (
	"strings"
	"testing"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestPrintGroupPartitions: `wail group describe` marks a partition that
// moves once its owner acknowledged what it was sent.
func TestPrintGroupPartitions(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	if err := printGroupPartitions(&b, []*wailv1.GroupPartition{
		{Partition: 0, Committed: 3, End: 5, Lag: 2, Owner: "m1"},
		{Partition: 1, Committed: 4, End: 9, Lag: 5, Owner: "m1", Revoking: true, UnackedMs: 120},
	}); err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(b.String(), "\n")
	if !strings.Contains(rows[1], "m1") || strings.Contains(rows[1], "revoking") || !strings.Contains(rows[2], "m1 (revoking)") {
		t.Fatalf("printed:\n%s", b.String())
	}
}
