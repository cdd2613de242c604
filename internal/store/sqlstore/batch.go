package sqlstore

import (
	"bytes"
	"fmt"
	"math"
	"slices"

	"github.com/wail-cdc/wail/internal/store"
)

// Winners returns, per distinct key of muts in order of first appearance,
// the index of the mutation that stands for it (the highest version; on a
// tie the earliest), and for every mutation the position of its key in
// that list. Versions must fit a signed 64-bit column.
func Winners(muts []store.Mutation) (winners []int, slot []int, err error) {
	byKey := make(map[string]int, len(muts))
	slot = make([]int, len(muts))
	for i, m := range muts {
		if m.Version > math.MaxInt64 {
			return nil, nil, fmt.Errorf("key %q: version %d does not fit a signed 64-bit column", m.Key, m.Version)
		}
		j, dup := byKey[string(m.Key)]
		switch {
		case !dup:
			j = len(winners)
			byKey[string(m.Key)] = j
			winners = append(winners, i)
		case m.Version > muts[winners[j]].Version:
			winners[j] = i
		}
		slot[i] = j
	}
	return winners, slot, nil
}

// Batch is a deduplicated Apply as parallel arrays (the columns a store
// sends): one entry per distinct key, holding the mutation that wins it
// (see Winners), sorted by lock key so that concurrent batches lock rows
// in one order.
type Batch struct {
	LockKeys [][]byte // what the entries are sorted by: the key, or what lockKey made of it
	Keys     [][]byte
	Values   [][]byte // never nil: empty for a tombstone (NOT NULL)
	Versions []int64
	Deleted  []bool
	// SchemaIDs: Mutation.SchemaID (0 for a tombstone).
	SchemaIDs []int64
	// Docs: Mutation.Doc as text, nil (SQL NULL) for a tombstone or a row
	// without one.
	Docs   []*string
	winner []int // per entry: index of the mutation that stands for the key
	slot   []int // per mutation: its key's entry
}

// NewBatch deduplicates muts into a Batch. lockKey maps a key to what the
// entries are sorted by (the row's primary key, e.g. the key's hash); nil
// sorts them by the key itself.
func NewBatch(muts []store.Mutation, lockKey func(key []byte) []byte) (*Batch, error) {
	winners, slot, err := Winners(muts)
	if err != nil {
		return nil, err
	}
	locks := make([][]byte, len(winners))
	order := make([]int, len(winners)) // positions in winners, by lock key
	for j, i := range winners {
		locks[j], order[j] = muts[i].Key, j
		if lockKey != nil {
			locks[j] = lockKey(muts[i].Key)
		}
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(locks[a], locks[b]) })
	entryOf := make([]int, len(winners))
	b := &Batch{slot: make([]int, len(muts))}
	for e, j := range order {
		entryOf[j] = e
		m := muts[winners[j]]
		value, schemaID, doc := m.Value, int64(m.SchemaID), (*string)(nil)
		if m.Delete {
			value, schemaID = nil, 0
		} else if m.Doc != nil {
			d := string(m.Doc)
			doc = &d
		}
		b.SchemaIDs = append(b.SchemaIDs, schemaID)
		b.Docs = append(b.Docs, doc)
		b.LockKeys = append(b.LockKeys, locks[j])
		b.Keys = append(b.Keys, m.Key)
		b.Values = append(b.Values, NotNull(value))
		b.Versions = append(b.Versions, int64(m.Version))
		b.Deleted = append(b.Deleted, m.Delete)
		b.winner = append(b.winner, winners[j])
	}
	for i := range muts {
		b.slot[i] = entryOf[slot[i]]
	}
	return b, nil
}

// Find returns the entry whose lock key is lockKey.
func (b *Batch) Find(lockKey []byte) (int, bool) {
	return slices.BinarySearchFunc(b.LockKeys, lockKey, bytes.Compare)
}

// Outcomes returns what each of muts (the mutations b was made of) did,
// from which entries were applied and the versions stored for the others
// (0 when unknown; stored is not read for applied entries).
func (b *Batch) Outcomes(muts []store.Mutation, applied []bool, stored []uint64) []store.Outcome {
	out := make([]store.Outcome, len(muts))
	for i, m := range muts {
		j := b.slot[i]
		cur := stored[j]
		if applied[j] {
			if b.winner[j] == i {
				out[i] = store.Outcome{Applied: true, Current: m.Version}
				continue
			}
			cur = uint64(b.Versions[j])
		}
		if cur <= m.Version {
			cur = 0 // a version at or below m's cannot have beaten it: unknown
		}
		out[i] = store.Outcome{Current: cur}
	}
	return out
}
