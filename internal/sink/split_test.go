package sink

import (
	"context"
	"net/http"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
)

// TestSinkSplitsTooLarge: an endpoint that answers 413 to a batch (its
// body limit) gets it again in halves, one after the other, each halved
// again if need be; only an event it refuses alone is dead-lettered. (The
// whole batch was dead-lettered at the first 413, the events the endpoint
// would have taken with it.)
func TestSinkSplitsTooLarge(t *testing.T) {
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	ep.fail = func(w http.ResponseWriter, r *http.Request, b *wailv1.SinkBatch) bool {
		for _, e := range b.Events {
			if string(e.Key) == "huge" || len(b.Events) > 3 {
				http.Error(w, "request entity too large", http.StatusRequestEntityTooLarge)
				return true
			}
		}
		return false
	}
	m := f.manager()
	defer m.Close()
	if _, _, err := m.Create(context.Background(), &wailv1.Sink{Table: testTable, Name: "s", Url: ep.url(), Start: "beginning",
		MaxBatchEvents: 16, BackoffMinMs: 10, BackoffMaxMs: 50}); err != nil {
		t.Fatal(err)
	}
	var evs []*wailv1.ChangeEvent
	for i := range 10 {
		evs = append(evs, event(string(rune('a'+i%4)), uint64(i+1)))
	}
	evs = append(evs, event("huge", 11), event("a", 12))
	f.publish(evs...)
	waitFor(t, "every event but the huge one", time.Minute, func() bool { return len(ep.events()) >= len(evs)-1 })
	got := ep.events()
	checkOrder(t, got)
	if len(got) != len(evs)-1 {
		t.Fatalf("received %d events, want %d (all but the huge one, once each)", len(got), len(evs)-1)
	}
	for i, e := range got {
		want := evs[i]
		if i >= 10 {
			want = evs[i+1]
		}
		if string(e.Key) != string(want.Key) || e.Version != want.Version {
			t.Fatalf("event %d: %s@%d, want %s@%d (the bus's order)", i, e.Key, e.Version, want.Key, want.Version)
		}
	}
	dead, ls := f.deadLetters(m, "s")
	if len(dead) != 1 || string(dead[0].Key) != "huge" || !ls[0].Permanent || ls[0].HttpStatus != http.StatusRequestEntityTooLarge {
		t.Fatalf("dead letters %v %v, want the huge event alone, permanent, HTTP 413", dead, ls)
	}
}

// TestSinkSplitStopsAtTheFirstHalfsFailure: when a half of a batch split
// after a 413 cannot be settled (here: its event too large alone, whose
// dead letter cannot be written for a moment), the other half is not
// delivered and the position does not pass it: the range is tried again
// whole, and the event is dead-lettered then. Delivering the second half
// anyway would commit the position past an event neither delivered nor
// dead-lettered.
func TestSinkSplitStopsAtTheFirstHalfsFailure(t *testing.T) {
	f := newFixture(t, 1)
	log := &dlqFailLog{Log: f.log}
	log.fails.Store(1)
	ep := newEndpoint(t, "")
	ep.fail = func(w http.ResponseWriter, r *http.Request, b *wailv1.SinkBatch) bool {
		for _, e := range b.Events {
			if string(e.Key) == "huge" || len(b.Events) > 1 {
				http.Error(w, "request entity too large", http.StatusRequestEntityTooLarge)
				return true
			}
		}
		return false
	}
	m := New(Options{Backend: f.cat, Log: log, Run: true, Refresh: 50 * time.Millisecond,
		Table: func(name string) (group.Table, bool) { return f.tbl, name == testTable }})
	m.Start(context.Background())
	defer m.Close()
	if _, _, err := m.Create(context.Background(), &wailv1.Sink{Table: testTable, Name: "s", Url: ep.url(), Start: "beginning",
		MaxBatchEvents: 16, BackoffMinMs: 5, BackoffMaxMs: 20}); err != nil {
		t.Fatal(err)
	}
	f.publish(event("huge", 1), event("a", 2), event("b", 3), event("c", 4))
	waitFor(t, "a, b and c delivered", 30*time.Second, func() bool { return len(ep.events()) >= 3 })
	if log.fails.Load() > 0 {
		t.Fatal("the dead letter never failed: the test tests nothing")
	}
	var dead []*wailv1.ChangeEvent
	waitFor(t, "the huge event dead-lettered", 30*time.Second, func() bool { dead, _ = f.deadLetters(m, "s"); return len(dead) > 0 })
	if len(dead) != 1 || string(dead[0].Key) != "huge" {
		t.Fatalf("dead letters %v, want the huge event once", dead)
	}
	got := ep.events()
	if len(got) != 3 || string(got[0].Key) != "a" || string(got[1].Key) != "b" || string(got[2].Key) != "c" {
		t.Fatalf("delivered %v, want a, b, c once each", got)
	}
}
