package cassandra

import (
	"context"
	"fmt"
	"testing"

	"github.com/gocql/gocql"

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

// TestMigrateOldCatalog: a catalog made before swaps were counted gets
// its seq and swaps columns at open, and its entries still swap (each
// swap then counted and its tag remembered), deletes included.
func TestMigrateOldCatalog(t *testing.T) {
	t.Parallel()
	opts := testOptions(t)
	first := openTest(t, opts)
	ctx := context.Background()
	if err := first.ddl(ctx, fmt.Sprintf("ALTER TABLE %s.%s DROP (seq, swaps)", first.ks, catalogTable)); err != nil {
		t.Fatal(err)
	}
	if err := first.ddl(ctx, fmt.Sprintf("ALTER TABLE %s.%s ADD tag blob", first.ks, catalogTable)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"_old", "_gone"} {
		if err := first.session.Query(fmt.Sprintf("INSERT INTO %s.%s (name, spec, tag) VALUES (?, ?, ?)", first.ks, catalogTable),
			name, []byte("1"), []byte("an old tag")).WithContext(ctx).Exec(); err != nil {
			t.Fatal(err)
		}
	}
	first.Close()
	s := openTest(t, opts) // migrates
	if _, ok, err := s.SwapTable(ctx, "_old", []byte("1"), []byte("2")); err != nil || !ok {
		t.Fatalf("swap on a migrated catalog: %v %v", ok, err)
	}
	var seq int64
	var swaps map[int][]byte
	if err := s.session.Query(fmt.Sprintf("SELECT seq, swaps FROM %s.%s WHERE name = ?", s.ks, catalogTable), "_old").
		WithContext(ctx).Consistency(gocql.Quorum).Scan(&seq, &swaps); err != nil || seq != 1 || len(swaps) != 1 || len(swaps[1]) != 16 {
		t.Fatalf("the swap's count and tag: seq %d, swaps %x, %v", seq, swaps, err)
	}
	if _, ok, err := s.SwapTable(ctx, "_gone", []byte("1"), nil); err != nil || !ok {
		t.Fatalf("delete on a migrated catalog: %v %v", ok, err)
	}
	tables, err := s.Tables(ctx)
	if err != nil || len(tables) != 1 || tables[0].Name != "_old" || string(tables[0].Spec) != "2" {
		t.Fatalf("the catalog after a swap and a delete: %+v %v", tables, err)
	}
	openTest(t, opts).Close() // nothing left to migrate, nothing fails
}
