package cassandra

import (
	"testing"

	"github.com/wail-cdc/wail/internal/lease"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

var _ lease.Store = (*Store)(nil)

// TestLeases runs the lease suite of the shared stores with two stores
// (two processes) on one keyspace, each through its own coordinator.
func TestLeases(t *testing.T) {
	opts := testOptions(t)
	a, b := opts, opts
	a.Coordinators, b.Coordinators = opts.Hosts[:1], opts.Hosts[1:2]
	sqltest.RunLeases(t, openTest(t, a), openTest(t, b))
}
