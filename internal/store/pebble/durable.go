package pebble

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Durability of reads.
//
// Pebble makes a batch visible to readers when it is applied to the
// memtable, before its WAL fsync completes. The resolver publishes what it
// reads, so a read must never return a row that a crash could still take
// away. A synced Apply therefore:
//
//  1. takes the stripes of its keys, checks versions and stages the batch,
//  2. registers a flight for its keys (still holding the stripes, with one
//     flightsMu lock per stripe for all its keys: track, rows.go),
//  3. applies the batch with ApplyNoSyncWait: the sequence numbers are
//     assigned under the stripe locks, so last-writer-wins order holds,
//  4. releases the stripes, so other batches pipeline into the same WAL sync
//     (group commit), and hands the batch to the syncer, which waits for
//     the sync (Batch.SyncWait),
//  5. closes the flight and removes it, and answers the caller.
//
// The syncer is one goroutine of the store: it waits for the batches in the
// order they were applied, which is (nearly) the order of the WAL, so a
// WAL sync wakes it once rather than every commit it made durable.
//
// Get reads the row, then looks for a flight of its key: the flight was
// registered before the row could be seen, and is removed only once it is
// durable, so if the row read came from a batch not yet synced, Get finds
// that batch's flight and waits for it. If the sync fails, the store fails
// (failstop.go) before the flight is closed, and Get, which checks for the
// failure after waiting, returns the failure instead of the row.
//
// A mutation that loses to a newer version reports "not applied" only once
// that version is durable: it waits for the flight of its key too. (The
// proxy answers a superseded write as acknowledged; a crash must not take
// away the version that superseded it.)
//
// Flights have a lock of their own in each stripe (flightsMu), so a Get
// never waits for a stripe that a commit holds.
//
// The catalog needs no flights: its writes (SaveTable, SwapTable) hold
// catalogMu until they are durable, and its reads (Tables, SwapTable) take
// it and check for the failure (lockCatalog, tables.go).

// flight is a synced batch between being applied and being durable.
type flight struct {
	done chan struct{}
}

func newFlight() *flight { return &flight{done: make(chan struct{})} }

// land marks f durable (or failed: the store failed first) and forgets it.
func (s *Store) land(f *flight, winners []pending) {
	close(f.done)
	for _, p := range winners {
		st := &s.stripes[p.stripe]
		st.flightsMu.Lock()
		if st.flights[p.key] == f {
			delete(st.flights, p.key)
		}
		st.flightsMu.Unlock()
	}
}

// flightOf returns the flight of the latest batch that wrote rowKey and is
// not durable yet, or nil.
func (s *Store) flightOf(rowKey []byte, stripe uint32) *flight {
	st := &s.stripes[stripe]
	st.flightsMu.Lock()
	defer st.flightsMu.Unlock()
	return st.flights[string(rowKey)]
}

// awaitDurable waits until the latest batch that wrote rowKey is durable.
func (s *Store) awaitDurable(ctx context.Context, rowKey []byte) error {
	return s.awaitFlight(ctx, s.flightOf(rowKey, s.stripeOf(rowKey)))
}

// awaitFlight waits for f (nil: nothing to wait for), the store's failure
// or the end of ctx.
func (s *Store) awaitFlight(ctx context.Context, f *flight) error {
	if f == nil {
		return nil
	}
	select {
	case <-f.done:
		return nil
	case <-s.failure.done:
		return s.failure.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxSyncing bounds the batches waiting for the syncer; a committer with
// another one waits.
const maxSyncing = 1024

// syncing is a batch applied but maybe not durable yet, and the caller's
// answer.
type syncing struct {
	b       *pebble.Batch
	f       *flight
	winners []pending
	done    chan<- error
}

// syncLater hands c to the syncer, or answers the store's failure if that
// comes first (the syncer may be blocked for good).
func (s *Store) syncLater(c syncing) {
	select {
	case s.syncq <- c:
	case <-s.failure.done:
		c.done <- s.failure.err
	}
}

// syncer waits for the WAL sync of each batch in turn, lands its flight and
// answers its caller, until the store is closed. A failed sync fails the
// store.
func (s *Store) syncer() {
	defer func() {
		if r := recover(); r != nil {
			s.failure.fail(fmt.Errorf("pebble panicked in a WAL sync: %v", r))
		}
	}()
	for {
		select {
		case c := <-s.syncq:
			err := c.b.SyncWait()
			if err != nil {
				err = s.failure.fail(fmt.Errorf("WAL sync: %w", err))
			}
			s.land(c.f, c.winners) // after the failure, so a Get woken by it sees it
			_ = c.b.Close()
			c.done <- err
		case <-s.quit:
			return
		}
	}
}
