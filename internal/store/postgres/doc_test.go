package postgres

import (
	"context"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

// TestDocColumn: a typed row's JSON (Mutation.Doc) lands in the doc
// column by the same statement as the value, queryable with plain SQL; a
// newer write replaces it (NULL without one), a losing write leaves it, a
// tombstone clears it, and a doc jsonb cannot hold (\u0000) is NULL while
// the row is written.
func TestDocColumn(t *testing.T) {
	t.Parallel()
	s := openFresh(t, false)
	ctx := context.Background()
	if !s.KeepsDocuments() {
		t.Fatal("the PostgreSQL store keeps documents")
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
	doc := func(key string) (string, bool) {
		t.Helper()
		var d *string
		if err := s.primary.QueryRow(ctx, `SELECT doc->>'status' FROM `+tableIdent("orders")+` WHERE key = $1`, []byte(key)).Scan(&d); err != nil {
			t.Fatal(err)
		}
		if d == nil {
			return "", false
		}
		return *d, true
	}
	apply(store.Mutation{Key: []byte("a"), Value: []byte("v"), Version: 10, SchemaID: 3, Doc: []byte(`{"id":"a","status":"placed"}`)})
	apply(store.Mutation{Key: []byte("b"), Value: []byte("v"), Version: 10, SchemaID: 3, Doc: []byte(`{"id":"b","status":"paid"}`)})
	if d, ok := doc("a"); !ok || d != "placed" {
		t.Fatalf("doc of a: %q %v", d, ok)
	}
	var n int
	if err := s.primary.QueryRow(ctx, `SELECT count(*) FROM `+tableIdent("orders")+` WHERE doc @> '{"status":"paid"}' AND schema_id = 3`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("query by a JSON field: %d, %v", n, err)
	}
	apply(store.Mutation{Key: []byte("a"), Value: []byte("v"), Version: 5, Doc: []byte(`{"status":"stale"}`)})
	if d, _ := doc("a"); d != "placed" {
		t.Errorf("a losing write changed the doc to %q", d)
	}
	apply(store.Mutation{Key: []byte("a"), Value: []byte("v"), Version: 20, Doc: []byte(`{"status":"shipped"}`)})
	if d, _ := doc("a"); d != "shipped" {
		t.Errorf("doc after a newer write: %q", d)
	}
	apply(store.Mutation{Key: []byte("a"), Value: []byte("v"), Version: 21})
	if d, ok := doc("a"); ok {
		t.Errorf("a write without a doc left %q", d)
	}
	apply(store.Mutation{Key: []byte("b"), Version: 30, Delete: true, Doc: []byte(`{"status":"x"}`)})
	if d, ok := doc("b"); ok {
		t.Errorf("a tombstone has doc %q", d)
	}
	apply(store.Mutation{Key: []byte("c"), Value: []byte("v"), Version: 1, SchemaID: 4, Doc: []byte(`{"status":"nul\u0000"}`)})
	if d, ok := doc("c"); ok {
		t.Errorf("a doc with \\u0000 stored as %q", d)
	}
	if row, found, err := s.Get(ctx, "orders", []byte("c"), 0); err != nil || !found || row.SchemaID != 4 {
		t.Errorf("the row with the unstorable doc: %+v %v %v", row, found, err)
	}
}

// TestMigrateOldTable: a table made before the schema_id and doc columns
// gets them at Open; its rows read schema id 0 and take new writes.
func TestMigrateOldTable(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	exec(t, dsn, `CREATE TABLE wail_old (
  key bytea NOT NULL, value bytea NOT NULL, version bigint NOT NULL, deleted boolean NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  kh bytea GENERATED ALWAYS AS (sha256(key)) STORED PRIMARY KEY)`)
	exec(t, dsn, `INSERT INTO wail_old (key, value, version, deleted) VALUES ('k', 'v', 7, false)`)
	s, err := Open(context.Background(), Options{DSN: dsn, MaxConns: 2, Logger: quiet})
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
	// Open again: nothing left to migrate, nothing fails.
	s2, err := Open(ctx, Options{DSN: dsn, MaxConns: 1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
}
