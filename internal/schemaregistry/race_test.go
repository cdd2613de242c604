package schemaregistry

import (
	"context"
	"slices"
	"sync"
	"testing"
)

// gatedStorage makes the first n Loads wait for one another, so n
// changes all read the same document before any saves: the interleaving
// of concurrent registrations, forced.
type gatedStorage struct {
	Storage
	mu      sync.Mutex
	waiting int
	release chan struct{}
}

func (g *gatedStorage) Load(ctx context.Context) ([]byte, error) {
	g.mu.Lock()
	gate := g.waiting > 0
	if gate {
		g.waiting--
		if g.waiting == 0 {
			close(g.release)
		}
	}
	g.mu.Unlock()
	if gate {
		<-g.release
	}
	return g.Storage.Load(ctx)
}

// TestConcurrentRegistrations: two registrations under one subject that
// read the registry at once: the same new schema gets one id and one
// version; two compatible schemas get two ids and two versions, never one
// id twice.
func TestConcurrentRegistrations(t *testing.T) {
	for _, tc := range []struct {
		name     string
		a, b     string
		ids      int // distinct ids handed out
		versions []int
	}{
		{"same schema", orderV1, orderV1, 1, []int{1}},
		{"same schema laid out differently", orderV1, orderV1 + "\n// again\n", 1, []int{1}},
		{"two schemas", orderV1, orderV2, 2, []int{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := openPebble(t, t.TempDir())
			defer st.Close()
			g := &gatedStorage{Storage: Catalog(st), waiting: 2, release: make(chan struct{})}
			r := New(g, Limits{})
			var wg sync.WaitGroup
			ids := make([]int, 2)
			errs := make([]error, 2)
			for i, text := range []string{tc.a, tc.b} {
				wg.Go(func() {
					ids[i], errs[i] = r.Register(ctx, "orders-value", SchemaRequest{Schema: text, SchemaType: Protobuf})
				})
			}
			wg.Wait()
			if errs[0] != nil || errs[1] != nil {
				t.Fatalf("register: %v, %v", errs[0], errs[1])
			}
			distinct := 1
			if ids[0] != ids[1] {
				distinct = 2
			}
			if distinct != tc.ids {
				t.Fatalf("ids %v: want %d distinct", ids, tc.ids)
			}
			if vs, err := r.Versions(ctx, "orders-value", true); err != nil || !slices.Equal(vs, tc.versions) {
				t.Fatalf("versions %v (%v), want %v", vs, err, tc.versions)
			}
			// A new schema after them takes a new id.
			next, err := r.Register(ctx, "other-value", SchemaRequest{Schema: money, SchemaType: Protobuf})
			if err != nil || slices.Contains(ids, next) {
				t.Fatalf("next id %d (%v) reuses one of %v", next, err, ids)
			}
		})
	}
}
