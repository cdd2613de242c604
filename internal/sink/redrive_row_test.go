package sink

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestSinkLegacyRowAtAnEventsOffset: a snapshot row an older wail
// dead-lettered (recorded at offset 0 of partition 0) is refused even
// where that offset holds an event that matches it in part: of another
// key at the row's version, or of the row's key at another version. Only
// the key and the version together place a letter on the bus; the event
// of the legitimate letter at that offset is redriven, the rows never
// sent.
func TestSinkLegacyRowAtAnEventsOffset(t *testing.T) {
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	ctx := context.Background()
	f.publish(event("a", 1)) // offset 0
	topic := DeadLetterTopic(testTable, "old")
	if err := f.log.CreateTopic(ctx, topic, dlq.Partitions, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.log.Append(ctx, topic, []*intentlog.Record{
		legacyRecord(t, event("a", 1), "t/0/0"), // the event's own letter
		legacyRecord(t, event("c", 1), "t/0/0"), // a row: another key, the event's version
		legacyRecord(t, event("a", 7), "t/0/0"), // a row: the event's key, another version
	}); err != nil {
		t.Fatal(err)
	}
	m := f.manager()
	defer m.Close()
	if _, _, err := m.Create(ctx, &wailv1.Sink{Table: testTable, Name: "old", Url: ep.url(), Start: "latest", MaxBatchEvents: 1}); err != nil {
		t.Fatal(err)
	}
	var res []*wailv1.DeadLetterResolution
	var err error
	waitFor(t, "the sink to hold its partition", time.Minute, func() bool {
		res, err = resolutions(m.Redrive(ctx, testTable, "old", dlq.Selection{Offsets: []int64{0, 1}}))
		return !errors.Is(err, ErrNotRunning)
	})
	if !errors.Is(err, ErrCannotRedrive) || !strings.Contains(err.Error(), "offset 1:") || len(res) != 1 ||
		res[0].Offset != 0 || res[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN {
		t.Fatalf("redrive of a@1's letter and c@1's row: %v, %v; want a@1 REDRIVEN, then the row refused", res, err)
	}
	if _, err := m.Redrive(ctx, testTable, "old", dlq.Selection{Offsets: []int64{2}}); !errors.Is(err, ErrCannotRedrive) ||
		!strings.Contains(err.Error(), "offset 2:") {
		t.Fatalf("redrive of a@7's row: %v, want ErrCannotRedrive", err)
	}
	if got := ep.events(); len(got) != 1 || string(got[0].Key) != "a" || got[0].Version != 1 {
		t.Fatalf("the endpoint received %v, want a@1 only", got)
	}
}
