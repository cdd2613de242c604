package sink

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestLetterTopicRecordsItsTable: a sink's dead-letter topic is made
// recorded as made for the sink's table (Options.LetterOwner, by the
// table's name and created_at_us), so that a release of the table,
// dropped elsewhere, deletes it on a log of this process's own: it stayed
// there for good, and a sink of the name on a table created again took
// over the dropped one's letters.
func TestLetterTopicRecordsItsTable(t *testing.T) {
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	ep.fail = func(w http.ResponseWriter, _ *http.Request, _ *wailv1.SinkBatch) bool {
		http.Error(w, "no", http.StatusBadRequest)
		return true
	}
	m := New(Options{Backend: f.cat, Log: f.log, Run: true, Refresh: 50 * time.Millisecond,
		Table:       func(name string) (group.Table, bool) { return f.tbl, name == testTable },
		Incarnation: func(string) int64 { return 42 },
		LetterOwner: func(table string, us int64) string { return fmt.Sprintf("table:%s:%d", table, us) }})
	m.Start(context.Background())
	defer m.Close()
	if _, _, err := m.Create(context.Background(), &wailv1.Sink{Table: testTable, Name: "hook", Url: ep.url(), Start: "beginning", MaxBatchEvents: 1}); err != nil {
		t.Fatal(err)
	}
	f.publish(event("k", 1))
	waitFor(t, "the dead letter", time.Minute, func() bool { return len(letters(t, m, "hook")) == 1 })
	owners, err := f.log.(intentlog.OwnerLister).TopicOwners(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := owners[DeadLetterTopic(testTable, "hook")], fmt.Sprintf("table:%s:42", testTable); got != want {
		t.Fatalf("the sink's dead-letter topic records owner %q, want %q", got, want)
	}
}
