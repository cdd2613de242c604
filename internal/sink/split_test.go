package sink

import (
	"context"
	"net/http"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
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
