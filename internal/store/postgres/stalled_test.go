package postgres

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
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
// the test replica that stops forwarding) costs the query timeout of the
// reads sent to it only until its breaker opens (sqltest.StalledReplica).
func TestStalledReplica(t *testing.T) {
	const timeout = 2 * time.Second
	for _, tc := range sqltest.StalledCases(timeout) {
		t.Run(tc.Name, func(t *testing.T) {
			dsn, rdsns := freshDSNs(t, 1)
			rdsn, proxy := viaProxy(t, rdsns[0])
			s, err := Open(context.Background(), Options{DSN: dsn, ReplicaDSNs: []string{rdsn}, MaxConns: 4, QueryTimeout: timeout, Logger: quiet})
			s = sqltest.Closing(t, s, err)
			ctx := t.Context()
			if err := s.CreateTable(ctx, "st"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Apply(ctx, "st", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}}); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the replica to show version 1", func() bool { return versionAt(t, s, "st", "k", 0) == 1 })
			sqltest.StalledReplica(t, s, "st", proxy, timeout, tc.Deadline)
		})
	}
}
