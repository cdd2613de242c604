package kafka

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/servicetest"
)

// Tests with kcat (librdkafka), an independent client, against the real
// broker.

// kcatMessage is one message of kcat -J output.
type kcatMessage struct {
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	Key       *string  `json:"key"`
	Payload   *string  `json:"payload"`
	Headers   []string `json:"headers"` // name, value, name, value...
}

func (m kcatMessage) header(name string) (string, bool) {
	for i := 0; i+1 < len(m.Headers); i += 2 {
		if m.Headers[i] == name {
			return m.Headers[i+1], true
		}
	}
	return "", false
}

// kcat runs kcat with args and stdin, failing the test on error.
func kcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("kcat"); err != nil {
		msg := "kcat not installed: run scripts/kafka.sh up (it installs kcat)"
		servicetest.Missing(t, msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kcat", args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// kcatConsume reads a whole topic with kcat -J.
func kcatConsume(t *testing.T, brokers []string, topic string) []kcatMessage {
	t.Helper()
	out := kcat(t, "", "-C", "-q", "-b", strings.Join(brokers, ","), "-t", topic, "-o", "beginning", "-e", "-J")
	var msgs []kcatMessage
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var m kcatMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("kcat -J line %q: %v", sc.Text(), err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// TestPlacementKafka: records keyed K land on intentlog.Partition(K, n) as
// seen by kcat, and records kcat produces with librdkafka's Java-compatible
// murmur2 partitioner land where intentlog.Partition says.
func TestPlacementKafka(t *testing.T) {
	const n, keys = 8, 200
	brokers := realBrokers(t)
	j := newJanitor(t, brokers)
	l := openLog(t, brokers, nil)
	ctx := testCtx(t, 60*time.Second)
	topic := topicName("placement")
	j.add(topic)
	if err := l.CreateTopic(ctx, topic, n, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	recs := make([]*intentlog.Record, keys)
	for i := range recs {
		recs[i] = &intentlog.Record{Key: fmt.Appendf(nil, "wail-key-%d", i), Value: []byte("ours")}
	}
	if err := l.Append(ctx, topic, recs); err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	for i := range keys {
		fmt.Fprintf(&in, "kcat-key-%d\ttheirs\n", i)
	}
	kcat(t, in.String(), "-P", "-b", strings.Join(brokers, ","), "-t", topic, "-K", "\t",
		"-X", "topic.partitioner=murmur2_random")

	appended := map[string]*intentlog.Record{}
	for _, r := range recs {
		appended[string(r.Key)] = r
	}
	msgs := kcatConsume(t, brokers, topic)
	if len(msgs) != 2*keys {
		t.Fatalf("kcat read %d messages, want %d", len(msgs), 2*keys)
	}
	for _, m := range msgs {
		if m.Key == nil {
			t.Fatalf("message at %d/%d without a key", m.Partition, m.Offset)
		}
		if want := intentlog.Partition([]byte(*m.Key), n); m.Partition != want {
			t.Errorf("key %q (%s) on partition %d, want intentlog.Partition = %d", *m.Key, *m.Payload, m.Partition, want)
		}
		if r, ok := appended[*m.Key]; ok && (r.Partition != m.Partition || r.Offset != m.Offset) {
			t.Errorf("key %q: Append said %d/%d, kcat reads it at %d/%d", *m.Key, r.Partition, r.Offset, m.Partition, m.Offset)
		}
	}
}

// TestKcatEvents publishes change events through the event bus on Kafka and
// reads them back with kcat: keys, partitions, the wail.* headers, and the
// tombstone (null value) right after a DELETE event.
func TestKcatEvents(t *testing.T) {
	brokers := realBrokers(t)
	j := newJanitor(t, brokers)
	l := openLog(t, brokers, nil)
	ctx := testCtx(t, 60*time.Second)
	table := topicName("kcat")
	j.add(eventbus.Topic(table))
	bus := eventbus.New(l)
	if err := bus.CreateTable(ctx, table, 3, time.Hour); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	events := []intent.Event{
		{Table: table, Key: []byte("user-1"), Op: intent.Upsert, Version: 101, Value: []byte(`{"n":1}`), IntentAt: now, ResolvedAt: now},
		{Table: table, Key: []byte("user-2"), Op: intent.Upsert, Version: 102, Value: []byte(`{"n":2}`), IntentAt: now, ResolvedAt: now},
		{Table: table, Key: []byte("user-1"), Op: intent.Delete, Version: 103, IntentAt: now, ResolvedAt: now},
		{Table: table, Key: []byte("user-3"), Op: intent.Upsert, Version: 104, Value: []byte(`{"n":3}`), IntentAt: now, ResolvedAt: now},
	}
	if err := bus.Publish(ctx, table, events); err != nil {
		t.Fatal(err)
	}
	byKey := map[string][]kcatMessage{} // in offset order: one key, one partition
	for _, m := range kcatConsume(t, brokers, eventbus.Topic(table)) {
		if m.Key == nil {
			t.Fatalf("message at %d/%d without a key", m.Partition, m.Offset)
		}
		byKey[*m.Key] = append(byKey[*m.Key], m)
	}
	seen := map[string]int{}
	for _, e := range events {
		key := string(e.Key)
		msgs := byKey[key]
		if seen[key] >= len(msgs) {
			t.Fatalf("event %s v%d: kcat read only %d messages of the key", key, e.Version, len(msgs))
		}
		m := msgs[seen[key]]
		seen[key]++
		checkEventMessage(t, e, m)
		if e.Op == intent.Delete { // eventbus follows it with a tombstone
			if seen[key] >= len(msgs) || msgs[seen[key]].Payload != nil || len(msgs[seen[key]].Headers) != 0 {
				t.Errorf("DELETE event %s v%d: no tombstone (null value, no headers) right after it", key, e.Version)
				continue
			}
			seen[key]++
		}
	}
	for key, msgs := range byKey {
		if seen[key] != len(msgs) {
			t.Errorf("key %s: %d messages, %d expected", key, len(msgs), seen[key])
		}
	}
}

func checkEventMessage(t *testing.T, e intent.Event, m kcatMessage) {
	t.Helper()
	key := string(e.Key)
	if want := intentlog.Partition(e.Key, 3); m.Partition != want {
		t.Errorf("event %s v%d on partition %d, want %d", key, e.Version, m.Partition, want)
	}
	if m.Payload == nil {
		t.Errorf("event %s v%d: null value (the event must carry the ChangeEvent)", key, e.Version)
	}
	for name, want := range map[string]string{
		eventbus.HeaderVersion: strconv.FormatUint(e.Version, 10),
		eventbus.HeaderOp:      e.Op.String(),
		eventbus.HeaderEventID: intent.EventID(e.Table, e.Key, e.Version),
	} {
		if got, ok := m.header(name); !ok || got != want {
			t.Errorf("event %s v%d: header %s = %q (present %v), want %q", key, e.Version, name, got, ok, want)
		}
	}
}
