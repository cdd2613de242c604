package mysql

import (
	"errors"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

// TestTableDroppedElsewhere: a table the store knows, dropped by another
// process: a read at the primary's level fails with ErrUnknownTable (and
// the store forgets the table), never answers "not found" as a replica
// that has not applied the table's creation yet does, which would pass
// for the key's state.
func TestTableDroppedElsewhere(t *testing.T) {
	t.Parallel()
	s := openFresh(t, 0)
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		read func(table string) error
	}{
		{"Get", func(table string) error {
			_, found, err := s.Get(ctx, table, []byte("k"), 0)
			if err == nil && found {
				return errors.New("found")
			}
			return err
		}},
		{"GetMany", func(table string) error {
			_, err := s.GetMany(ctx, table, [][]byte{[]byte("k")}, 0)
			return err
		}},
	} {
		table := "gone_" + map[string]string{"Get": "one", "GetMany": "many"}[tc.name]
		if err := s.CreateTable(ctx, table); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Apply(ctx, table, []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.primary.ExecContext(ctx, "DROP TABLE "+quote(tableName(table))); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if err := tc.read(table); !errors.Is(err, store.ErrUnknownTable) {
				t.Errorf("%s %d at the primary of a table dropped by another process: %v, want ErrUnknownTable", tc.name, i+1, err)
			}
		}
	}
}
