package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/logbuf"
)

// TestKafkaAddedIntentPartitionsNotResolved: partitions added to a
// table's intent topic behind a running wail's back are seen by the
// resolver group's client at its next metadata refresh, and the group
// assigns them. They are not the table's (keys are placed by the table's
// count, so they stay empty): the resolver must not try to start them.
// It did, failing with "no partition P" and restarting every 30 s at
// most, an error logged and resolver/<table>/<p> raised each time. Now it
// says once that the partition is not the table's, pointing at
// partitions/<table>, and the table's own partition keeps resolving.
func TestKafkaAddedIntentPartitionsNotResolved(t *testing.T) {
	t.Parallel()
	cfg, adm, _, _ := kafkaRetentionConfig(t, "gparts_")
	intents := strings.Replace(cfg.Log.Kafka.IntentTopic, "{table}", "t", 1)
	var logs logbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// The group's client sees the new partitions within a second (else
	// within its metadata refresh, 5 minutes).
	r := runServerLogged(t, cfg, seams{kafkaOpts: []kgo.Opt{kgo.MetadataMaxAge(time.Second)}}, logger)
	defer stopRun(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	awaitEvents := func(want int) {
		t.Helper()
		for {
			_, end, err := r.srv.log.Bounds(ctx, eventbus.Topic("t"), 0)
			if err != nil {
				t.Fatal(err)
			}
			if end >= int64(want) {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("%d events on the bus, want %d: the table's partition stopped resolving", end, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if _, err := r.put(ctx, "a", "v"); err != nil {
		t.Fatal(err)
	}
	awaitEvents(1)
	resp, err := adm.CreatePartitions(ctx, 2, intents)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	// The group assigns partitions 1 and 2 to the only member: wait until
	// it said so, or failed to start one.
	for p := 1; p <= 2; p++ {
		said := fmt.Sprintf("partition=%d", p)
		for {
			var line string
			for l := range strings.Lines(logs.String()) {
				if strings.Contains(l, said) {
					line = l
					break
				}
			}
			if line != "" {
				if !strings.Contains(line, "partitions/t") || !strings.Contains(line, "docs/operations.md") {
					t.Fatalf("about intent partition %d, added behind wail's back: %s; want it left alone and a line pointing at partitions/t", p, line)
				}
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("nothing said about intent partition %d, added behind wail's back, in 2 minutes: the group did not assign it?\n%s", p, logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for i := range 5 {
		if _, err := r.put(ctx, fmt.Sprintf("b%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	awaitEvents(6)
	for p := 1; p <= 2; p++ {
		if c, ok := condition(r.srv.health, fmt.Sprintf("resolver/t/%d", p)); ok && c.State != health.OK {
			t.Errorf("resolver/t/%d: %+v; want none (not the table's partition)", p, c)
		}
		if n := strings.Count(logs.String(), fmt.Sprintf("partition=%d", p)); n != 1 {
			t.Errorf("%d lines about intent partition %d, want 1:\n%s", n, p, logs.String())
		}
	}
}
