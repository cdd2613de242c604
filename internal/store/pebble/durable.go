package pebble

import (
	"context"
	"slices"
)

// Durability of reads.
//
// Pebble makes a batch visible to readers when it is applied to the
// memtable, before its WAL fsync completes. The resolver publishes what it
// reads, so a read must never return a row that a crash could still take
// away. A synced Apply therefore:
//
//  1. takes the stripes of its keys, checks versions and stages the batch,
//  2. registers a flight for its keys on their stripes (still locked),
//  3. applies the batch with ApplyNoSyncWait: the sequence numbers are
//     assigned under the stripe locks, so last-writer-wins order holds,
//  4. releases the stripes, so other batches pipeline into the same WAL sync
//     (group commit), and waits for the sync (Batch.SyncWait),
//  5. closes the flight and removes it from the stripes.
//
// Get reads the row, then looks for a flight of its key: the flight was
// registered before the row could be seen, and is removed only once it is
// durable, so if the row read came from a batch not yet synced, Get finds
// that batch's flight and waits for it.

// flight is a synced batch between being applied and being durable.
type flight struct {
	done chan struct{}
}

// register records f for the row keys; the caller holds their stripes.
func (s *Store) register(f *flight, winners []pending) {
	for _, p := range winners {
		st := &s.stripes[p.stripe]
		if st.flights == nil {
			st.flights = map[string]*flight{}
		}
		st.flights[string(p.rowKey)] = f
	}
}

// land marks f durable (or failed) and forgets it.
func (s *Store) land(f *flight, winners []pending, stripes []uint32) {
	close(f.done)
	for _, i := range stripes {
		s.stripes[i].Lock()
	}
	for _, p := range winners {
		st := &s.stripes[p.stripe]
		if st.flights[string(p.rowKey)] == f {
			delete(st.flights, string(p.rowKey))
		}
	}
	for _, i := range slices.Backward(stripes) {
		s.stripes[i].Unlock()
	}
}

// awaitDurable waits until the latest batch that wrote rowKey is durable.
func (s *Store) awaitDurable(ctx context.Context, rowKey []byte) error {
	st := &s.stripes[s.stripeOf(rowKey)]
	st.RLock()
	f := st.flights[string(rowKey)]
	st.RUnlock()
	if f == nil {
		return nil
	}
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
