package server

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/servicetest"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestKafkaEventRetentionChecked: Kafka topics keep the configs they were
// created with (or that were set outside wail), so an event topic whose
// retention.ms fell below its intent topic's went unnoticed, and a replay
// of intents whose events expired republished versions consumers had
// seen. Now the start raises the degraded condition retention/<table>
// naming the topic, its retention.ms and the command to run, wail doctor
// fails the same way, and both clear once the topic keeps its events
// long enough.
func TestKafkaEventRetentionChecked(t *testing.T) {
	t.Parallel()
	cfg, adm, events, brokers := kafkaRetentionConfig(t, "ret_")

	r := runServer(t, cfg, seams{})
	if c, ok := condition(r.srv.health, "retention/t"); ok && c.State != health.OK {
		t.Fatalf("retention condition with equal retentions: %+v", c)
	}
	stopRun(t, r)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	setTopicConfig(ctx, t, adm, events, "retention.ms", "3600000") // outside wail: an hour, below the intents' two
	r = runServer(t, cfg, seams{})
	c, ok := condition(r.srv.health, "retention/t")
	if !ok || c.State != health.Degraded || !strings.Contains(c.Reason, events) || !strings.Contains(c.Reason, "retention.ms 3600000") ||
		!strings.Contains(c.Action, "kafka-configs.sh --bootstrap-server "+strings.Join(brokers, ",")+" --alter --entity-type topics --entity-name "+events+" --add-config retention.ms=7200000") {
		t.Fatalf("retention condition: %+v %v; want degraded, naming %s, its retention.ms and the command", c, ok, events)
	}
	stopRun(t, r)
	var out bytes.Buffer
	err := Doctor(ctx, cfg, nil, "", 0, &out)
	if err == nil || !strings.Contains(out.String(), "retention    FAIL: event topic "+events) || !strings.Contains(out.String(), "--add-config retention.ms=7200000") {
		t.Fatalf("doctor: %v\n%s\nwant the retention check to fail naming %s and the command", err, out.String(), events)
	}

	setTopicConfig(ctx, t, adm, events, "retention.ms", "-1")
	r = runServer(t, cfg, seams{})
	if c, ok := condition(r.srv.health, "retention/t"); ok && c.State != health.OK {
		t.Fatalf("retention condition with events kept forever: %+v", c)
	}
	stopRun(t, r)
	out.Reset()
	if err := Doctor(ctx, cfg, nil, "", 0, &out); err != nil || !strings.Contains(out.String(), "retention    ok") {
		t.Fatalf("doctor with events kept forever: %v\n%s", err, out.String())
	}
}

// TestKafkaRetentionRechecked: the check ran only at start and at a
// table's create, so an event topic's retention.ms lowered behind a
// running wail went unnoticed until a restart, and an operator who ran
// the condition's command (raised it) kept a degraded process until the
// next restart. Now every log.kafka.retention_check reads the topics
// again: the condition comes and goes with the topic's config.
func TestKafkaRetentionRechecked(t *testing.T) {
	t.Parallel()
	cfg, adm, events, _ := kafkaRetentionConfig(t, "rech_")
	cfg.Log.Kafka.RetentionCheck = time.Second // the least
	r := runServer(t, cfg, seams{})
	defer stopRun(t, r)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, step := range []struct {
		ms   string
		want health.State
	}{
		{"3600000", health.Degraded}, // lowered behind wail's back
		{"-1", health.OK},            // the condition's action, taken
		{"60000", health.Degraded},
		{"7200000", health.OK},
	} {
		setTopicConfig(ctx, t, adm, events, "retention.ms", step.ms)
		deadline := time.Now().Add(15 * time.Second)
		for {
			c, ok := condition(r.srv.health, "retention/t")
			state := health.OK
			if ok {
				state = c.State
			}
			if state == step.want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("retention.ms %s on %s: condition %+v after 15 s of checks every second; want %v", step.ms, events, c, step.want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// setTopicConfig sets a config of topic outside wail, as an operator's
// kafka-configs.sh --alter does.
func setTopicConfig(ctx context.Context, t *testing.T, adm *kadm.Client, topic, key, value string) {
	t.Helper()
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: key, Value: kadm.StringPtr(value)}}, topic); err != nil {
		t.Fatal(err)
	}
}

// kafkaRetentionConfig is a Kafka-backed configuration with table t (one
// partition; intents and events kept two hours) on topics of a prefix of
// their own, deleted at the test's end, and an admin client.
func kafkaRetentionConfig(t *testing.T, name string) (cfg config.Config, adm *kadm.Client, events string, brokers []string) {
	t.Helper()
	brokers = servicetest.KafkaBrokers(t)
	prefix := sqltest.Name(name)
	intents, events, dlqs := prefix+".intents.t", prefix+".events.t", prefix+".dlq.t"
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	adm = kadm.NewClient(cl)
	t.Cleanup(func() {
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, intents, events, dlqs)
	})
	cfg = testConfig(t)
	cfg.Log.NoSync, cfg.Store.NoSync = true, true
	cfg.Log.Kind = config.LogKafka
	cfg.Log.Kafka.Brokers, cfg.Log.Kafka.ReplicationFactor = brokers, 1
	cfg.Log.Kafka.IntentTopic, cfg.Log.Kafka.EventTopic, cfg.Log.Kafka.DLQTopic = prefix+".intents.{table}", prefix+".events.{table}", prefix+".dlq.{table}"
	cfg.Resolver.Group = prefix
	cfg.Log.Retention, cfg.Log.EventRetention = 2*time.Hour, 2*time.Hour
	cfg.Tables = []config.Table{{Name: "t", Partitions: 1}}
	return cfg, adm, events, brokers
}
