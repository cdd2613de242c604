package sqlstore

import (
	"bytes"
	"crypto/sha256"
	"reflect"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

func TestWinners(t *testing.T) {
	t.Parallel()
	muts := []store.Mutation{
		{Key: []byte("a"), Version: 2},
		{Key: []byte("b"), Version: 5},
		{Key: []byte("a"), Version: 7}, // beats a@2
		{Key: []byte("a"), Version: 7}, // a tie: the earliest stays
		{Key: []byte("b"), Version: 1},
	}
	winners, slot, err := Winners(muts)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(winners, []int{2, 1}) || !reflect.DeepEqual(slot, []int{0, 1, 0, 0, 1}) {
		t.Fatalf("winners %v slot %v", winners, slot)
	}
	if _, _, err := Winners([]store.Mutation{{Key: []byte("x"), Version: 1 << 63}}); err == nil {
		t.Fatal("a version above MaxInt64 was accepted")
	}
}

func TestNewBatch(t *testing.T) {
	t.Parallel()
	hash := func(k []byte) []byte { s := sha256.Sum256(k); return s[:] }
	muts := []store.Mutation{
		{Key: []byte("b"), Value: []byte("b1"), Version: 1},
		{Key: []byte("a"), Value: nil, Version: 2},
		{Key: []byte("b"), Value: []byte("b3"), Version: 3, Delete: true}, // wins b
		{Key: []byte("c"), Value: []byte("c1"), Version: 1},
	}
	tests := []struct {
		name    string
		lockKey func([]byte) []byte
	}{
		{"by key", nil},
		{"by hash", hash},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := NewBatch(muts, tc.lockKey)
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Keys) != 3 {
				t.Fatalf("%d entries, want 3", len(b.Keys))
			}
			for j := range b.Keys {
				want := b.Keys[j]
				if tc.lockKey != nil {
					want = tc.lockKey(b.Keys[j])
				}
				if !bytes.Equal(b.LockKeys[j], want) {
					t.Errorf("entry %d: lock key %x, want %x", j, b.LockKeys[j], want)
				}
				if j > 0 && bytes.Compare(b.LockKeys[j-1], b.LockKeys[j]) >= 0 {
					t.Errorf("entries %d and %d are not sorted by lock key", j-1, j)
				}
				if b.Values[j] == nil {
					t.Errorf("entry %d (%s): nil value", j, b.Keys[j])
				}
				if got, ok := b.Find(b.LockKeys[j]); !ok || got != j {
					t.Errorf("Find(entry %d) = %d, %v", j, got, ok)
				}
			}
			j, _ := b.Find(lockOf(tc.lockKey, []byte("b")))
			if b.Versions[j] != 3 || !b.Deleted[j] || len(b.Values[j]) != 0 {
				t.Errorf("b: version %d deleted %v value %q, want the tombstone at 3", b.Versions[j], b.Deleted[j], b.Values[j])
			}
			if _, ok := b.Find(lockOf(tc.lockKey, []byte("x"))); ok {
				t.Error("Find found a key that is not in the batch")
			}
		})
	}
	if _, err := NewBatch([]store.Mutation{{Key: []byte("x"), Version: 1 << 63}}, nil); err == nil {
		t.Error("a version above MaxInt64 was accepted")
	}
}

func lockOf(lockKey func([]byte) []byte, key []byte) []byte {
	if lockKey == nil {
		return key
	}
	return lockKey(key)
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	muts := []store.Mutation{
		{Key: []byte("a"), Version: 5},
		{Key: []byte("a"), Version: 7}, // wins a
		{Key: []byte("b"), Version: 4},
		{Key: []byte("c"), Version: 9},
	}
	b, err := NewBatch(muts, nil) // entries a, b, c
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		applied []bool
		stored  []uint64
		want    []store.Outcome
	}{
		{"all applied", []bool{true, true, true}, []uint64{7, 4, 9}, []store.Outcome{
			{Current: 7}, {Applied: true, Current: 7}, {Applied: true, Current: 4}, {Applied: true, Current: 9},
		}},
		{"applied, stored not read", []bool{true, true, true}, []uint64{0, 0, 0}, []store.Outcome{
			{Current: 7}, {Applied: true, Current: 7}, {Applied: true, Current: 4}, {Applied: true, Current: 9},
		}},
		{"newer stored", []bool{false, false, false}, []uint64{8, 6, 9}, []store.Outcome{
			{Current: 8}, {Current: 8}, {Current: 6}, {}, // 9 cannot have beaten 9: unknown
		}},
		{"unknown", []bool{false, true, false}, []uint64{0, 4, 0}, []store.Outcome{
			{}, {}, {Applied: true, Current: 4}, {},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := b.Outcomes(muts, tc.applied, tc.stored); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Outcomes = %+v, want %+v", got, tc.want)
			}
		})
	}
}
