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
// removed the new table's. It removes the dropped table's, never a later
// table's, and those recording another table (earlier tables' of the
// name, left by creates that raced their drops) or none (the
// configuration's, an older build's) only while the catalog still holds
// the dropped table.
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
		// Held, "again" is no table's created again since (none can
		// be): an earlier table's, created by a process whose clock was
		// ahead.
		{name: "held", drop: TableDrop{Table: testTable, CreatedAtUs: dropped, Held: held(true)},
			removed: []string{"again", "dropped", "earlier", "unrecorded"}},
		{name: "late", drop: TableDrop{Table: testTable, CreatedAtUs: dropped, Held: held(false)},
			removed: []string{"dropped"}},
		{name: "held unknown", drop: TableDrop{Table: testTable, CreatedAtUs: dropped},
			removed: []string{"dropped"}},
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

// TestLateTableDropLeavesSinksOfTableCreatedAgainBehind: created_at is
// the creating process's clock, so a table created again on a process
// whose clock is behind the one that created the dropped table records an
// earlier created_at than the dropped table's. A drop that reached the
// sinks late (the catalog holds the dropped table no more) removed that
// table's sinks, as if left by an earlier table of the name: it removes
// those recording the dropped table only (and, while the catalog holds it,
// every one of the name: no table of the name can have been created
// again, whatever the clocks say).
func TestLateTableDropLeavesSinksOfTableCreatedAgainBehind(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const dropped = 10 // the dropped table's created_at_us
	m := New(Options{Backend: &memCatalog{m: map[string][]byte{}}})
	if _, err := m.defs.change(ctx, func([]*wailv1.Sink) ([]*wailv1.Sink, error) {
		return []*wailv1.Sink{
			{Table: testTable, Name: "dropped", TableCreatedAtUs: dropped},
			{Table: testTable, Name: "again", TableCreatedAtUs: dropped - 2}, // created again, a clock behind
		}, nil
	}); err != nil {
		t.Fatal(err)
	}
	late := TableDrop{Table: testTable, CreatedAtUs: dropped, Held: held(false)}
	names, err := m.DroppedSinks(ctx, late)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"dropped"}) {
		t.Errorf("DroppedSinks of the late drop = %v, want [dropped] (not the sinks of the table created again)", names)
	}
	if err := m.DropTable(ctx, late); err != nil {
		t.Fatal(err)
	}
	left, _, err := m.defs.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Name != "again" {
		t.Errorf("after the late drop the sinks are %v, want the table created again's (again)", left)
	}
}
