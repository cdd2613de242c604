package sink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/group"
)

// TestSinkSnapshotRequestsIdentified: the requests of a "snapshot"
// sink's snapshot are marked snapshot (partition and offsets unset), also
// the halves of one the endpoint answered 413, and their Wail-Delivery
// names one content: an endpoint that deduplicates on it (as README and
// DESIGN.md offer) must never drop a request whose events it did not
// have. Before, the halves of a snapshot request went out as requests of
// partition 0 at offsets -1 without the mark, named "t/0/-1--1" and
// "t/0/-1-0" whatever their events (every split snapshot request had the
// same names), and a snapshot taken again after the sink stopped half way
// named its requests "t/snapshot/1", "t/snapshot/2"... again, with other
// events: the endpoint dropped rows it never had.
func TestSinkSnapshotRequestsIdentified(t *testing.T) {
	f := newFixture(t, 1)
	var (
		mu         sync.Mutex
		byDelivery = map[string]string{} // delivery -> the events it carried
		unmarked   []string
	)
	ep := newEndpoint(t, "")
	ep.fail = func(w http.ResponseWriter, r *http.Request, b *wailv1.SinkBatch) bool {
		if len(b.Events) > 2 {
			http.Error(w, "request entity too large", http.StatusRequestEntityTooLarge)
			return true
		}
		var evs []string
		for _, e := range b.Events {
			evs = append(evs, fmt.Sprintf("%s@%d", e.Key, e.Version))
		}
		got := strings.Join(evs, ",")
		d := r.Header.Get(HeaderDelivery)
		mu.Lock()
		defer mu.Unlock()
		if !b.Snapshot || b.FirstOffset != 0 || b.NextOffset != 0 {
			unmarked = append(unmarked, fmt.Sprintf("%s (snapshot %v, offsets %d-%d): %s", d, b.Snapshot, b.FirstOffset, b.NextOffset, got))
		}
		if was, ok := byDelivery[d]; ok && was != got {
			t.Errorf("Wail-Delivery %q carried %s, then %s: an endpoint deduplicating on it drops the second", d, was, got)
		}
		byDelivery[d] = got
		return false
	}
	// The snapshot: 8 rows a run, in requests of at most 4 events (split
	// by the endpoint); the first run stops after its first request, the
	// second reads newer versions.
	var runs atomic.Int64
	errStop := errors.New("the snapshot's stream failed (test)")
	snap := func(ctx context.Context, req *wailv1.SubscribeRequest, started func() error, send func(*wailv1.SubscribeResponse) error) error {
		run := runs.Add(1)
		if err := started(); err != nil {
			return err
		}
		for c := range 2 {
			var evs []*wailv1.StreamedEvent
			for i := c * 4; i < c*4+4; i++ {
				evs = append(evs, &wailv1.StreamedEvent{Event: event(fmt.Sprintf("k%d", i), uint64(run*10+int64(i))), Snapshot: true})
			}
			if err := send(&wailv1.SubscribeResponse{Events: evs}); err != nil {
				return err
			}
			if run == 1 {
				return errStop
			}
		}
		return send(&wailv1.SubscribeResponse{Cursor: eventbus.Cursor{Table: testTable, Offsets: []int64{0}}.String()})
	}
	m := New(Options{Backend: f.cat, Log: f.log, Run: true, Refresh: 50 * time.Millisecond, Snapshot: snap,
		Table: func(name string) (group.Table, bool) { return f.tbl, name == testTable }})
	m.Start(context.Background())
	defer m.Close()
	if _, _, err := m.Create(context.Background(), &wailv1.Sink{Table: testTable, Name: "s", Url: ep.url(), Start: StartSnapshot,
		MaxBatchEvents: 4, BackoffMinMs: 10, BackoffMaxMs: 50}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second snapshot's rows", time.Minute, func() bool { return len(ep.events()) >= 12 })
	mu.Lock()
	defer mu.Unlock()
	if len(unmarked) > 0 {
		t.Errorf("snapshot requests sent without the snapshot mark, or with offsets:\n%s", strings.Join(unmarked, "\n"))
	}
}
