package sqltest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// BreakerStore is a store whose replicas have circuit breakers
// (sqlstore.Replicas).
type BreakerStore interface {
	PoolStore
	Check(ctx context.Context) error
	ReplicasBypassed() (replicas int, reads uint64)
}

// StalledReplica checks s, whose one replica (level 0) is reached
// through proxy with store.query_timeout timeout and whose table holds
// key "k" at version 1 on both levels: once the proxy stops forwarding
// (a network partition, a hung server), the reads sent to the replica
// cost the query timeout only until its breaker opens; then they fail at
// once as unavailable while the primary answers, and once the replica
// answers again it is read again. Before, every read at its level waited
// the whole query timeout. Each read, as the resolver reads (Get and
// GetMany in turn), has a deadline of its own when deadline > 0: the
// resolver's (as long as the default query_timeout) ends a stalled read
// before the query's, and must count as a stall too.
func StalledReplica(t *testing.T, s BreakerStore, table string, proxy *Proxy, timeout, deadline time.Duration) {
	t.Helper()
	ctx := t.Context()
	key := []byte("k")
	primary := store.Level(len(s.Levels()) - 1)
	read := func(many bool) (waited bool) {
		t.Helper()
		start := time.Now()
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if deadline > 0 {
			rctx, cancel = context.WithTimeout(ctx, deadline)
		}
		var err error
		if many {
			_, err = s.GetMany(rctx, table, [][]byte{key}, 0)
		} else {
			_, _, err = s.Get(rctx, table, key, 0)
		}
		cancel()
		waited = time.Since(start) >= min(timeout, max(deadline, timeout))-50*time.Millisecond
		if !errors.Is(err, store.ErrUnavailable) && (deadline == 0 || !errors.Is(err, context.DeadlineExceeded)) {
			t.Fatalf("read of the stalled replica: %v, want store.ErrUnavailable (or the reader's deadline)", err)
		}
		if row, found, err := s.Get(ctx, table, key, primary); err != nil || !found || row.Version != 1 {
			t.Fatalf("the primary's row: %v, %v, %v; want version 1", row, found, err)
		}
		return waited
	}
	proxy.Stall()
	const reads = 8
	waited := 0
	for i := range reads {
		if read(i%2 == 1) {
			waited++
		}
	}
	if n, bypassed := s.ReplicasBypassed(); n != 1 || bypassed == 0 {
		t.Errorf("ReplicasBypassed() = %d replicas, %d reads; want 1 replica, some reads", n, bypassed)
	}
	var by *sqlstore.Bypassed
	if err := s.Check(ctx); !errors.As(err, &by) {
		t.Errorf("Check with the replica's breaker open: %v, want *sqlstore.Bypassed", err)
	}
	if waited > sqlstore.DefaultBreakerFailures {
		t.Errorf("%d of %d reads of the stalled replica waited the query timeout (%s); want at most %d, after which its reads go to the primary at once",
			waited, reads, timeout, sqlstore.DefaultBreakerFailures)
	}

	proxy.Resume()
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, _, err := s.Get(ctx, table, key, 0); err == nil {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the replica is not read again once it answers")
		}
	}
	if n, _ := s.ReplicasBypassed(); n != 0 {
		t.Errorf("ReplicasBypassed() = %d once the replica answers again, want 0", n)
	}
	if err := s.Check(ctx); err != nil {
		t.Errorf("Check once the replica answers again: %v", err)
	}
}

// StalledCases are the reader's deadlines StalledReplica runs with: none,
// and the query timeout (the resolver's shape).
func StalledCases(timeout time.Duration) []struct {
	Name     string
	Deadline time.Duration
} {
	return []struct {
		Name     string
		Deadline time.Duration
	}{{"no deadline of the reader", 0}, {"the reader's deadline the query timeout", timeout}}
}
