package server

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/health"
)

// TestKafkaIntentCompactionChecked: an intent topic switched to
// cleanup.policy compact behind wail's back (kafka-configs.sh) lets Kafka
// remove a key's older intents before the resolver read them. An
// acknowledged write whose intent was compacted away, with a later intent
// of the key whose write never reached the store, then gets no event (the
// later intent is unmaterialized, and nothing is left to cover the stored
// version). The check took compact for "kept forever" and said nothing.
// Now retention/<table> is degraded naming the topic and the command, wail
// doctor fails the same way, and both clear once the policy is delete.
func TestKafkaIntentCompactionChecked(t *testing.T) {
	t.Parallel()
	cfg, adm, _, brokers := kafkaRetentionConfig(t, "cmp_")
	intents := strings.Replace(cfg.Log.Kafka.IntentTopic, "{table}", "t", 1)
	cfg.Log.Kafka.RetentionCheck = time.Second // the least
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, step := range []struct {
		policy string
		want   health.State
	}{
		{"compact", health.Degraded}, // switched behind wail's back
		{"compact,delete", health.Degraded},
		{"delete", health.OK}, // the condition's action, taken
	} {
		r := runServer(t, cfg, seams{})
		setTopicConfig(ctx, t, adm, intents, "cleanup.policy", step.policy)
		var c health.Condition
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			var ok bool
			c, ok = condition(r.srv.health, "retention/t")
			if !ok {
				c.State = health.OK
			}
			if c.State == step.want && (c.State == health.OK || strings.Contains(c.Reason, "cleanup.policy "+step.policy+":")) {
				break // the check after the change (the last one may have run before)
			}
			if time.Now().After(deadline) {
				t.Fatalf("cleanup.policy %s on %s: condition %+v after 15 s of checks every second; want %v", step.policy, intents, c, step.want)
			}
		}
		stopRun(t, r)
		var out bytes.Buffer
		err := Doctor(ctx, cfg, nil, "", 0, &out)
		if step.want == health.OK {
			if err != nil || !strings.Contains(out.String(), "retention    ok") {
				t.Fatalf("doctor with cleanup.policy delete: %v\n%s", err, out.String())
			}
			continue
		}
		cmd := "kafka-configs.sh --bootstrap-server " + strings.Join(brokers, ",") + " --alter --entity-type topics --entity-name " + intents + " --add-config cleanup.policy=delete"
		if !strings.Contains(c.Reason, intents) || !strings.Contains(c.Reason, "cleanup.policy "+step.policy+":") || !strings.Contains(c.Action, cmd) {
			t.Fatalf("cleanup.policy %s: condition %+v; want it to name %s, its policy and the command %q", step.policy, c, intents, cmd)
		}
		if err == nil || !strings.Contains(out.String(), "retention    FAIL: intent topic "+intents) || !strings.Contains(out.String(), cmd) {
			t.Fatalf("doctor with cleanup.policy %s: %v\n%s\nwant the retention check to fail naming %s and the command", step.policy, err, out.String(), intents)
		}
	}
}
