package sink

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/dlq"
)

// TestSinkRedriveAnswer: a redriven event is taken only by a 2xx: a 300
// (no redirect a client follows) leaves the letter unsettled and says the
// endpoint did not take it. The event goes out as its bus offset's own
// batch: [offset, offset+1) of its partition, and counts as delivered.
func TestSinkRedriveAnswer(t *testing.T) {
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	var mode atomic.Int32 // 0: refuse k (400); 1: answer k 300; 2: take k, recording its batch
	var got atomic.Pointer[wailv1.SinkBatch]
	ep.fail = func(w http.ResponseWriter, r *http.Request, b *wailv1.SinkBatch) bool {
		if string(b.Events[0].Key) != "k" {
			return false
		}
		switch mode.Load() {
		case 0:
			http.Error(w, "no", http.StatusBadRequest)
			return true
		case 1:
			w.WriteHeader(http.StatusMultipleChoices)
			return true
		}
		got.Store(proto.Clone(b).(*wailv1.SinkBatch))
		return false
	}
	ctx := context.Background()
	m := f.manager()
	defer m.Close()
	if _, _, err := m.Create(ctx, &wailv1.Sink{Table: testTable, Name: "s", Url: ep.url(), Start: "beginning", MaxBatchEvents: 1}); err != nil {
		t.Fatal(err)
	}
	f.publish(event("x", 1), event("k", 1)) // k@1 at offset 1
	waitFor(t, "the dead letter", time.Minute, func() bool { return len(letters(t, m, "s")) == 1 })

	mode.Store(1)
	var err error
	waitFor(t, "the sink to hold its partition", time.Minute, func() bool {
		_, err = m.Redrive(ctx, testTable, "s", dlq.Selection{All: true})
		return !errors.Is(err, ErrNotRunning)
	})
	if !errors.Is(err, ErrEndpoint) {
		t.Fatalf("redrive answered 300: %v, want ErrEndpoint", err)
	}
	if ls := letters(t, m, "s"); len(ls) != 1 || received(ep, "k", 1) != 0 {
		t.Fatalf("after a 300: %d letters unsettled, k@1 taken %d times; want the letter unsettled, never taken", len(ls), received(ep, "k", 1))
	}

	mode.Store(2)
	res, err := resolutions(m.Redrive(ctx, testTable, "s", dlq.Selection{All: true}))
	if err != nil || len(res) != 1 || res[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN {
		t.Fatalf("redrive: %v, %v; want REDRIVEN", res, err)
	}
	b := got.Load()
	if b == nil || b.Sink != "s" || b.Table != testTable || b.Partition != 0 || b.FirstOffset != 1 || b.NextOffset != 2 || len(b.Events) != 1 {
		t.Fatalf("the redrive's batch: %v, want k@1 alone as [1, 2) of partition 0", b)
	}
	if st, err := m.Describe(ctx, testTable, "s"); err != nil || st.DeliveredEvents != 2 {
		t.Fatalf("status after the redrive: %v, %v; want 2 events delivered (x@1, then k@1 redriven)", st, err)
	}
}
