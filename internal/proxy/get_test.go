package proxy

import (
	"errors"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

// TestGet: Get checks the table and the key as a write does, reads at the
// store's strongest level, and answers a store failure as Unavailable.
func TestGet(t *testing.T) {
	t.Parallel()
	errDown := errors.New("store down")
	for _, tc := range []struct {
		name    string
		table   string
		key     string
		getErr  error
		wantErr error // nil: found
	}{
		{name: "found", table: "tx", key: "k"},
		{name: "unknown table", table: "nope", key: "k", wantErr: ErrUnknownTable},
		{name: "empty key", table: "tx", key: "", wantErr: ErrInvalid},
		{name: "key too long", table: "tx", key: "too-long-key", wantErr: ErrInvalid},
		{name: "store down", table: "tx", key: "k", getErr: errDown, wantErr: ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := &world{}
			p := newProxy(t, w)
			w.Rows["k"] = store.Row{Value: []byte("v"), Version: 5}
			w.Rows["too-long-key"] = store.Row{Value: []byte("x"), Version: 5}
			w.Levels, w.GetErr, w.GotLevel = []string{"one", "quorum"}, tc.getErr, -1
			row, found, err := p.Get(t.Context(), tc.table, []byte(tc.key))
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) || found {
					t.Fatalf("Get = %+v, %v, %v; want %v", row, found, err, tc.wantErr)
				}
				if tc.getErr == nil && w.GotLevel != -1 {
					t.Fatal("the store was read for a refused key")
				}
			case err != nil || !found || string(row.Value) != "v" || row.Version != 5:
				t.Fatalf("Get = %+v, %v, %v; want the row", row, found, err)
			case w.GotLevel != 1:
				t.Fatalf("read at level %d, want 1 (the strongest)", w.GotLevel)
			}
		})
	}
}
