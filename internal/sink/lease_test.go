package sink

import (
	"context"
	"net/http"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestSinkBatchOutlastsTheGroupLease: a batch the endpoint fails for
// longer than the sinks' group lease (a week; here shortened) is
// dead-lettered once its max_retry_ms is over, and the sink moves on. A
// batch may take longer than any lease: max_retry_ms goes up to a week
// per request, plus each attempt's timeout, plus the wait for a slot
// among partitions_in_flight, and a 413 turns one request into many.
// Before, the group ended the sink's member when the batch stayed
// unacknowledged past the lease ("lease expired"): the session joined
// again and started the batch's retries over, so it was never
// dead-lettered and its partition never moved on.
func TestSinkBatchOutlastsTheGroupLease(t *testing.T) {
	defer func(l time.Duration) { groupLease = l }(groupLease)
	groupLease = 300 * time.Millisecond
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	ep.fail = func(w http.ResponseWriter, r *http.Request, b *wailv1.SinkBatch) bool {
		if string(b.Events[0].Key) == "poison" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	m := f.manager()
	defer m.Close()
	if _, _, err := m.Create(context.Background(), &wailv1.Sink{Table: testTable, Name: "s", Url: ep.url(), Start: "beginning",
		MaxBatchEvents: 1, BackoffMinMs: 20, BackoffMaxMs: 50, MaxRetryMs: 1000}); err != nil {
		t.Fatal(err)
	}
	f.publish(event("poison", 1), event("k", 1))
	waitFor(t, "the batch dead-lettered after max_retry_ms, and the next delivered", 10*time.Second, func() bool {
		return len(letters(t, m, "s")) == 1 && received(ep, "k", 1) == 1
	})
}
