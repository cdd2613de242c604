package sqlstore

import (
	"bytes"
	"errors"
	"testing"
)

func TestSwapTable(t *testing.T) {
	t.Parallel()
	a, b := []byte("a"), []byte("b")
	errDown := errors.New("down")
	for _, tc := range []struct {
		name     string
		old, new []byte
		changed  bool   // what the statement reports
		execErr  error  // what it fails with
		cur      []byte // what the read finds
		wantKind Swap   // the statement run (SwapNone: none)
		want     []byte // current returned
		swapped  bool
		wantErr  error
	}{
		{"insert", nil, a, true, nil, nil, SwapInsert, a, true, nil},
		{"insert taken", nil, a, false, nil, b, SwapInsert, b, false, nil},
		{"update", a, b, true, nil, nil, SwapUpdate, b, true, nil},
		{"update stale", a, b, false, nil, b, SwapUpdate, b, false, nil},
		{"update to the same bytes (MySQL: no row changed)", a, a, false, nil, a, SwapUpdate, a, true, nil},
		{"update of an absent entry", a, b, false, nil, nil, SwapUpdate, nil, false, nil},
		{"delete", a, nil, true, nil, nil, SwapDelete, nil, true, nil},
		{"delete stale", a, nil, false, nil, b, SwapDelete, b, false, nil},
		{"nothing, absent", nil, nil, false, nil, nil, SwapNone, nil, true, nil},
		{"nothing, present", nil, nil, false, nil, a, SwapNone, a, false, nil},
		{"exec fails", nil, a, false, errDown, nil, SwapInsert, nil, false, errDown},
	} {
		ran := SwapNone
		cur, ok, err := SwapTable(tc.old, tc.new, func(k Swap) (bool, error) {
			ran = k
			return tc.changed, tc.execErr
		}, func() ([]byte, error) { return tc.cur, nil })
		if ran != tc.wantKind || ok != tc.swapped || !bytes.Equal(cur, tc.want) || (cur == nil) != (tc.want == nil) || !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: ran %d, got %q %v %v; want ran %d, %q %v %v", tc.name, ran, cur, ok, err, tc.wantKind, tc.want, tc.swapped, tc.wantErr)
		}
	}
}
