package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// stallStore is a store whose calls block, ignoring their context (a disk
// that stops answering under Pebble), from stall until release.
type stallStore struct {
	store.Store
	mu      sync.Mutex
	stalled chan struct{} // nil: not stalled; closed by release
	calls   chan string   // each call that blocks, named
}

func (s *stallStore) stall() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stalled = make(chan struct{})
}

func (s *stallStore) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stalled != nil {
		close(s.stalled)
		s.stalled = nil
	}
}

func (s *stallStore) wait(call string) {
	s.mu.Lock()
	ch := s.stalled
	s.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case s.calls <- call:
	default:
	}
	<-ch
}

func (s *stallStore) Apply(ctx context.Context, table string, muts []store.Mutation) ([]store.Outcome, error) {
	s.wait("Apply")
	return s.Store.Apply(ctx, table, muts)
}

func (s *stallStore) Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error) {
	s.wait("Get")
	return s.Store.Get(ctx, table, key, level)
}

func (s *stallStore) Tables(ctx context.Context) ([]store.Table, error) {
	s.wait("Tables")
	return s.Store.Tables(ctx)
}

// TestShutdownWithAStalledStore: every call to the store blocks for good
// (the catalog's refresh among them) while writes are in flight. Shutdown
// still ends within shutdown_timeout, and none of the stuck writes is
// acknowledged.
func TestShutdownWithAStalledStore(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.ShutdownTimeout = 2 * time.Second
	cfg.CatalogRefresh = 20 * time.Millisecond
	st := &stallStore{calls: make(chan string, 64)}
	defer st.release() // after the test: the blocked goroutines end
	r := runServer(t, cfg, seams{wrapStore: func(s store.Store) store.Store { st.Store = s; return st }})
	ctx := context.Background()
	if _, err := r.put(ctx, "k", "before"); err != nil {
		t.Fatal(err)
	}
	st.stall()
	const writes = 4
	answered := make(chan error, writes)
	for i := range writes {
		go func() {
			_, err := r.put(ctx, fmt.Sprintf("w%d", i), "stuck")
			answered <- err
		}()
	}
	seen := map[string]bool{}
	for deadline := time.After(10 * time.Second); !seen["Apply"] || !seen["Tables"]; {
		select {
		case c := <-st.calls:
			seen[c] = true
		case <-deadline:
			t.Fatalf("the store saw %v, want Apply and Tables blocked", seen)
		}
	}
	start := time.Now()
	r.stop()
	select {
	case err := <-r.done:
		r.done <- err
		t.Logf("Run returned after %v: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(cfg.ShutdownTimeout + time.Second):
		t.Fatalf("shutdown did not end within shutdown_timeout (%v) with the store stalled", cfg.ShutdownTimeout)
	}
	for range writes {
		if err := <-answered; err == nil {
			t.Error("a write stuck in a stalled store was acknowledged")
		}
	}
}
