package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestStalledReplicaSparesTheOthers: with one replica stalled and
// bypassed (replica-0, through a proxy that stopped forwarding), reads of
// another replica (replica-1, the same test replica, direct) still find
// it covered by the freshness prober (fresh.go): the prober skips a
// bypassed replica instead of waiting the query timeout on it at every
// probe while the other replica's reads wait out store.replica_wait and
// read it stale.
func TestStalledReplicaSparesTheOthers(t *testing.T) {
	const timeout = 2 * time.Second
	dsn, rdsns := freshDSNs(t, 1)
	stalled, proxy := viaProxy(t, rdsns[0])
	s, err := Open(context.Background(), Options{DSN: dsn, ReplicaDSNs: []string{stalled, rdsns[0]}, MaxConns: 4,
		QueryTimeout: timeout, ReplicaWait: 1500 * time.Millisecond, Logger: quiet})
	s = sqltest.Closing(t, s, err)
	ctx := t.Context()
	if err := s.CreateTable(ctx, "sp"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replica to show the table", func() bool { _, _, err := s.Get(ctx, "sp", []byte("k"), 0); return err == nil })
	proxy.Stall()
	for n, _ := s.ReplicasBypassed(); n == 0; n, _ = s.ReplicasBypassed() {
		_, _, _ = s.Get(ctx, "sp", []byte("k"), 0)
	}
	_, staleBefore := s.ReplicaWaits()
	for v := range uint64(3) {
		if _, err := s.Apply(ctx, "sp", []store.Mutation{{Key: []byte("k"), Value: []byte("v"), Version: v + 1}}); err != nil {
			t.Fatal(err)
		}
		if got := versionAt(t, s, "sp", "k", 1); got != v+1 {
			t.Errorf("replica-1 right after the write of version %d: version %d", v+1, got)
		}
	}
	if _, stale := s.ReplicaWaits(); stale != staleBefore {
		t.Errorf("%d reads of replica-1 waited out store.replica_wait while replica-0 was bypassed, want 0", stale-staleBefore)
	}
}
