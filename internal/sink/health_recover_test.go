package sink

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// dlqFailLog is a log whose first creations of a sink's dead-letter
// topic fail (the log down for a moment).
type dlqFailLog struct {
	intentlog.Log
	fails atomic.Int64
}

var errDLQDown = errors.New("the log refused the topic (test)")

func (l *dlqFailLog) CreateTopic(ctx context.Context, topic string, partitions int32, opts intentlog.TopicOptions) error {
	if strings.HasSuffix(topic, ".dlq") && l.fails.Add(-1) >= 0 {
		return errDLQDown
	}
	return l.Log.CreateTopic(ctx, topic, partitions, opts)
}

// TestSinkHealthClearsAfterSessionFailure: a sink whose session ended on
// a failure of the log under it (here: its dead letter could not be
// written, so the batch was not acknowledged) raises its condition, joins
// again and delivers; once the endpoint takes a request the condition
// must clear, as it does after a failed attempt. It stayed degraded for
// ever: only a failed attempt marked the sink as one to clear.
func TestSinkHealthClearsAfterSessionFailure(t *testing.T) {
	f := newFixture(t, 1)
	log := &dlqFailLog{Log: f.log}
	log.fails.Store(1)
	ep := newEndpoint(t, "")
	var refuse atomic.Bool
	refuse.Store(true)
	ep.fail = func(w http.ResponseWriter, r *http.Request, b *wailv1.SinkBatch) bool {
		if refuse.Swap(false) { // the first request only: a poison batch, then fixed
			http.Error(w, "bad batch", http.StatusBadRequest)
			return true
		}
		return false
	}
	reg := health.NewRegistry(nil)
	m := New(Options{Backend: f.cat, Log: log, Run: true, Refresh: 50 * time.Millisecond, Health: reg,
		Table: func(name string) (group.Table, bool) { return f.tbl, name == testTable }})
	m.Start(context.Background())
	defer m.Close()
	def := &wailv1.Sink{Table: testTable, Name: "hook", Url: ep.url(), Start: "beginning", TimeoutMs: 1000,
		BackoffMinMs: 5, BackoffMaxMs: 20, MaxRetryMs: 60_000}
	if _, _, err := m.Create(context.Background(), def); err != nil {
		t.Fatal(err)
	}
	f.publish(event("k", 1))
	waitFor(t, "the event delivered after the session joined again", 30*time.Second, func() bool { return len(ep.events()) == 1 })
	if log.fails.Load() > 0 {
		t.Fatal("the dead letter never failed: the test tests nothing")
	}
	const component = "sink/" + testTable + "/hook"
	waitCleared(t, reg, component, "the sink delivers again, but its condition stays raised")
	st, err := m.Describe(context.Background(), testTable, "hook")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != "running" {
		t.Errorf("state %q after the delivery, want running", st.State)
	}
}

// waitCleared waits up to 5 s for component's condition to leave reg,
// failing with why and the report when it stays.
func waitCleared(t *testing.T, reg *health.Registry, component, why string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		text := reg.Report().Text()
		if !strings.Contains(text, component) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s:\n%s", why, text)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
