package sink

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
)

// TestSinkPartitionsInFlight: the endpoint holds every request of
// partition 0 until the test releases it; meanwhile the other partitions'
// events are all delivered, never more than partitions_in_flight
// requests at once; once released, partition 0's events follow, per key
// in order, and the sink's lag drains.
func TestSinkPartitionsInFlight(t *testing.T) {
	f := newFixture(t, 4)
	ep := newEndpoint(t, "")
	release := make(chan struct{})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	var inFlight, most atomic.Int64
	var blocked atomic.Int64
	var pmu sync.Mutex
	perPartition := map[int32]int{}
	ep.fail = func(w http.ResponseWriter, r *http.Request, b *wailv1.SinkBatch) bool {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if b.Partition == 0 {
			blocked.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
				return true
			}
		} else {
			time.Sleep(5 * time.Millisecond) // requests of several partitions overlap
		}
		pmu.Lock()
		perPartition[b.Partition] += len(b.Events)
		pmu.Unlock()
		return false
	}
	m := f.manager()
	defer m.Close()
	const inflight = 3
	def := &wailv1.Sink{Table: testTable, Name: "par", Url: ep.url(), Start: "beginning", MaxBatchEvents: 2,
		TimeoutMs: 120_000, BackoffMinMs: 5, BackoffMaxMs: 50, PartitionsInFlight: inflight}
	if _, _, err := m.Create(context.Background(), def); err != nil {
		t.Fatal(err)
	}
	const keys, rounds = 40, 5
	var version uint64
	want := map[string]uint64{}
	for range rounds {
		var evs []*wailv1.ChangeEvent
		for k := range keys {
			version++
			key := fmt.Sprintf("k%02d", k)
			evs = append(evs, event(key, version))
			want[key] = version
		}
		f.publish(evs...)
	}
	var ends [4]int64
	for p := range int32(4) {
		_, end, err := f.log.Bounds(context.Background(), f.tbl.Topic, p)
		if err != nil {
			t.Fatal(err)
		}
		ends[p] = end
	}
	if ends[0] == 0 || ends[0] == keys*rounds {
		t.Fatalf("partition ends %v: the test needs events in partition 0 and in others", ends)
	}
	others := int(ends[1] + ends[2] + ends[3])
	delivered := func(p int32) int {
		pmu.Lock()
		defer pmu.Unlock()
		return perPartition[p]
	}
	waitFor(t, "the other partitions' events while partition 0 is held", 2*time.Minute, func() bool {
		return delivered(1)+delivered(2)+delivered(3) == others
	})
	if delivered(0) != 0 || blocked.Load() != 1 {
		t.Fatalf("partition 0: %d events delivered, %d requests held; want 0 and 1 (its requests go one after another)", delivered(0), blocked.Load())
	}
	releaseOnce.Do(func() { close(release) })
	waitFor(t, "every event", 2*time.Minute, func() bool { return delivered(0) == int(ends[0]) })
	seen := checkOrder(t, ep.events())
	for k, v := range want {
		if !seen[k][v] {
			t.Errorf("key %s: last version %d not received", k, v)
		}
	}
	if n := most.Load(); n > inflight || n < 2 {
		t.Fatalf("at most %d requests in flight at once; want 2..%d (partitions_in_flight)", n, inflight)
	}
	waitFor(t, "the last acknowledgement", time.Minute, func() bool {
		st, err := m.Describe(context.Background(), testTable, "par")
		return err == nil && st.Lag == 0
	})
	t.Logf("at most %d requests in flight; partition ends %v", most.Load(), ends)
}

// TestSinkLatestStartsAtCreate: a "latest" sink created by a process that
// does not run sinks delivers every event published after the create,
// once another process runs it, and none from before.
func TestSinkLatestStartsAtCreate(t *testing.T) {
	f := newFixture(t, 2)
	ep := newEndpoint(t, "")
	admin := New(Options{Backend: f.cat, Log: f.log, Table: func(name string) (group.Table, bool) { return f.tbl, name == testTable }})
	defer admin.Close()
	f.publish(event("before", 1))
	if _, created, err := admin.Create(context.Background(), &wailv1.Sink{Table: testTable, Name: "late", Url: ep.url()}); err != nil || !created {
		t.Fatal(err, created)
	}
	f.publish(event("after", 2), event("after2", 3))
	m := f.manager()
	defer m.Close()
	waitFor(t, "the events after the create", time.Minute, func() bool { return len(ep.events()) == 2 })
	time.Sleep(200 * time.Millisecond) // nothing else comes
	for _, e := range ep.events() {
		if string(e.Key) == "before" {
			t.Fatalf("an event published before the create was delivered")
		}
	}
	if n := len(ep.events()); n != 2 {
		t.Fatalf("%d events delivered, want 2", n)
	}
}
