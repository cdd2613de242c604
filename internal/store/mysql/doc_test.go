package mysql

import (
	"context"
	"database/sql"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestDocColumn: a typed row's JSON (Mutation.Doc) lands in the JSON doc
// column by the same statement as the value, queryable with plain SQL; a
// newer write replaces it (NULL without one), a losing write leaves it,
// and a tombstone clears it.
func TestDocColumn(t *testing.T) {
	t.Parallel()
	s := openFresh(t, 0)
	ctx := context.Background()
	if !s.KeepsDocuments() {
		t.Fatal("the MySQL store keeps documents")
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
		var d sql.NullString
		if err := s.primary.QueryRowContext(ctx, "SELECT JSON_UNQUOTE(JSON_EXTRACT(doc, '$.status')) FROM "+quote(tableName("orders"))+" WHERE k = ?", []byte(key)).Scan(&d); err != nil {
			t.Fatal(err)
		}
		return d.String, d.Valid
	}
	apply(store.Mutation{Key: []byte("a"), Value: []byte("v"), Version: 10, SchemaID: 3, Doc: []byte(`{"id":"a","status":"placed"}`)})
	apply(store.Mutation{Key: []byte("b"), Value: []byte("v"), Version: 10, SchemaID: 3, Doc: []byte(`{"id":"b","status":"paid"}`)})
	if d, ok := doc("a"); !ok || d != "placed" {
		t.Fatalf("doc of a: %q %v", d, ok)
	}
	var n int
	if err := s.primary.QueryRowContext(ctx, "SELECT count(*) FROM "+quote(tableName("orders"))+" WHERE JSON_EXTRACT(doc, '$.status') = 'paid' AND schema_id = 3").Scan(&n); err != nil || n != 1 {
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
}

// TestMigrateOldTable: a table made before the schema_id and doc columns
// gets them at Open; its rows read schema id 0 and take new writes.
func TestMigrateOldTable(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	sqltest.ExecMySQL(t, dsn, "CREATE TABLE wail_old (kh BINARY(32) NOT NULL PRIMARY KEY, k VARBINARY(4096) NOT NULL, value LONGBLOB NOT NULL, "+
		"version BIGINT NOT NULL, deleted BOOL NOT NULL, updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB")
	sqltest.ExecMySQL(t, dsn, "INSERT INTO wail_old (kh, k, value, version, deleted) VALUES (UNHEX(SHA2('k', 256)), 'k', 'v', 7, false)")
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
	s2, err := Open(ctx, Options{DSN: dsn, MaxConns: 1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
}
