package group

import (
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestRegistryRecordedOncePerLoad: a group whose members come and go
// (each join after all left loads it again from the log) has its topic
// id recorded in the group registry once, not at every load: the
// registry is a compacted topic that `wail group ls` and a new group's
// load (positionsLost) read whole, and a record per join grew it (and
// cost a write to the log) with every reconnect of a lone member.
func TestRegistryRecordedOncePerLoad(t *testing.T) {
	ctx, l, topic := kafkaTopic(t, "registry-once", 1)
	if err := appendValues(ctx, l, topic, "a"); err != nil {
		t.Fatal(err)
	}
	tb := Table{Name: topic, Topic: topic, Partitions: 1, Created: 1}
	G := New(patientKafka{l}, time.Minute)
	defer G.Close()
	const joins = 6
	for range joins {
		s, err := G.Join(ctx, tb, "g", "a", true)
		if err != nil {
			t.Fatal(err)
		}
		s.Leave()
	}
	n := 0
	if err := G.scanRegistry(ctx, func(rec intentlog.Record) {
		if name, ok := registryName(rec.Key, tb.Name); ok && name == "g" {
			n++
		}
	}); err != nil {
		t.Fatal(err)
	}
	if n > 1 {
		t.Errorf("%d registry records of the group after %d joins, want 1", n, joins)
	}
}
