// Package kafkatest makes, on a real broker, a Kafka state that tests of
// wail need and that no client makes through the API: a hanging
// transaction, what a broker that lost a transaction's markers leaves
// behind (DESIGN.md, "Hanging transactions").
package kafkatest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// Hang appends records of keys (value "v") to topic/partition in a
// transaction whose coordinator never hears of the partition, so no
// marker will ever end it there: read_committed readers stop at its first
// record until someone aborts it. The transactional id is txnID; Hang
// returns the transaction's producer id. The broker takes such records
// only while it does not verify them with the coordinator (KIP-890):
// Hang turns verification off, cluster-wide, for the moment it appends.
func Hang(ctx context.Context, brokers []string, txnID, topic string, partition int32, keys ...string) (int64, error) {
	// Kafka 3.9's protocol: Produce v11, before KIP-890 part 2 (no
	// implicit add to a transaction).
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(txnID), kgo.MaxVersions(kversion.V3_9_0()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		return 0, fmt.Errorf("producer id of %s: %w", txnID, err)
	}
	adm := kadm.NewClient(cl)
	if err := SetVerification(ctx, adm, false); err != nil {
		return 0, err
	}
	err = produceRawTxn(ctx, cl, txnID, topic, partition, pid, epoch, keys)
	if verr := SetVerification(ctx, adm, true); err == nil {
		err = verr
	}
	return pid, err
}

// SetVerification turns the brokers' transaction verification on or off
// (a dynamic, cluster-wide setting; on is Kafka's default).
func SetVerification(ctx context.Context, adm *kadm.Client, on bool) error {
	c := kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "transaction.partition.verification.enable"}
	if !on {
		c.Op, c.Value = kadm.SetConfig, kadm.StringPtr("false")
	}
	if _, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{c}); err != nil {
		return fmt.Errorf("turn transaction verification %v: %w", on, err)
	}
	return nil
}

// produceRawTxn appends one transactional batch of keys for pid/epoch
// with Produce v11, retrying while the broker still verifies (the
// setting takes a moment).
func produceRawTxn(ctx context.Context, cl *kgo.Client, txnID, topic string, partition int32, pid int64, epoch int16, keys []string) error {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis, req.TransactionID = -1, 10000, &txnID
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = txnBatch(pid, epoch, keys)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
		}
		if err == nil || !(errors.Is(err, kerr.InvalidTxnState) || errors.Is(err, kerr.TransactionAbortable)) || time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("append a hanging transaction to %s/%d: %w", topic, partition, err)
			}
			return nil
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
