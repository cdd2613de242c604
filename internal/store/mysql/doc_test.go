package mysql

import (
	"context"
	"database/sql"
	"testing"

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
	sqltest.DocColumn(t, s, func(key string) (string, bool) {
		t.Helper()
		var d sql.NullString
		if err := s.primary.QueryRowContext(ctx, "SELECT JSON_UNQUOTE(JSON_EXTRACT(doc, '$.status')) FROM "+quote(tableName("orders"))+" WHERE k = ?", []byte(key)).Scan(&d); err != nil {
			t.Fatal(err)
		}
		return d.String, d.Valid
	}, func() int {
		t.Helper()
		var n int
		if err := s.primary.QueryRowContext(ctx, "SELECT count(*) FROM "+quote(tableName("orders"))+" WHERE JSON_EXTRACT(doc, '$.status') = 'paid' AND schema_id = 3").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	})
}

// TestMigrateOldTable: a table made before the schema_id and doc columns
// gets them at Open; its rows read schema id 0 and take new writes.
func TestMigrateOldTable(t *testing.T) {
	t.Parallel()
	dsn, _ := freshDSNs(t, 0)
	sqltest.ExecMySQL(t, dsn, "CREATE TABLE wail_old (kh BINARY(32) NOT NULL PRIMARY KEY, k VARBINARY(4096) NOT NULL, value LONGBLOB NOT NULL, "+
		"version BIGINT NOT NULL, deleted BOOL NOT NULL, updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB")
	sqltest.ExecMySQL(t, dsn, "INSERT INTO wail_old (kh, k, value, version, deleted) VALUES (UNHEX(SHA2('k', 256)), 'k', 'v', 7, false)")
	sqltest.MigratedTable(t, func() (*Store, error) {
		return Open(context.Background(), Options{DSN: dsn, MaxConns: 2, Logger: quiet})
	})
}
