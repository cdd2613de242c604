package console_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/console"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// slowBounds is a log whose Bounds answers late, as a busy broker's does.
type slowBounds struct {
	intentlog.Log
	delay time.Duration
}

func (l slowBounds) Bounds(ctx context.Context, topic string, p int32) (int64, int64, error) {
	time.Sleep(l.delay)
	return l.Log.Bounds(ctx, topic, p)
}

// TestTailStartsBeforeItAnswers: an event appended once the tail's
// answer has begun reaches the tail (the tail read each partition's end
// after answering, so an event written in between was skipped: CI's
// TestNarrowedGrantEndsTail waited a minute for the event of its write).
func TestTailStartsBeforeItAnswers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	log, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = log.Close() })
	const partitions = 2
	topic := eventbus.Topic("t")
	if err := log.CreateTopic(ctx, topic, partitions, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	c := console.New(console.Options{Log: slowBounds{log, 300 * time.Millisecond}, Table: func(name string) (catalog.Table, bool) {
		return catalog.Table{Name: "t", Partitions: partitions}, name == "t"
	}})
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/console/api/tail?table=t", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("tail: %d", resp.StatusCode)
	}
	for p := range int32(partitions) {
		rec, err := eventbus.Encode(&intent.Event{Table: "t", Key: []byte("after-answer"), Op: intent.Upsert, Version: uint64(p + 1),
			Value: []byte("v"), IntentAt: time.Now(), ResolvedAt: time.Now(), CoveredIntents: 1})
		if err != nil {
			t.Fatal(err)
		}
		rec.Partition = p
		if err := log.Append(ctx, topic, []*intentlog.Record{rec}); err != nil {
			t.Fatal(err)
		}
	}
	lines := bufio.NewReader(resp.Body)
	for got := 0; got < partitions; {
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("the tail ended after %d of the %d events appended once it answered: %v", got, partitions, err)
		}
		if strings.HasPrefix(line, "data: ") {
			if !strings.Contains(line, "after-answer") {
				t.Fatalf("tail sent %s", line)
			}
			got++
		}
	}
}
