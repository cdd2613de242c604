package pebble

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/wail-cdc/wail/internal/store"
)

// TestScanCorruptRow: ScanKeys lists rows of every kind this package
// writes (live, live with a schema id, tombstone), and a row value it
// cannot decode (shorter than the header, or with flags it does not know)
// fails the scan with a message naming the row's key (read before the
// iterator is closed: after, Pebble's key buffer is gone and the message
// named ""), without failing the store (a corrupt row is no storage
// failure): the rows before it are still listed by a page that stops
// short of it.
func TestScanCorruptRow(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"short", make([]byte, headerLen-1)},
		{"empty", []byte{}},
		{"tombstone and schema flags", append(make([]byte, 8), flagTombstone|flagSchema)},
		{"unknown flag", append(make([]byte, 8), 4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir(), Options{NoSync: true})
			defer s.Close()
			ctx := t.Context()
			if err := s.CreateTable(ctx, "t"); err != nil {
				t.Fatal(err)
			}
			mustApply(t, s, mut("a", 1), store.Mutation{Key: []byte("b"), Value: []byte("x"), Version: 2, SchemaID: 7}, mut("c", 3))
			mustApply(t, s, store.Mutation{Key: []byte("c"), Version: 4, Delete: true})
			want := []store.KeyVersion{{Key: []byte("a"), Version: 1}, {Key: []byte("b"), Version: 2},
				{Key: []byte("c"), Version: 4, Deleted: true}}
			if got, err := s.ScanKeys(ctx, "t", nil, 10); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("ScanKeys = %+v, %v; want %+v", got, err, want)
			}
			if err := s.db.Set(rowKey("t", []byte("d")), tc.value, pebble.NoSync); err != nil {
				t.Fatal(err)
			}
			_, err := s.ScanKeys(ctx, "t", nil, 10)
			if !errors.Is(err, errCorruptRow) || errors.Is(err, store.ErrStorage) || !strings.Contains(err.Error(), `corrupt row "d"`) {
				t.Fatalf("ScanKeys over a %s row: %v; want errCorruptRow naming the row, not ErrStorage", tc.name, err)
			}
			if err := s.Failure(); err != nil {
				t.Fatalf("the store failed on a corrupt row: %v", err)
			}
			if got, err := s.ScanKeys(ctx, "t", nil, 3); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("ScanKeys of the rows before the corrupt one = %+v, %v; want %+v", got, err, want)
			}
		})
	}
}
