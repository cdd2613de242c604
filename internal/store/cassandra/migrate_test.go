package cassandra

import (
	"context"
	"fmt"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

// TestMigrateOldTable: a table made before the schema_id column gets it
// at Open; its rows read schema id 0 and take new writes with one.
func TestMigrateOldTable(t *testing.T) {
	t.Parallel()
	opts := testOptions(t)
	first := openTest(t, opts)
	ctx := context.Background()
	name, _ := tableName("old")
	if err := first.ddl(ctx, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (key blob PRIMARY KEY, value blob, version bigint, deleted boolean) WITH ID = %s",
		first.ks, name, tableID(first.ks, name))); err != nil {
		t.Fatal(err)
	}
	if err := first.session.Query(fmt.Sprintf("INSERT INTO %s.%s (key, value, version, deleted) VALUES (?, ?, ?, ?) USING TIMESTAMP 7", first.ks, name),
		[]byte("k"), []byte("v"), int64(7), false).WithContext(ctx).Exec(); err != nil {
		t.Fatal(err)
	}
	first.Close()
	s := openTest(t, opts) // migrates
	if row, found, err := s.Get(ctx, "old", []byte("k"), store.Level(len(s.Levels())-1)); err != nil || !found || row.Version != 7 || row.SchemaID != 0 || string(row.Value) != "v" {
		t.Fatalf("old row: %+v %v %v", row, found, err)
	}
	if _, err := s.Apply(ctx, "old", []store.Mutation{{Key: []byte("k"), Value: []byte("w"), Version: 8, SchemaID: 2}}); err != nil {
		t.Fatal(err)
	}
	if row, _, err := s.Get(ctx, "old", []byte("k"), store.Level(len(s.Levels())-1)); err != nil || row.SchemaID != 2 {
		t.Fatalf("after a write: %+v %v", row, err)
	}
	openTest(t, opts).Close() // nothing left to migrate, nothing fails
}
