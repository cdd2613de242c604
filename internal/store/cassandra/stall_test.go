package cassandra

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// openThroughProxy opens a store whose connections to node 3 go through a
// fault proxy, and waits until the driver has its connections to node 3.
func openThroughProxy(t *testing.T, opts Options) (*Store, *faultProxy) {
	t.Helper()
	node3 := net.JoinHostPort(opts.Hosts[2], "9042")
	p := newFaultProxy(t, node3)
	opts.dialer = routeTo(node3, p)
	s := openTest(t, opts)
	deadline := time.Now().Add(20 * time.Second)
	for {
		p.mu.Lock()
		n := len(p.conns)
		p.mu.Unlock()
		if n >= 2*max(opts.Conns, DefaultConns) {
			return s, p
		}
		if time.Now().After(deadline) {
			t.Fatalf("the driver opened %d proxied connections to node 3", n/2)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReadsGoAroundAStalledCoordinator: with node 3 stalled (its
// connections open, nothing answered: a frozen process, a path that
// black-holes), reads whose plan starts with node 3 go on to another
// node, within a deadline shorter than the query timeout (the resolver's
// reads get 5s, store.query_timeout's default): token-aware plans start
// with node 3 for a third of the keys, and those reads failed, every one
// after the whole deadline.
func TestReadsGoAroundAStalledCoordinator(t *testing.T) {
	opts := testOptions(t)
	opts.QueryTimeout = DefaultQueryTimeout
	s, p := openThroughProxy(t, opts)
	if err := s.CreateTable(t.Context(), "stall"); err != nil {
		t.Fatal(err)
	}
	const keys = 24
	var muts []store.Mutation
	for i := range keys {
		muts = append(muts, store.Mutation{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v"), Version: 5})
	}
	if _, err := s.Apply(t.Context(), "stall", muts); err != nil {
		t.Fatal(err)
	}
	p.Stall()
	defer p.Resume()
	var wg sync.WaitGroup
	errs := make(chan error, 2*keys+4)
	for i := range keys {
		for level := range store.Level(2) {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
				defer cancel()
				row, found, err := s.Get(ctx, "stall", muts[i].Key, level)
				switch {
				case err != nil:
					errs <- fmt.Errorf("read of key %d at level %d: %w", i, level, err)
				case !found || row.Version != 5:
					errs <- fmt.Errorf("read of key %d at level %d: found=%v version %d, want 5", i, level, found, row.Version)
				}
			})
		}
	}
	for range 4 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			kvs, err := s.ScanKeys(ctx, "stall", nil, 100)
			switch {
			case err != nil:
				errs <- fmt.Errorf("scan: %w", err)
			case len(kvs) != keys:
				errs <- fmt.Errorf("scan: %d keys, want %d", len(kvs), keys)
			}
		})
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		n++
		t.Error(err)
	}
	if n > 0 {
		t.Errorf("%d of %d reads failed with node 3 stalled", n, 2*keys+4)
	}
}

// TestOpenWithAStalledNode: node 3 black-holed (connections accepted, no
// byte answered) when a process opens a keyspace that exists: Open returns
// within a deadline of four query timeouts (wail serve gives each attempt
// to open 30s whatever store.query_timeout is), and CreateTable, writes
// and reads at every level go through the other nodes. The driver tried
// the first connection to a node three times, a second apart, each for
// the whole query timeout, before Open went on: 3 x (query_timeout + 1s),
// and up to two timeouts more when its protocol discovery and its control
// connection try that node first (they still do: Open now waits three
// timeouts at most); 18s to 28s of the 30s at the default 5s, more than
// the 30s from 9s on.
func TestOpenWithAStalledNode(t *testing.T) {
	opts := testOptions(t)
	opts.QueryTimeout = 2 * time.Second
	if s, err := Open(t.Context(), opts); err != nil { // the keyspace and the catalog
		t.Fatal(err)
	} else {
		s.Close()
	}
	node3 := net.JoinHostPort(opts.Hosts[2], "9042")
	p := newFaultProxy(t, node3)
	p.Stall()
	opts.dialer = routeTo(node3, p)
	began := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 4*opts.QueryTimeout)
	defer cancel()
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatalf("Open with node 3 black-holed, after %s: %v", time.Since(began).Round(time.Millisecond), err)
	}
	t.Cleanup(func() { s.Close() })
	t.Logf("Open took %s", time.Since(began).Round(time.Millisecond))
	if err := s.CreateTable(t.Context(), "stalled"); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		key := fmt.Appendf(nil, "k%d", i)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		out, err := s.Apply(ctx, "stalled", []store.Mutation{{Key: key, Value: []byte("v"), Version: 5}})
		cancel()
		if err != nil || !out[0].Applied {
			t.Fatalf("write of key %d: %v %v", i, out, err)
		}
		for level := range store.Level(2) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			row, found, err := s.Get(ctx, "stalled", key, level)
			cancel()
			// At ONE, the replica that the write's quorum left out may
			// not hold it yet.
			if err != nil || level > 0 && (!found || row.Version != 5) {
				t.Fatalf("read of key %d at level %d: %v %v %v", i, level, row.Version, found, err)
			}
		}
	}
}
