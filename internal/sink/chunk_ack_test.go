package sink

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// committedOf returns the committed position of sink name's group on
// partition 0 (-1: none).
func committedOf(t *testing.T, f *fixture, name string) int64 {
	t.Helper()
	c, err := f.log.Committed(context.Background(), group.LogGroup(GroupName(name)), f.tbl.Topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := c[0]; ok {
		return o
	}
	return -1
}

// TestSinkAcksEachChunkPastItsLastEvent: a batch of the group larger
// than max_batch_events goes in several requests, each acknowledged once
// the endpoint took it, at the offset after its last event: while the
// second request is in flight the position is past the first one's
// events (at its last one, a restart sent that event again), and the
// first request names that offset as its next_offset.
func TestSinkAcksEachChunkPastItsLastEvent(t *testing.T) {
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	release := make(chan struct{})
	var mu sync.Mutex
	var batches []*wailv1.SinkBatch
	ep.fail = func(_ http.ResponseWriter, _ *http.Request, b *wailv1.SinkBatch) bool {
		mu.Lock()
		batches = append(batches, proto.Clone(b).(*wailv1.SinkBatch))
		mu.Unlock()
		if b.FirstOffset == 2 {
			<-release
		}
		return false
	}
	m := f.manager()
	defer m.Close()
	defer close(release)
	if _, _, err := m.Create(context.Background(), &wailv1.Sink{Table: testTable, Name: "s", Url: ep.url(), Start: "beginning", MaxBatchEvents: 2}); err != nil {
		t.Fatal(err)
	}
	f.publish(event("a", 1), event("b", 1), event("c", 1)) // one append: one batch of the group
	waitFor(t, "the second request", time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(batches) == 2
	})
	if c := committedOf(t, f, "s"); c != 2 {
		t.Errorf("committed %d while the second request (offset 2) is in flight, want 2: past the first request's events 0 and 1", c)
	}
	mu.Lock()
	first := batches[0]
	mu.Unlock()
	if first.FirstOffset != 0 || first.NextOffset != 2 || len(first.Events) != 2 {
		t.Errorf("the first request: offsets %d to %d with %d events, want 0 to 2 with 2", first.FirstOffset, first.NextOffset, len(first.Events))
	}
}

// TestSinkAcksPastTrailingTombstones: an envelope delete's tombstone
// after a batch's last event is no event (the group passes it without a
// record): the batch is acknowledged past it, at the group batch's end,
// not at the offset after the last event sent; else the position stayed
// short of the log's end (a lag of one that never goes) and the reader
// read the tombstone again at each start.
func TestSinkAcksPastTrailingTombstones(t *testing.T) {
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	m := f.manager()
	defer m.Close()
	if _, _, err := m.Create(context.Background(), &wailv1.Sink{Table: testTable, Name: "s", Url: ep.url(), Start: "beginning"}); err != nil {
		t.Fatal(err)
	}
	v, err := proto.Marshal(event("a", 1))
	if err != nil {
		t.Fatal(err)
	}
	// One append: the event and, after it, a delete's tombstone.
	if err := f.log.Append(context.Background(), f.tbl.Topic, []*intentlog.Record{{Key: []byte("a"), Value: v}, {Key: []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the event delivered", time.Minute, func() bool { return received(ep, "a", 1) == 1 })
	deadline := time.Now().Add(5 * time.Second)
	for committedOf(t, f, "s") != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("committed %d, want 2: past the tombstone at offset 1 that ends the batch", committedOf(t, f, "s"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
