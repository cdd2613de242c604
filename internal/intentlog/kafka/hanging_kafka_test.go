package kafka

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/kafka/kafkatest"
)

// TestUnhangKafka makes a real hanging transaction on a real broker
// (transactional records whose coordinator never heard of the partition:
// what a broker that lost a transaction's markers leaves behind) and
// checks that Unhang finds it, sorts its records from the committed ones
// around it, and that its Abort lets read_committed readers pass.
func TestUnhangKafka(t *testing.T) {
	brokers := realBrokers(t)
	ctx := testCtx(t, 2*time.Minute)
	l := openLog(t, brokers, func(o *Options) { o.HangingAfter = time.Second })
	topic := topicName("hang")
	newJanitor(t, brokers).add(topic)
	if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{Compact: true}); err != nil {
		t.Fatal(err)
	}
	appendKey(ctx, t, l, topic, "before")

	// A transaction whose coordinator never heard of the partition.
	if _, err := kafkatest.Hang(ctx, brokers, topicName("hang-txn"), topic, 0, "orphan-1", "orphan-2"); err != nil {
		t.Fatal(err)
	}
	appendKey(ctx, t, l, topic, "after") // committed, but behind the open transaction
	if stable, end, err := l.StableEnd(ctx, topic, 0); err != nil || stable != 1 || end != 4 {
		t.Fatalf("StableEnd with the transaction open = %d, %d, %v; want 1 (its first record), 4", stable, end, err)
	}

	if h, err := l.Unhang(ctx, topic, 0, 0, 4); err != nil || h != nil {
		t.Fatalf("Unhang right away = %+v, %v; want nil (not silent for HangingAfter yet)", h, err)
	}
	var (
		h   *intentlog.Hanging
		err error
	)
	for deadline := time.Now().Add(30 * time.Second); h == nil; time.Sleep(500 * time.Millisecond) {
		// from 3: past the hang, which holds that reader all the same
		if h, err = l.Unhang(ctx, topic, 0, 3, 4); err != nil || time.Now().After(deadline) {
			t.Fatalf("Unhang = %+v, %v", h, err)
		}
	}
	if got := keysAt(h.Records); got != "orphan-1@1 orphan-2@2" {
		t.Errorf("hanging records = %s, want orphan-1@1 orphan-2@2", got)
	}
	if got := keysAt(h.Committed); got != "after@3" { // read from the hang's first record
		t.Errorf("committed records = %s, want after@3", got)
	}
	if err := h.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	// The stable offset moved: a read_committed reader gets "after" and
	// none of the aborted records.
	rd, err := l.NewReader(topic, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var keys []string
	for rd.Position() < 5 { // before, 2 orphans, their abort marker, after
		recs, err := rd.Next(ctx)
		if err != nil {
			t.Fatalf("read after the abort: %v (keys so far %v)", err, keys)
		}
		for _, r := range recs {
			keys = append(keys, string(r.Key))
		}
	}
	if len(keys) != 2 || keys[0] != "before" || keys[1] != "after" {
		t.Fatalf("read_committed keys = %v, want [before after]", keys)
	}
	if h, err := l.Unhang(ctx, topic, 0, 0, 5); err != nil || h != nil {
		t.Fatalf("Unhang after the abort = %+v, %v; want nil", h, err)
	}
	if stable, end, err := l.StableEnd(ctx, topic, 0); err != nil || stable != 5 || end != 5 {
		t.Fatalf("StableEnd after the abort = %d, %d, %v; want 5, 5", stable, end, err)
	}
}

// keysAt prints records as key@offset.
func keysAt(recs []intentlog.Record) string {
	var parts []string
	for _, r := range recs {
		parts = append(parts, fmt.Sprintf("%s@%d", r.Key, r.Offset))
	}
	return strings.Join(parts, " ")
}

func appendKey(ctx context.Context, t *testing.T, l *Log, topic, key string) {
	t.Helper()
	if err := l.Append(ctx, topic, []*intentlog.Record{{Key: []byte(key), Value: []byte("v")}}); err != nil {
		t.Fatal(err)
	}
}
