package sink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestSinkRedriveAllBounded: a sink's `redrive --all` over several pages
// of letters (dlq.MaxBytes of events each) keeps and answers at most
// Selection.Limit resolutions, the first letters', and counts all of them;
// every letter is settled all the same. Before, the manager kept one
// resolution per letter of the whole queue in memory (the API then cut
// the answer): millions of letters held as many resolutions.
func TestSinkRedriveAllBounded(t *testing.T) {
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	ctx := context.Background()
	// Letters of k<i>@1 (the event kept whole in the letter, near the
	// size a letter keeps: a page holds about 60 of them), each superseded
	// by k<i>@2 on the bus: nothing is sent.
	const n = 150
	var older, newer []*wailv1.ChangeEvent
	for i := range n {
		older = append(older, event(fmt.Sprintf("k%d", i), 1))
		newer = append(newer, event(fmt.Sprintf("k%d", i), 2))
	}
	f.publish(older...)
	f.publish(newer...)
	topic := DeadLetterTopic(testTable, "many")
	if err := f.log.CreateTopic(ctx, topic, dlq.Partitions, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	recs := make([]*intentlog.Record, n)
	for i, ev := range older {
		ev.Value = []byte(strings.Repeat("v", maxLetterEvent-1024))
		r, err := dlq.LetterRecord(&wailv1.DeadLetter{Table: testTable, Partition: 0, Key: ev.Key, Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_SINK,
			Sink: "many", Event: ev, EventOffset: int64(i), Error: "HTTP 500", Attempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = r
	}
	if err := f.log.Append(ctx, topic, recs); err != nil {
		t.Fatal(err)
	}
	if n*(maxLetterEvent-1024) < 2*dlq.MaxBytes {
		t.Fatalf("%d letters fit in fewer than 3 pages", n)
	}
	m := f.manager()
	defer m.Close()
	if _, _, err := m.Create(ctx, &wailv1.Sink{Table: testTable, Name: "many", Url: ep.url(), Start: "latest", MaxBatchEvents: 1}); err != nil {
		t.Fatal(err)
	}
	var got dlq.Answer
	var err error
	waitFor(t, "the sink to hold its partition", time.Minute, func() bool {
		got, err = m.Redrive(ctx, testTable, "many", dlq.Selection{All: true, Limit: 2})
		return !errors.Is(err, ErrNotRunning)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Resolutions) != 2 || got.Total != n {
		t.Fatalf("%d resolutions, total %d; want 2, total %d", len(got.Resolutions), got.Total, n)
	}
	for i, r := range got.Resolutions {
		if r.Offset != int64(i) || r.Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_SUPERSEDED || r.SupersededByVersion != 2 {
			t.Errorf("resolution %d: %v; want letter %d superseded by v2", i, r, i)
		}
	}
	if left := letters(t, m, "many"); len(left) != 0 || len(ep.events()) != 0 {
		t.Fatalf("%d letters unsettled, %d events sent; want none", len(left), len(ep.events()))
	}
}
