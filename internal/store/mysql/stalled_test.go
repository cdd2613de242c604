package mysql

import (
	"context"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestStalledReplica: as postgres.TestStalledReplica, with the primary's
// server through a proxy as the replica (no MariaDB replica in the test
// services; sqltest.StalledReplica).
func TestStalledReplica(t *testing.T) {
	const timeout = 2 * time.Second
	for _, tc := range sqltest.StalledCases(timeout) {
		t.Run(tc.Name, func(t *testing.T) {
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
			if _, err := s.Apply(ctx, "st", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: 1}}); err != nil {
				t.Fatal(err)
			}
			sqltest.StalledReplica(t, s, "st", proxy, timeout, tc.Deadline)
		})
	}
}
