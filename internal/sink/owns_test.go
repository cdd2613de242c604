package sink

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/store"
)

// cutSwapper is a shared groups' store that stops answering while cut.
type cutSwapper struct {
	store.CatalogSwapper
	cut atomic.Bool
}

func (s *cutSwapper) SwapTable(ctx context.Context, name string, old, new []byte) ([]byte, bool, error) {
	if s.cut.Load() {
		return nil, false, context.DeadlineExceeded
	}
	return s.CatalogSwapper.SwapTable(ctx, name, old, new)
}

// TestSinkStopsRetryingOnceItsLeaseLapsed: a sink shared by processes
// retries a batch the endpoint fails; the store stops answering this
// process, so its lease on the group lapses (another process may own the
// partition by now and deliver the batch itself). It makes no attempt
// more once the lease is not trusted, and does not dead-letter the batch
// when its retries would have run out: the partition's next owner
// delivers it from the committed position.
func TestSinkStopsRetryingOnceItsLeaseLapsed(t *testing.T) {
	const lease = time.Second
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	var mu sync.Mutex
	var attempts []time.Time
	ep.fail = func(w http.ResponseWriter, _ *http.Request, _ *wailv1.SinkBatch) bool {
		mu.Lock()
		attempts = append(attempts, time.Now())
		mu.Unlock()
		http.Error(w, "down", http.StatusServiceUnavailable)
		return true
	}
	sw := &cutSwapper{CatalogSwapper: f.cat}
	m := New(Options{Backend: f.cat, Log: f.log, Run: true, Refresh: 50 * time.Millisecond,
		Table:   func(name string) (group.Table, bool) { return f.tbl, name == testTable },
		Sharing: &group.Sharing{Store: sw, Process: "A", Lease: lease, Logger: slog.New(slog.DiscardHandler)}})
	m.Start(context.Background())
	t.Cleanup(m.Close)
	if _, _, err := m.Create(context.Background(), &wailv1.Sink{Table: testTable, Name: "s", Url: ep.url(), Start: "beginning",
		BackoffMinMs: 20, BackoffMaxMs: 50, MaxRetryMs: 4000}); err != nil {
		t.Fatal(err)
	}
	f.publish(event("k", 1))
	count := func(after time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, at := range attempts {
			if at.After(after) {
				n++
			}
		}
		return n
	}
	waitFor(t, "attempts of the batch", time.Minute, func() bool { return count(time.Time{}) >= 2 })
	cut := time.Now()
	sw.cut.Store(true)
	time.Sleep(4500 * time.Millisecond) // past the lease, and past max_retry_ms from the first attempt
	// The lease is trusted for 4/5 of it from the last renewal, before
	// the cut: half a lease more of margin for an attempt under way.
	if n := count(cut.Add(lease * 3 / 2)); n > 0 {
		t.Errorf("%d attempts more than 1.5 leases after the store stopped answering, want none (the lease lapsed: the partition may be another process's)", n)
	}
	if l := letters(t, m, "s"); len(l) != 0 {
		t.Errorf("the batch was dead-lettered by a process whose lease lapsed: %d letters", len(l))
	}
}
