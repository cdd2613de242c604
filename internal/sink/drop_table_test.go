package sink

import (
	"context"
	"errors"
	"slices"
	"testing"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// held is a TableDrop.Held that answers v.
func held(v bool) func(context.Context) (bool, error) {
	return func(context.Context) (bool, error) { return v, nil }
}

// TestTableDropRemovesItsOwnSinks: a table's drop removed the definitions
// of every sink of the table's name. A drop that reached them late
// (another drop finished, the table was created again and given sinks)
// removed the new table's. It removes the dropped table's (and earlier
// tables' of the name, left by creates that raced their drops), never a
// later table's, and those recording no table (the configuration's, an
// older build's) only while the catalog still holds the dropped table.
func TestTableDropRemovesItsOwnSinks(t *testing.T) {
	t.Parallel()
	const dropped = 10 // the dropped table's created_at_us
	sinks := []*wailv1.Sink{
		{Table: testTable, Name: "earlier", TableCreatedAtUs: 5},
		{Table: testTable, Name: "dropped", TableCreatedAtUs: dropped},
		{Table: testTable, Name: "again", TableCreatedAtUs: 20}, // the table created again
		{Table: testTable, Name: "unrecorded"},                  // configuration's, older build's
		{Table: "other", Name: "other", TableCreatedAtUs: dropped},
	}
	errHeld := errors.New("the catalog does not answer")
	for _, c := range []struct {
		name    string
		drop    TableDrop
		removed []string
		err     error
	}{
		{name: "held", drop: TableDrop{Table: testTable, CreatedAtUs: dropped, Held: held(true)},
			removed: []string{"dropped", "earlier", "unrecorded"}},
		{name: "late", drop: TableDrop{Table: testTable, CreatedAtUs: dropped, Held: held(false)},
			removed: []string{"dropped", "earlier"}},
		{name: "held unknown", drop: TableDrop{Table: testTable, CreatedAtUs: dropped},
			removed: []string{"dropped", "earlier"}},
		{name: "created_at unknown, held", drop: TableDrop{Table: testTable, Held: held(true)},
			removed: []string{"again", "dropped", "earlier", "unrecorded"}},
		{name: "created_at unknown, late", drop: TableDrop{Table: testTable, Held: held(false)}},
		{name: "held unreadable", drop: TableDrop{Table: testTable, CreatedAtUs: dropped,
			Held: func(context.Context) (bool, error) { return false, errHeld }}, err: errHeld},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			m := New(Options{Backend: &memCatalog{m: map[string][]byte{}}})
			if _, err := m.defs.change(ctx, func([]*wailv1.Sink) ([]*wailv1.Sink, error) {
				return slices.Clone(sinks), nil
			}); err != nil {
				t.Fatal(err)
			}
			names, err := m.DroppedSinks(ctx, c.drop)
			if !errors.Is(err, c.err) {
				t.Fatalf("DroppedSinks: %v, want %v", err, c.err)
			}
			slices.Sort(names)
			if err == nil && !slices.Equal(names, c.removed) {
				t.Errorf("DroppedSinks = %v, want %v", names, c.removed)
			}
			if err := m.DropTable(ctx, c.drop); !errors.Is(err, c.err) {
				t.Fatalf("DropTable: %v, want %v", err, c.err)
			}
			left, _, err := m.defs.load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var gone []string
			for _, s := range sinks {
				if !slices.ContainsFunc(left, func(l *wailv1.Sink) bool { return l.Table == s.Table && l.Name == s.Name }) {
					gone = append(gone, s.Name)
				}
			}
			slices.Sort(gone)
			if !slices.Equal(gone, c.removed) {
				t.Errorf("DropTable removed %v, want %v", gone, c.removed)
			}
		})
	}
}
