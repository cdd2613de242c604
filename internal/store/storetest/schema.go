package storetest

import (
	"context"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

// testSchemaIDs: a row keeps the schema id it was written with (typed
// tables), the id of the write that won; a row written with none reads 0,
// a tombstone has none, and a losing write does not change the id. A
// batch mixing ids keeps each key's. Mutation.Doc never changes what Get
// returns.
func testSchemaIDs(t *testing.T, s store.Store) {
	create(t, s, "typed")
	muts := []store.Mutation{
		{Key: []byte("a"), Value: []byte("v1"), Version: 10, SchemaID: 7, Doc: []byte(`{"n":1}`)},
		{Key: []byte("b"), Value: []byte("v1"), Version: 10},
		{Key: []byte("c"), Value: []byte{}, Version: 10, SchemaID: 1<<32 - 1},
		{Key: []byte("a"), Value: []byte("v0"), Version: 9, SchemaID: 6}, // loses to version 10 in the batch
	}
	apply(t, s, "typed", muts...)
	wantSchema(t, s, "typed", "a", 10, "v1", 7)
	wantSchema(t, s, "typed", "b", 10, "v1", 0)
	wantSchema(t, s, "typed", "c", 10, "", 1<<32-1)

	// A newer write under another schema replaces the id; an older one
	// loses and leaves it.
	apply(t, s, "typed", store.Mutation{Key: []byte("a"), Value: []byte("v2"), Version: 20, SchemaID: 8})
	apply(t, s, "typed", store.Mutation{Key: []byte("a"), Value: []byte("old"), Version: 15, SchemaID: 5})
	wantSchema(t, s, "typed", "a", 20, "v2", 8)
	// Written again without one (the table's types dropped, or an old
	// writer): 0, not the previous id.
	apply(t, s, "typed", store.Mutation{Key: []byte("a"), Value: []byte("v3"), Version: 30})
	wantSchema(t, s, "typed", "a", 30, "v3", 0)
	apply(t, s, "typed", store.Mutation{Key: []byte("b"), Value: []byte("v4"), Version: 30, SchemaID: 9, Doc: []byte(`{"s":"x"}`)})
	wantSchema(t, s, "typed", "b", 30, "v4", 9)

	// A tombstone has no schema id, even when the mutation names one.
	apply(t, s, "typed", store.Mutation{Key: []byte("b"), Version: 40, Delete: true, SchemaID: 9})
	row, found := get(t, s, "typed", []byte("b"))
	if !found || !row.Deleted || row.SchemaID != 0 {
		t.Errorf("tombstone: %+v found=%v, want deleted with schema id 0", row, found)
	}
	// Back to life under a schema.
	apply(t, s, "typed", store.Mutation{Key: []byte("b"), Value: []byte("v5"), Version: 50, SchemaID: 11})
	wantSchema(t, s, "typed", "b", 50, "v5", 11)
}

// wantSchema checks the row of key through Get and, on a
// store.MultiGetter, through GetMany too.
func wantSchema(t *testing.T, s store.Store, table, key string, version uint64, value string, id uint32) {
	t.Helper()
	row, found := get(t, s, table, []byte(key))
	if !found || row.Deleted || row.Version != version || string(row.Value) != value || row.SchemaID != id {
		t.Errorf("Get(%q) = %+v found=%v; want version %d value %q schema id %d", key, row, found, version, value, id)
	}
	mg, ok := s.(store.MultiGetter)
	if !ok {
		return
	}
	level := store.Level(len(s.Levels()) - 1)
	reads, err := mg.GetMany(context.Background(), table, [][]byte{[]byte(key)}, level)
	if err != nil || len(reads) != 1 {
		t.Fatalf("GetMany(%q): %v, %d reads", key, err, len(reads))
	}
	if r := reads[0]; !r.Found || r.Row.Deleted || r.Row.Version != version || string(r.Row.Value) != value || r.Row.SchemaID != id {
		t.Errorf("GetMany(%q) = %+v; want version %d value %q schema id %d", key, r, version, value, id)
	}
}
