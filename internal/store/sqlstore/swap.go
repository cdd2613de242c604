package sqlstore

import "bytes"

// Swap is the kind of statement a catalog swap runs.
type Swap int

// The statements of a swap (see store.CatalogSwapper).
const (
	SwapNone   Swap = iota // old and new both nil: nothing to write, only read
	SwapInsert             // old nil: INSERT, refused when the name is taken
	SwapDelete             // new nil: DELETE ... WHERE spec = old
	SwapUpdate             // UPDATE ... SET spec = new WHERE spec = old
)

// SwapTable runs a catalog compare-and-set: exec runs the statement of
// the kind the swap needs and reports whether it changed a row (a taken
// name is no error: false); read returns the entry (nil: absent) when it
// did not. An UPDATE to the same bytes changes no row on MySQL; the entry
// read settles that it matched.
func SwapTable(old, new []byte, exec func(Swap) (bool, error), read func() ([]byte, error)) ([]byte, bool, error) {
	kind := SwapUpdate
	switch {
	case old == nil && new == nil:
		kind = SwapNone
	case old == nil:
		kind = SwapInsert
	case new == nil:
		kind = SwapDelete
	}
	if kind != SwapNone {
		changed, err := exec(kind)
		if err != nil {
			return nil, false, err
		}
		if changed {
			return new, true, nil
		}
	}
	cur, err := read()
	switch {
	case err != nil:
		return nil, false, err
	case cur == nil:
		return nil, kind == SwapNone, nil
	case kind == SwapUpdate && bytes.Equal(old, new) && bytes.Equal(cur, old):
		return cur, true, nil
	}
	return cur, false, nil
}
