package sqltest

import (
	"context"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

// DocStore is a SQL store that keeps a typed row's JSON in its doc column.
type DocStore interface {
	store.Store
	store.DocumentStore
}

// DocColumn checks the doc column of s, a fresh store: a typed row's JSON
// (Mutation.Doc) lands there by the same statement as the value,
// queryable with plain SQL; a newer write replaces it (NULL without one),
// a losing write leaves it, and a tombstone clears it. status reads the
// "status" field of key's doc in table "orders" with SQL (false when the
// doc is NULL); paid counts the rows of "orders" whose doc has status
// "paid" and whose schema id is 3, with SQL.
func DocColumn(t *testing.T, s DocStore, status func(key string) (string, bool), paid func() int) {
	t.Helper()
	ctx := context.Background()
	if !s.KeepsDocuments() {
		t.Fatal("the store keeps no documents")
	}
	if err := s.CreateTable(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	apply := func(m store.Mutation) {
		t.Helper()
		if _, err := s.Apply(ctx, "orders", []store.Mutation{m}); err != nil {
			t.Fatal(err)
		}
	}
	apply(store.Mutation{Key: []byte("a"), Value: []byte("v"), Version: 10, SchemaID: 3, Doc: []byte(`{"id":"a","status":"placed"}`)})
	apply(store.Mutation{Key: []byte("b"), Value: []byte("v"), Version: 10, SchemaID: 3, Doc: []byte(`{"id":"b","status":"paid"}`)})
	if d, ok := status("a"); !ok || d != "placed" {
		t.Fatalf("doc of a: %q %v", d, ok)
	}
	if n := paid(); n != 1 {
		t.Fatalf("query by a JSON field: %d rows, want 1", n)
	}
	apply(store.Mutation{Key: []byte("a"), Value: []byte("v"), Version: 5, Doc: []byte(`{"status":"stale"}`)})
	if d, _ := status("a"); d != "placed" {
		t.Errorf("a losing write changed the doc to %q", d)
	}
	apply(store.Mutation{Key: []byte("a"), Value: []byte("v"), Version: 20, Doc: []byte(`{"status":"shipped"}`)})
	if d, _ := status("a"); d != "shipped" {
		t.Errorf("doc after a newer write: %q", d)
	}
	apply(store.Mutation{Key: []byte("a"), Value: []byte("v"), Version: 21})
	if d, ok := status("a"); ok {
		t.Errorf("a write without a doc left %q", d)
	}
	apply(store.Mutation{Key: []byte("b"), Version: 30, Delete: true, Doc: []byte(`{"status":"x"}`)})
	if d, ok := status("b"); ok {
		t.Errorf("a tombstone has doc %q", d)
	}
}

// MigratedTable checks a store opened (by open) on a database whose table
// "old" was made before the schema_id and doc columns, holding key "k"
// with value "v" at version 7: the row reads schema id 0 and takes new
// writes with a schema id, and opening again finds nothing left to
// migrate.
func MigratedTable[S store.Store](t *testing.T, open func() (S, error)) {
	t.Helper()
	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if row, found, err := s.Get(ctx, "old", []byte("k"), 0); err != nil || !found || row.Version != 7 || row.SchemaID != 0 || string(row.Value) != "v" {
		t.Fatalf("old row: %+v %v %v", row, found, err)
	}
	if _, err := s.Apply(ctx, "old", []store.Mutation{{Key: []byte("k"), Value: []byte("w"), Version: 8, SchemaID: 2, Doc: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if row, _, err := s.Get(ctx, "old", []byte("k"), 0); err != nil || row.SchemaID != 2 {
		t.Fatalf("after a write: %+v %v", row, err)
	}
	s2, err := open()
	if err != nil {
		t.Fatalf("open again: %v", err)
	}
	s2.Close()
}
