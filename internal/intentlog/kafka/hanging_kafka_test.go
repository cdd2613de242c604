package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/wail-cdc/wail/internal/intentlog"
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

	// A transactional producer that never adds the partition to a
	// transaction; the broker takes its records only while it does not
	// verify them with the coordinator (KIP-890), which this test turns
	// off for a moment.
	txnID := topicName("hang-txn")
	// Kafka 3.9's protocol: Produce v11, before KIP-890 part 2.
	txn, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(txnID), kgo.MaxVersions(kversion.V3_9_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	pid, epoch, err := txn.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	setVerification(ctx, t, l.adm, false)
	err = produceRawTxn(ctx, txn, txnID, topic, pid, epoch, "orphan-1", "orphan-2")
	setVerification(ctx, t, l.adm, true)
	if err != nil {
		t.Fatal(err)
	}
	appendKey(ctx, t, l, topic, "after") // committed, but behind the open transaction

	if h, err := l.Unhang(ctx, topic, 0, 0, 4); err != nil || h != nil {
		t.Fatalf("Unhang right away = %+v, %v; want nil (not silent for HangingAfter yet)", h, err)
	}
	var h *intentlog.Hanging
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

// setVerification turns the brokers' transaction verification on or off
// (a dynamic, cluster-wide setting; on is Kafka's default).
func setVerification(ctx context.Context, t *testing.T, adm *kadm.Client, on bool) {
	t.Helper()
	c := kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "transaction.partition.verification.enable"}
	if !on {
		c.Op, c.Value = kadm.SetConfig, kadm.StringPtr("false")
	}
	if _, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{c}); err != nil {
		t.Fatalf("turn transaction verification %v: %v", on, err)
	}
}

// produceRawTxn appends one transactional batch of keys for pid/epoch to
// partition 0 with Produce v11 (the client's maximum: no implicit add to a
// transaction),
// retrying while the broker still verifies (the setting takes a moment).
func produceRawTxn(ctx context.Context, cl *kgo.Client, txnID, topic string, pid int64, epoch int16, keys ...string) error {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis, req.TransactionID = -1, 10000, &txnID
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = txnBatch(pid, epoch, keys)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
		}
		if err == nil || !(errors.Is(err, kerr.InvalidTxnState) || errors.Is(err, kerr.TransactionAbortable)) || time.Now().After(deadline) {
			return err
		}
	}
}

// txnBatch encodes a transactional record batch (magic 2) of keys.
func txnBatch(pid int64, epoch int16, keys []string) []byte {
	now := time.Now().UnixMilli()
	var recs []byte
	for i, k := range keys {
		r := kmsg.Record{OffsetDelta: int32(i), Key: []byte(k), Value: []byte("v")}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // the bytes after a 1-byte zero length
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: 0x10, // transactional
		LastOffsetDelta: int32(len(keys) - 1), FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: pid, ProducerEpoch: epoch, NumRecords: int32(len(keys)), Records: recs,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}
