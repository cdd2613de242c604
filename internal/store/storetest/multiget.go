package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

// testMultiGet: a store that implements store.MultiGetter answers GetMany
// exactly as Get answers each key (rows, tombstones, missing keys, a key
// asked twice, an empty list), and fails the whole call for an unknown
// table and a level out of range. (Its durability is checked with Get's,
// in testDurableReads.)
func testMultiGet(t *testing.T, s store.Store) {
	mg, ok := s.(store.MultiGetter)
	if !ok {
		t.Skip("the store reads one key per Get (no store.MultiGetter)")
	}
	ctx := t.Context()
	create(t, s, "multi")
	var muts []store.Mutation
	for i := range 300 {
		muts = append(muts, put(fmt.Sprintf("k%03d", i), uint64(i+1), fmt.Sprintf("v%d", i)))
	}
	muts = append(muts, del("gone", 7), put("empty", 3, ""))
	apply(t, s, "multi", muts...)
	keys := [][]byte{[]byte("gone"), []byte("never"), []byte("empty"), []byte("k005"), []byte("k005")}
	for i := range 300 {
		keys = append(keys, fmt.Appendf(nil, "k%03d", 299-i))
	}
	level := strongest(s)
	reads, err := mg.GetMany(ctx, "multi", keys, level)
	if err != nil {
		t.Fatalf("GetMany: %v", err)
	}
	if len(reads) != len(keys) {
		t.Fatalf("GetMany: %d reads for %d keys", len(reads), len(keys))
	}
	for i, key := range keys {
		row, found, err := s.Get(ctx, "multi", key, level)
		got := reads[i]
		if err != nil || got.Err != nil {
			t.Fatalf("key %q: Get err %v, GetMany err %v", key, err, got.Err)
		}
		if got.Found != found || got.Row.Version != row.Version || got.Row.Deleted != row.Deleted || !bytes.Equal(got.Row.Value, row.Value) ||
			(got.Row.Value == nil) != (row.Value == nil) {
			t.Errorf("key %q: GetMany %+v found=%v, Get %+v found=%v", key, got.Row, got.Found, row, found)
		}
	}
	if reads[1].Found || !reads[0].Found || !reads[0].Row.Deleted || reads[3].Row.Version != 6 {
		t.Errorf("GetMany: gone %+v, never %+v, k005 %+v", reads[0], reads[1], reads[3])
	}
	// The rows are the caller's: changing one changes nothing else.
	reads[3].Row.Value[0] = 'X'
	if reads[4].Row.Value[0] == 'X' {
		t.Error("GetMany returned one value buffer for a key asked twice")
	}
	wantRow(t, s, "multi", []byte("k005"), 6, false, []byte("v5"))

	if reads, err := mg.GetMany(ctx, "multi", nil, level); err != nil || len(reads) != 0 {
		t.Errorf("GetMany of no keys: %d reads, %v", len(reads), err)
	}
	if _, err := mg.GetMany(ctx, "nosuch", keys[:2], level); !errors.Is(err, store.ErrUnknownTable) {
		t.Errorf("GetMany of an unknown table: %v, want store.ErrUnknownTable", err)
	}
	if _, err := mg.GetMany(ctx, "multi", keys[:2], store.Level(len(s.Levels()))); err == nil {
		t.Error("GetMany at a level out of range: no error")
	}
}
