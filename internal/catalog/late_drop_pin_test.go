package catalog

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
)

// genStore is a store whose drops are pinned as Cassandra's are
// (store.PinnedDropper), over one pebble store shared by the processes of
// a test: each table has a generation, which every drop moves on, and the
// rows are those of its current generation. A drop with the pin of a
// generation past leaves the rows (that generation's went with its first
// drop); DropTable drops the current one's.
type genStore struct {
	*pebble.Store
	mu   sync.Mutex
	gens map[string]uint64
}

var _ store.PinnedDropper = (*genStore)(nil)

func (s *genStore) DropPin(_ context.Context, table string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return binary.BigEndian.AppendUint64(nil, s.gens[table]), nil
}

func (s *genStore) DropTablePinned(ctx context.Context, table string, pin []byte) error {
	if len(pin) != 8 {
		return fmt.Errorf("%w: drop pin %x is not a generation", store.ErrBadPin, pin)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if binary.BigEndian.Uint64(pin) != s.gens[table] {
		return nil
	}
	return s.dropLocked(ctx, table)
}

func (s *genStore) DropTable(ctx context.Context, table string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropLocked(ctx, table)
}

func (s *genStore) dropLocked(ctx context.Context, table string) error {
	if s.gens == nil {
		s.gens = map[string]uint64{}
	}
	s.gens[table]++
	return s.Store.DropTable(ctx, table)
}
