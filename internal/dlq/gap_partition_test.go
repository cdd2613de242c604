package dlq

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

// scanCountingStore counts the table scans, and fails them.
type scanCountingStore struct {
	*pebble.Store
	scans atomic.Int64
}

func (s *scanCountingStore) ScanKeys(context.Context, string, []byte, int) ([]store.KeyVersion, error) {
	s.scans.Add(1)
	return nil, errors.New("scan refused")
}

// TestRedriveGapOfAPartitionNotInTheTable: a GAP letter names a partition
// the table does not have (its partitions are 0 to Partitions-1: a letter
// of another incarnation of the table, or damaged): none of the table's
// keys is there, so its redrive settles it without reconciling anything:
// no scan of the table's store (a scan of every key, for nothing, which
// fails the redrive when the store fails it).
func TestRedriveGapOfAPartitionNotInTheTable(t *testing.T) {
	t.Parallel()
	tb := newTable(t) // one partition: 0
	ctx := t.Context()
	st := &scanCountingStore{Store: tb.store}
	tb.o.Store = st
	offs := appendLetters(t, tb.log, gap(1))
	got, err := tb.q.Redrive(ctx, Selection{All: true}, tb.o, tb.t)
	if err != nil {
		t.Fatalf("redrive of the GAP letter of partition 1 of a one-partition table: %v", err)
	}
	if n := st.scans.Load(); n != 0 {
		t.Errorf("%d scans of the table's store, want none", n)
	}
	if len(got.Resolutions) != 1 || got.Resolutions[0].Offset != offs[0] || got.Resolutions[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN {
		t.Errorf("resolutions %v, want the letter redriven", got.Resolutions)
	}
}
