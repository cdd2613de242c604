package sink

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestSinkCommitsOnlyAfterA2xx: a batch's position is committed only once
// the endpoint answered it 2xx: while the endpoint answers 503 the
// committed position stays before the batch (a crash then delivers it
// again, never loses it), and it moves past it after the 2xx.
func TestSinkCommitsOnlyAfterA2xx(t *testing.T) {
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	var failing atomic.Bool
	failing.Store(true)
	ep.fail = func(w http.ResponseWriter, r *http.Request, b *wailv1.SinkBatch) bool {
		if !failing.Load() {
			return false
		}
		http.Error(w, "later", http.StatusServiceUnavailable)
		return true
	}
	m := f.manager()
	defer m.Close()
	if _, _, err := m.Create(context.Background(), &wailv1.Sink{Table: testTable, Name: "c", Url: ep.url(), Start: "beginning",
		MaxBatchEvents: 2, MaxRetryMs: 120_000, BackoffMinMs: 10, BackoffMaxMs: 20}); err != nil {
		t.Fatal(err)
	}
	f.publish(event("a", 1), event("b", 2), event("c", 3))
	waitFor(t, "attempts answered 503", time.Minute, func() bool { return ep.requests.Load() >= 3 })
	st, err := m.Describe(context.Background(), testTable, "c")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Partitions) != 1 || st.Partitions[0].Committed > 0 || st.Lag != 3 {
		t.Fatalf("status while every attempt is answered 503: %v; want nothing committed, lag 3", st)
	}
	failing.Store(false)
	waitFor(t, "the commit after the 2xx", time.Minute, func() bool {
		st, err = m.Describe(context.Background(), testTable, "c")
		return err == nil && st.Lag == 0
	})
	if got := ep.events(); len(got) != 3 || st.Partitions[0].Committed != 3 {
		t.Errorf("received %d events, committed %d; want 3, 3", len(got), st.Partitions[0].Committed)
	}
}
