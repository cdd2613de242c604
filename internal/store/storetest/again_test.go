package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

// timingOut is the weakest store the contract allows, the way a loaded
// Cassandra cluster behaves at its worst: the first try of every batch
// writes only the first half of its keys and then answers that its outcome
// is unknown (ErrUnavailable, as a write_request_timeout); the next try of
// the batch goes through. A mutation not applied
// reports Current 0 (allowed when the store cannot tell cheaply; the
// stores do so for a version equal to the mutation's own, which is what a
// try after a timed-out one finds).
type timingOut struct {
	store.Store
	timeouts atomic.Int64
	tried    sync.Map // the batches timed out, by their first mutation
}

func (s *timingOut) Apply(ctx context.Context, table string, muts []store.Mutation) ([]store.Outcome, error) {
	first := fmt.Sprintf("%s/%x@%d", table, muts[0].Key, muts[0].Version)
	if _, again := s.tried.LoadOrStore(first, true); !again {
		s.timeouts.Add(1)
		if _, err := s.Store.Apply(ctx, table, muts[:(len(muts)+1)/2]); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("outcome unknown: %w: Operation timed out - received only 1 responses", store.ErrUnavailable)
	}
	out, err := s.Store.Apply(ctx, table, muts)
	for i := range out {
		if !out[i].Applied {
			out[i].Current = 0
		}
	}
	return out, err
}

// TestAppliedAgain runs the cases that write through applyAgain on a store
// that times out the first try of every write after writing part of it: the cases
// must pass, the keys an earlier try wrote counted applied. Before
// applyAgain read such keys back, Batch failed on every key of the timed
// out batch (Applied=false, want true) and Concurrent on a writer's first
// unknown outcome, as they did on a loaded Cassandra in CI.
func TestAppliedAgain(t *testing.T) {
	defer func(d time.Duration) { applyBackoff = d }(applyBackoff)
	applyBackoff = time.Microsecond
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"LastWriterWins", testLastWriterWins},
		{"Tombstones", testTombstones},
		{"Batch", testBatch},
		{"BatchDuplicates", testBatchDuplicates},
		{"Concurrent", testConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := pebble.Open(t.TempDir(), pebble.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			w := &timingOut{Store: s}
			tc.fn(t, w)
			if w.timeouts.Load() == 0 {
				t.Fatal("no write timed out")
			}
		})
	}
}
