package kafka

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestTopicRetention: what TopicRetention reads is what the topic's
// configs say, including a retention.ms changed outside wail after
// CreateTopic (which leaves an existing topic's configs alone).
func TestTopicRetention(t *testing.T) {
	t.Parallel()
	brokers := realBrokers(t)
	ctx := testCtx(t, time.Minute)
	l := openLog(t, brokers, nil)
	j := newJanitor(t, brokers)
	intents, events := topicName("ret-intents"), topicName("ret-events")
	j.add(intents)
	j.add(events)
	if err := l.CreateTopic(ctx, intents, 1, intentlog.TopicOptions{Retention: 2 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := l.CreateTopic(ctx, events, 1, intentlog.TopicOptions{Compact: true}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		topic   string
		ms      int64
		policy  string
		forever bool
	}{
		{intents, 2 * 3600 * 1000, "delete", false},
		{events, -1, "compact", true},
	} {
		r, err := l.TopicRetention(ctx, tc.topic)
		if err != nil || r.Topic != tc.topic || r.RetentionMS != tc.ms || r.CleanupPolicy != tc.policy || r.Forever() != tc.forever {
			t.Errorf("TopicRetention(%s) = %+v (forever %t), %v; want retention.ms %d, cleanup.policy %s", tc.topic, r, r.Forever(), err, tc.ms, tc.policy)
		}
	}

	// Set outside wail: compact,delete with an hour.
	_, err := l.adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("3600000")},
		{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact,delete")},
	}, events)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CreateTopic(ctx, events, 1, intentlog.TopicOptions{Compact: true}); err != nil {
		t.Fatal(err)
	}
	// The controller applies an alter at once; the broker that answers
	// DescribeConfigs has it once its metadata caught up (under load, a
	// read just after the alter found the old values).
	var r TopicRetention
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r, err = l.TopicRetention(ctx, events)
		if err == nil && r.RetentionMS == 3600000 && !r.Forever() || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || r.RetentionMS != 3600000 || r.Forever() {
		t.Errorf("after an alter outside wail: %+v, %v; want retention.ms 3600000, not forever", r, err)
	}
}

// TestOffsetsRetention: the real broker names its offsets.retention.minutes.
func TestOffsetsRetention(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 30*time.Second)
	l := openLog(t, realBrokers(t), nil)
	d, err := l.OffsetsRetention(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d < time.Minute {
		t.Fatalf("offsets.retention.minutes: %s", d)
	}
	t.Logf("offsets.retention.minutes: %s", d)
}

// TestRetentionForever: time retention removes records only under a
// cleanup.policy with "delete" and a retention.ms of 0 or more; compaction
// only under one with "compact".
func TestRetentionForever(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ms                 int64
		policy             string
		forever, compacted bool
	}{
		{3600000, "delete", false, false},
		{0, "delete", false, false},
		{-1, "delete", true, false},
		{3600000, "compact", true, true},
		{3600000, "compact,delete", false, true},
		{3600000, "delete,compact", false, true},
		{-1, "compact,delete", true, true},
	} {
		r := TopicRetention{RetentionMS: tc.ms, CleanupPolicy: tc.policy}
		if r.Forever() != tc.forever || r.Compacted() != tc.compacted {
			t.Errorf("%+v: forever %t, compacted %t; want %t, %t", r, r.Forever(), r.Compacted(), tc.forever, tc.compacted)
		}
	}
}
