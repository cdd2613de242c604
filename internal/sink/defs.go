package sink

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/store"
)

// CatalogEntry is the store catalog entry that holds every sink
// definition (a SinkList).
const CatalogEntry = store.ReservedPrefix + "sinks"

// Backend is where definitions are kept: the store's catalog.
type Backend = store.CatalogReader

// defs reads and changes the definitions, each change one compare-and-set
// of the entry, so processes sharing a store agree.
type defs struct{ e store.CatalogEntry }

func newDefs(b Backend) defs { return defs{store.CatalogEntry{Store: b, Name: CatalogEntry}} }

// load returns the definitions and the entry's bytes (nil: absent).
func (d defs) load(ctx context.Context) ([]*wailv1.Sink, []byte, error) {
	spec, err := d.e.Load(ctx)
	if err != nil || spec == nil {
		return nil, nil, wrapDefs(err)
	}
	var l wailv1.SinkList
	if err := proto.Unmarshal(spec, &l); err != nil {
		return nil, nil, fmt.Errorf("sinks: catalog entry %s: %w", CatalogEntry, err)
	}
	return l.Sinks, spec, nil
}

func wrapDefs(err error) error {
	if err != nil {
		return fmt.Errorf("sinks: %w", err)
	}
	return nil
}

// errUnchanged: change left the definitions as they were (nothing saved).
var errUnchanged = errors.New("unchanged")

// change applies fn to the definitions and saves them, again on a
// concurrent change; fn returning errUnchanged saves nothing.
func (d defs) change(ctx context.Context, fn func([]*wailv1.Sink) ([]*wailv1.Sink, error)) ([]*wailv1.Sink, error) {
	for {
		sinks, old, err := d.load(ctx)
		if err != nil {
			return nil, err
		}
		next, err := fn(sinks)
		if errors.Is(err, errUnchanged) {
			return sinks, nil
		}
		if err != nil {
			return nil, err
		}
		sort.Slice(next, func(i, j int) bool {
			if next[i].Table != next[j].Table {
				return next[i].Table < next[j].Table
			}
			return next[i].Name < next[j].Name
		})
		var spec []byte
		if len(next) > 0 {
			if spec, err = proto.Marshal(&wailv1.SinkList{Sinks: next}); err != nil {
				return nil, fmt.Errorf("sinks: encode: %w", err)
			}
		}
		if old == nil && spec == nil {
			return next, nil
		}
		ok, err := d.e.Swap(ctx, old, spec)
		if err != nil {
			return nil, wrapDefs(err)
		}
		if ok {
			return next, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// find returns the index of table's sink name, or -1.
func find(sinks []*wailv1.Sink, table, name string) int {
	for i, s := range sinks {
		if s.Table == table && s.Name == name {
			return i
		}
	}
	return -1
}
