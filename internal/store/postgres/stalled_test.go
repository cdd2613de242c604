package postgres

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// viaProxy returns dsn (a URL) with its host:port replaced by a proxy to
// it, which the test can stall.
func viaProxy(t *testing.T, dsn string) (string, *sqltest.Proxy) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse replica DSN: %v", err)
	}
	p := sqltest.NewProxy(t, u.Host)
	u.Host = p.Addr()
	return u.String(), p
}

// TestStalledReplica: a replica whose host stops answering (a proxy to
// the test replica that stops forwarding, as a network partition or a
// hung server does) costs the query timeout of the reads sent to it only
// until the store stops sending it reads: later reads at its level fail
// at once as unavailable and the resolver reads the primary, which
// answers. Once the replica answers again, its reads go to it again.
// Before, every read at its level waited the whole query timeout.
func TestStalledReplica(t *testing.T) {
	for _, tc := range []struct {
		name     string
		deadline time.Duration // of the reader's context, 0: none
	}{
		{"no deadline of the reader", 0},
		// The resolver bounds each job of reads by as long as the
		// default query_timeout (5 s): its context ends first, which
		// must count as a stall of the replica too.
		{"the reader's deadline the query timeout", 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) { stalledReplica(t, tc.deadline) })
	}
}

func stalledReplica(t *testing.T, deadline time.Duration) {
	const timeout = 2 * time.Second
	dsn, rdsns := freshDSNs(t, 1)
	rdsn, proxy := viaProxy(t, rdsns[0])
	s, err := Open(context.Background(), Options{DSN: dsn, ReplicaDSNs: []string{rdsn}, MaxConns: 4, QueryTimeout: timeout, Logger: quiet})
	s = sqltest.Closing(t, s, err)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "st"); err != nil {
		t.Fatal(err)
	}
	key := []byte("k")
	if _, err := s.Apply(ctx, "st", []store.Mutation{{Key: key, Value: []byte("v"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replica to show version 1", func() bool { return versionAt(t, s, "st", "k", 0) == 1 })

	// read reads key as the resolver does: the replica, then the primary
	// when the replica's read fails as unavailable. It reports whether the
	// replica's read waited the query timeout.
	read := func() (waited bool) {
		t.Helper()
		start := time.Now()
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if deadline > 0 {
			rctx, cancel = context.WithTimeout(ctx, deadline)
		}
		_, _, err := s.Get(rctx, "st", key, 0)
		cancel()
		waited = time.Since(start) >= min(timeout, max(deadline, timeout))-50*time.Millisecond
		if !errors.Is(err, store.ErrUnavailable) && (deadline == 0 || !errors.Is(err, context.DeadlineExceeded)) {
			t.Fatalf("read of the stalled replica: %v, want store.ErrUnavailable (or the reader's deadline)", err)
		}
		if v := versionAt(t, s, "st", "k", 1); v != 1 {
			t.Fatalf("the primary's version %d, want 1", v)
		}
		return waited
	}
	proxy.Stall()
	const reads = 8
	waited := 0
	for range reads {
		if read() {
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
	eventually(t, "the replica to be read again", func() bool {
		_, _, err := s.Get(ctx, "st", key, 0)
		return err == nil
	})
	if n, _ := s.ReplicasBypassed(); n != 0 {
		t.Errorf("ReplicasBypassed() = %d once the replica answers again, want 0", n)
	}
	if err := s.Check(ctx); err != nil {
		t.Errorf("Check once the replica answers again: %v", err)
	}
}
