package cassandra

import (
	"errors"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/cassandra/cassandratest"
)

// TestOpenRefusesAnUnknownLocalDC: a local_dc that no node of the cluster
// is in (a typo) is refused at Open naming it and the cluster's data
// centers, not as the store unavailable: requests go to local_dc's nodes
// only, so every one failed "no hosts available in the pool", which wail
// serve waits out as an outage, for ever.
func TestOpenRefusesAnUnknownLocalDC(t *testing.T) {
	opts := testOptions(t)
	opts.LocalDC = "dc-typo"
	opts.Replication = Replication{"dc-typo": 3}
	s, err := Open(t.Context(), opts)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded")
	}
	if errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), `"dc-typo"`) ||
		!strings.Contains(err.Error(), "local_dc") || !strings.Contains(err.Error(), cassandratest.DC()) {
		t.Fatalf("Open: %v; want an error naming local_dc %q and the cluster's data center %s, not unavailable", err, "dc-typo", cassandratest.DC())
	}
}

// TestOpenProbesTheLocalDC: local_dc empty on a cluster of one data
// center takes that data center (TestProbedLocalDCNeedsOneDC: refused
// with several).
func TestOpenProbesTheLocalDC(t *testing.T) {
	opts := testOptions(t)
	opts.LocalDC = ""
	s := openTest(t, opts)
	if s.localDC != cassandratest.DC() {
		t.Fatalf("local data center %q, want %q", s.localDC, cassandratest.DC())
	}
}
