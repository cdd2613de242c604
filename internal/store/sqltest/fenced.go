package sqltest

import (
	"errors"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

// FencedStore is a store that drops a table only while its catalog entry
// holds a given spec.
type FencedStore interface {
	store.Store
	store.FencedDropper
}

// FencedDrop checks DropTableIf on fresh stores (open gives one each
// time): the table is dropped only while its catalog entry holds the spec
// given, so that a drop of a table dropped elsewhere and created again
// since leaves the new table's rows.
func FencedDrop[S FencedStore](t *testing.T, open func(t *testing.T) S) {
	t.Helper()
	for _, c := range []struct {
		name    string
		entry   []byte // nil: none
		spec    []byte
		dropped bool
	}{
		{name: "entry holds spec", entry: []byte("deleting\x00a"), spec: []byte("deleting\x00a"), dropped: true},
		{name: "entry holds another", entry: []byte("ready\x00b"), spec: []byte("deleting\x00a")},
		{name: "entry holds a longer one", entry: []byte("deleting\x00ab"), spec: []byte("deleting\x00a")},
		{name: "no entry", spec: []byte("deleting\x00a")},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			s := open(t)
			if err := s.CreateTable(ctx, "t"); err != nil {
				t.Fatal(err)
			}
			if c.entry != nil {
				if err := s.SaveTable(ctx, store.Table{Name: "t", Spec: c.entry}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Apply(ctx, "t", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}}); err != nil {
				t.Fatal(err)
			}
			dropped, err := s.DropTableIf(ctx, "t", c.spec)
			if err != nil || dropped != c.dropped {
				t.Fatalf("DropTableIf = %v, %v; want %v", dropped, err, c.dropped)
			}
			_, found, err := s.Get(ctx, "t", []byte("k"), 0)
			switch {
			case c.dropped && !errors.Is(err, store.ErrUnknownTable):
				t.Fatalf("after the drop, Get = %v, %v; want ErrUnknownTable", found, err)
			case !c.dropped && (err != nil || !found):
				t.Fatalf("after a drop that did not drop, Get = %v, %v; want the row", found, err)
			}
		})
	}
}
