package cassandra

import (
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/cassandra/cassandratest"
)

// TestReadRepairOnTheCluster is TestReadRepairKeepsRowsWhole on the real
// cluster: node 3 misses version 2 of a key (paused and held down by the
// others while nodes 1 and 2 take the write at LOCAL_QUORUM; hints are
// off), then a write of an older version, coordinated by node 3, reads the
// key's version at LOCAL_QUORUM, finds the replicas apart and repairs
// node 3. A read at ONE through node 3 must then return version 2 whole,
// not version 2's version cell with version 1's value (which `SELECT
// version` alone left there: read repair writes back only the columns a
// read names). Run `ScanKeys` the same way. It pauses a node of the test
// cluster: run it alone (-run).
func TestReadRepairOnTheCluster(t *testing.T) {
	base := testOptions(t)
	wopts, ropts := base, base
	wopts.Coordinators = base.Hosts[:2]  // nodes 1 and 2
	ropts.Coordinators = base.Hosts[2:3] // node 3
	writer, reader := openTest(t, wopts), openTest(t, ropts)
	ctx := t.Context()
	if err := writer.CreateTable(ctx, "rr"); err != nil {
		t.Fatal(err)
	}
	const v1, v2 = uint64(1 << 40), uint64(3 << 40)
	for _, how := range []struct {
		key    string
		repair func(key []byte) error // a read at LOCAL_QUORUM or above through node 3
	}{
		{"by-apply", func(key []byte) error {
			// An older version: the version read finds version 2, nothing
			// is written.
			outs, err := reader.Apply(ctx, "rr", []store.Mutation{{Key: key, Value: []byte("late"), Version: 2 << 40}})
			if err == nil && outs[0].Applied {
				t.Fatalf("a write of version %d over version %d was applied", uint64(2<<40), v2)
			}
			return err
		}},
		{"by-scan", func([]byte) error {
			_, err := reader.ScanKeys(ctx, "rr", nil, 100)
			return err
		}},
	} {
		key := []byte(how.key)
		if _, err := writer.Apply(ctx, "rr", []store.Mutation{{Key: key, Value: []byte("old"), Version: v1}}); err != nil {
			t.Fatal(err)
		}
		waitRow(t, reader, key, v1)
		resume := cassandratest.HoldDown(t, 3)
		if _, err := writer.Apply(ctx, "rr", []store.Mutation{{Key: key, Value: []byte("new"), Version: v2}}); err != nil {
			t.Fatalf("%s: write with node 3 paused: %v", how.key, err)
		}
		resume()
		if row := waitFound(t, reader, key); row.Version != v1 {
			t.Fatalf("%s: node 3 holds version %d, want the stale %d: it got the write, the test proves nothing", how.key, row.Version, v1)
		}
		// The repairing read, again until it went through node 3 (its
		// coordinator reads its own replica first, almost always).
		deadline := time.Now().Add(time.Minute)
		for {
			if err := how.repair(key); err != nil {
				t.Logf("%s: %v; again", how.key, err)
			}
			row := waitFound(t, reader, key)
			if row.Version == v2 {
				if string(row.Value) != "new" {
					t.Fatalf("%s: node 3 after the repair: version %d with value %q (version %d's): a row that is neither write", how.key, row.Version, row.Value, v1)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: node 3 still holds version %d a minute on: the repairing read never read it", how.key, row.Version)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// waitRow waits until a read at ONE finds version v of key.
func waitRow(t *testing.T, s *Store, key []byte, v uint64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		row, found, err := s.Get(t.Context(), "rr", key, 0)
		if err == nil && found && row.Version == v {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("version %d of %s not read at ONE within a minute: %+v %v %v", v, key, row, found, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFound reads key at ONE until a read succeeds and finds it.
func waitFound(t *testing.T, s *Store, key []byte) store.Row {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		row, found, err := s.Get(t.Context(), "rr", key, 0)
		if err == nil && found {
			return row
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not read at ONE within a minute: %v %v", key, found, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
