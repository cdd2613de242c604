package postgres

import (
	"context"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
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
	status := func(key string) (string, bool) {
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
	sqltest.DocColumn(t, s, status, func() int {
		t.Helper()
		var n int
		if err := s.primary.QueryRow(ctx, `SELECT count(*) FROM `+tableIdent("orders")+` WHERE doc @> '{"status":"paid"}' AND schema_id = 3`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	})
	// A doc jsonb cannot hold (\u0000) is NULL while the row is written.
	if _, err := s.Apply(ctx, "orders", []store.Mutation{{Key: []byte("c"), Value: []byte("v"), Version: 1, SchemaID: 4, Doc: []byte(`{"status":"nul\u0000"}`)}}); err != nil {
		t.Fatal(err)
	}
	if d, ok := status("c"); ok {
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
	sqltest.MigratedTable(t, func() (*Store, error) {
		return Open(context.Background(), Options{DSN: dsn, MaxConns: 2, Logger: quiet})
	})
}
