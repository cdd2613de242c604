package pebble

import (
	"slices"

	"github.com/wail-cdc/wail/internal/store"
)

// Order of the memtable inserts, outside the stripes.
//
// Last-writer-wins needs the batches that write one key to reach Pebble
// in the order in which their versions were checked: Pebble keeps the
// write with the higher sequence number, and ApplyNoSyncWait assigns them
// in call order. The stripes used to be held across ApplyNoSyncWait for
// that, so a batch's memtable insert held up every batch and commit that
// shared a stripe with it (a batch of 1000 random keys takes nearly all
// 256), the readers' flight lookups too.
//
// Now a synced batch, under its stripes, reserves each key it writes: the
// key's entry in the stripe's applying map names the batch (its turn) and
// the version, and the version goes into the version cache. A batch that
// reserves a key after another one, and finds that one not yet applied,
// waits for it (outside the stripes) before its own ApplyNoSyncWait. So
// batches that share keys reach Pebble in the order of their checks, and
// batches that share none insert concurrently.
//
// A version check (currentVersion, under the stripe) sees a reserved
// version in the cache, or, if the cache evicted it, in the applying map:
// never the older one Pebble still holds. An entry leaves the map once its
// batch is in the memtable (Pebble then returns its version). Waiting for
// a turn is bounded by the store's failure: a batch that failed or
// panicked in Pebble failed the store.
//
// No deadlock: a batch waits only for batches that reserved before it did,
// and those wait only for earlier ones.

// turn is a synced batch's place in the order of the writes of its keys.
type turn struct {
	done  chan struct{}   // closed once the batch is in the memtable
	after []chan struct{} // batches that reserved one of its keys before it
}

// reservation is a key's latest batch not yet in the memtable.
type reservation struct {
	done    chan struct{}
	version uint64
}

// reserve gives the batch of the winners that were applied its turn for
// each of their keys and caches their versions. The caller holds their
// stripes.
func (s *Store) reserve(muts []store.Mutation, winners []pending, out []store.Outcome) *turn {
	t := &turn{done: make(chan struct{})}
	for _, p := range winners {
		if !out[p.idx].Applied {
			continue
		}
		st := &s.stripes[p.stripe]
		if r, ok := st.applying[string(p.rowKey)]; ok && !isClosed(r.done) && !slices.Contains(t.after, r.done) {
			t.after = append(t.after, r.done)
		}
		if st.applying == nil {
			st.applying = make(map[string]reservation)
		}
		v := muts[p.idx].Version
		st.applying[string(p.rowKey)] = reservation{done: t.done, version: v}
		s.remember(p.stripe, p.rowKey, v)
	}
	return t
}

// awaitTurn waits until the batches before t are in the memtable, or for
// the store's failure.
func (s *Store) awaitTurn(t *turn) error {
	for _, c := range t.after {
		select {
		case <-c:
		case <-s.failure.done:
			return s.failure.err
		}
	}
	return nil
}

// endTurn marks t's batch as in the memtable and removes its reservations
// (those no later batch replaced), taking each stripe once (order from
// groupByStripe).
func (s *Store) endTurn(t *turn, winners []pending, order []int32) {
	close(t.done)
	for i := 0; i < len(order); {
		st := &s.stripes[winners[order[i]].stripe]
		st.Lock()
		for ; i < len(order) && &s.stripes[winners[order[i]].stripe] == st; i++ {
			k := winners[order[i]].rowKey
			if r, ok := st.applying[string(k)]; ok && r.done == t.done {
				delete(st.applying, string(k))
			}
		}
		st.Unlock()
	}
}

// reserved returns the version of rowKey's batch not yet in the memtable,
// if any. The caller holds the stripe.
func (s *Store) reserved(rowKey []byte, stripe uint32) (uint64, bool) {
	r, ok := s.stripes[stripe].applying[string(rowKey)]
	return r.version, ok
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
