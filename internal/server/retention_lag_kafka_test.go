package server

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/health"
)

// TestKafkaCompactionLagChecked: an event topic compacted with a
// min.compaction.lag.ms below its delete.retention.ms (0: every event
// topic made before wail set it, or one set outside wail) lets
// compaction drop a delete's event and keep its tombstone, which event
// streams pass: a consumer behind at the compaction never sees the
// delete and keeps the key. The start raises retention/<table> naming
// the topic and the command, wail doctor fails the same way, and both
// clear once the lag covers the tombstones' time.
func TestKafkaCompactionLagChecked(t *testing.T) {
	t.Parallel()
	cfg, adm, events, brokers := kafkaRetentionConfig(t, "lag_")

	r := runServer(t, cfg, seams{})
	if c, ok := condition(r.srv.health, "retention/t"); ok && c.State != health.OK {
		t.Fatalf("retention condition of a topic wail made: %+v", c)
	}
	stopRun(t, r)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	setLag := func(ms string) {
		t.Helper()
		setTopicConfig(ctx, t, adm, events, "min.compaction.lag.ms", ms)
		time.Sleep(time.Second) // the broker's metadata after the controller's
	}
	setLag("0")
	r = runServer(t, cfg, seams{})
	c, ok := condition(r.srv.health, "retention/t")
	stopRun(t, r)
	cmd := "kafka-configs.sh --bootstrap-server " + strings.Join(brokers, ",") + " --alter --entity-type topics --entity-name " + events + " --add-config min.compaction.lag.ms=86400000"
	if !ok || c.State != health.Degraded || !strings.Contains(c.Reason, events) || !strings.Contains(c.Reason, "min.compaction.lag.ms 0") ||
		!strings.Contains(c.Reason, "delete") || !strings.Contains(c.Action, cmd) {
		t.Fatalf("retention condition: %+v %v; want degraded, naming %s, its min.compaction.lag.ms and %q", c, ok, events, cmd)
	}
	var out bytes.Buffer
	if err := Doctor(ctx, cfg, nil, "", 0, &out); err == nil || !strings.Contains(out.String(), "retention    FAIL: event topic "+events) || !strings.Contains(out.String(), "min.compaction.lag.ms=86400000") {
		t.Fatalf("doctor: %v\n%s\nwant the retention check to fail naming %s and the command", err, out.String(), events)
	}

	setLag("86400000")
	r = runServer(t, cfg, seams{})
	c, ok = condition(r.srv.health, "retention/t")
	stopRun(t, r)
	if ok && c.State != health.OK {
		t.Fatalf("retention condition with the lag raised: %+v", c)
	}
}
