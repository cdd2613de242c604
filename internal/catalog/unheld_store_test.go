package catalog

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
)

// flakyBackend answers the next reads of the catalog with an empty list
// (empty) or an error (fail), then reads the store again.
type flakyBackend struct {
	Backend
	mu          sync.Mutex
	empty, fail int
}

func (b *flakyBackend) Tables(ctx context.Context) ([]store.Table, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.fail > 0:
		b.fail--
		return nil, errors.New("store unreachable")
	case b.empty > 0:
		b.empty--
		return nil, nil
	}
	return b.Backend.Tables(ctx)
}

func (b *flakyBackend) set(empty, fail int) {
	b.mu.Lock()
	b.empty, b.fail = empty, fail
	b.mu.Unlock()
}

// TestReleaseNothingHeldOnAMisread: a refresh whose read of the catalog
// answers an empty list once (a store that misread), or whose second
// read (of the name, before a release) fails, releases no table the store
// holds: neither one served here nor one whose topics were made here and
// not served (its entry creating: a create here that a crash cut).
func TestReleaseNothingHeldOnAMisread(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		empty, fail int
	}{
		{"one empty list", 1, 0},
		{"the read again fails", 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			st := openStore(t)
			first := openCatalog(t, st, newTopics())
			served, _, err := first.Create(ctx, Table{Name: "served"})
			noErr(t, err)
			creating, _, err := first.Create(ctx, Table{Name: "creating"})
			noErr(t, err)
			e, _, err := first.load(ctx, "creating")
			noErr(t, err)
			cr := e.t
			cr.State = Creating
			_, err = first.swap(ctx, e.spec, cr, false, false)
			noErr(t, err)

			fb := &flakyBackend{Backend: st}
			p := ownedTopics{topics: newTopics()}
			for _, tb := range []Table{served, creating} {
				p.owned = append(p.owned, Table{Name: tb.Name, CreatedAt: tb.CreatedAt})
				p.parts[tb.Name] = tb.Partitions
			}
			var (
				mu       sync.Mutex
				released []string
				c        *Catalog
			)
			c = openCatalog(t, fb, p, releasing(&c, p, func(tb Table) error {
				mu.Lock()
				released = append(released, tb.Name)
				mu.Unlock()
				return nil
			}))
			if _, ok := c.Get("served"); !ok {
				t.Fatal("the ready table is not served")
			}
			if tc.fail > 0 {
				// The refresh reads the list, then each name again.
				if errs := func() []error {
					fb.set(0, tc.fail)
					return c.releaseUnheld(ctx, map[string]entry{}, nil)
				}(); len(errs) == 0 {
					t.Error("a failed read again is no error")
				}
			} else {
				fb.set(tc.empty, 0)
				_ = c.Refresh(ctx)
			}
			_ = c.Refresh(ctx)
			mu.Lock()
			defer mu.Unlock()
			if len(released) != 0 || !p.has("served") || !p.has("creating") {
				t.Fatalf("released %v after a misread of the store: their topics deleted, records and all (topics now: served %v, creating %v)",
					released, p.has("served"), p.has("creating"))
			}
		})
	}
}
