package mysql

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestStalledReplica: as postgres.TestStalledReplica, a replica whose
// host stops answering (here the primary's server through a proxy that
// stops forwarding: no MariaDB replica in the test services) costs the
// query timeout of the reads sent to it only until its breaker opens;
// then its reads fail at once as unavailable and the primary answers
// them, and once it answers again it is read again.
func TestStalledReplica(t *testing.T) {
	const timeout = 2 * time.Second
	dsn, _ := freshDSNs(t, 0)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := sqltest.NewProxy(t, cfg.Addr)
	cfg.Addr = proxy.Addr()
	s, err := Open(context.Background(), Options{DSN: dsn, ReplicaDSNs: []string{cfg.FormatDSN()}, MaxConns: 4, QueryTimeout: timeout, Logger: quiet})
	s = sqltest.Closing(t, s, err)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "st"); err != nil {
		t.Fatal(err)
	}
	key := []byte("k")
	if _, err := s.Apply(ctx, "st", []store.Mutation{{Key: key, Value: []byte("v"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	// read reads key as the resolver does: the replica (many: GetMany),
	// then the primary when the replica's read fails as unavailable. It
	// reports whether the replica's read waited the query timeout.
	read := func(many bool) (waited bool) {
		t.Helper()
		start := time.Now()
		if many {
			_, err = s.GetMany(ctx, "st", [][]byte{key}, 0)
		} else {
			_, _, err = s.Get(ctx, "st", key, 0)
		}
		waited = time.Since(start) >= timeout
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("read of the stalled replica: %v, want store.ErrUnavailable", err)
		}
		if row, found, err := s.Get(ctx, "st", key, 1); err != nil || !found || row.Version != 1 {
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
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, _, err := s.Get(ctx, "st", key, 0); err == nil {
			break
		}
		if time.Now().After(deadline) {
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
