package kafka

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// BenchmarkAppend appends 100-byte records to an 8-partition topic on the
// real broker, from 1, 16 and 256 goroutines, one record or 100 records per
// Append: the same shape as the embedded log's BenchmarkAppend. b.N counts
// Append calls. WAIL_BENCH_KAFKA_LINGER (a Go duration) sets Options.Linger.
func BenchmarkAppend(b *testing.B) {
	brokers := realBrokers(b)
	var linger time.Duration
	if s := os.Getenv("WAIL_BENCH_KAFKA_LINGER"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatal(err)
		}
		linger = d
	}
	j := newJanitor(b, brokers)
	l := openLog(b, brokers, func(o *Options) { o.Linger = linger })
	for _, perAppend := range []int{1, 100} {
		for _, conc := range []int{1, 16, 256} {
			if perAppend > 1 && conc > 16 {
				continue // as in the embedded benchmark
			}
			b.Run(fmt.Sprintf("records=%d/conc=%d", perAppend, conc), func(b *testing.B) {
				topic := topicName("bench")
				j.add(topic)
				if err := l.CreateTopic(context.Background(), topic, 8, intentlog.TopicOptions{}); err != nil {
					b.Fatal(err)
				}
				benchAppend(b, l, topic, conc, perAppend)
			})
		}
	}
}

func benchAppend(b *testing.B, l *Log, topic string, conc, perAppend int) {
	const valueSize = 100
	ctx := context.Background()
	keys := make([][]byte, 4096)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%d", i)
	}
	value := make([]byte, valueSize)
	var calls atomic.Int64
	b.SetBytes(int64(valueSize * perAppend))
	b.ResetTimer()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				n := calls.Add(1)
				if n > int64(b.N) {
					return
				}
				recs := make([]*intentlog.Record, perAppend)
				for i := range recs {
					recs[i] = &intentlog.Record{Key: keys[(int(n)*perAppend+i)%len(keys)], Value: value}
				}
				if err := l.Append(ctx, topic, recs); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	secs := b.Elapsed().Seconds()
	records := float64(b.N * perAppend)
	b.ReportMetric(records/secs, "records/s")
	b.ReportMetric(records*valueSize/1e6/secs, "MB/s")
}

// BenchmarkTransact runs the resolver's transactions on the real broker,
// back to back, as one shard does: 8 records of 100 bytes to an event
// topic and an input offset each. b.N counts transactions.
//
// Sending the offsets beside the records instead of after them does not
// work: on a cluster with transaction version 2 both add a partition to
// the transaction implicitly, and the coordinator refuses the second while
// the first is under way (CONCURRENT_TRANSACTIONS).
func BenchmarkTransact(b *testing.B) {
	brokers := realBrokers(b)
	j := newJanitor(b, brokers)
	l := openLog(b, brokers, nil)
	ctx := context.Background()
	in, out := topicName("bench-txn-in"), topicName("bench-txn-out")
	for _, topic := range []string{in, out} {
		j.add(topic)
		if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	m, a := join(b, l, "g-"+in, "bench", in)
	b.Cleanup(func() { _ = m.Close(context.Background()) })
	waitFor(b, "the partition assigned", func() bool { return a.count() == 1 })
	recs := make([]*intentlog.Record, 8)
	for i := range recs {
		recs[i] = &intentlog.Record{Key: fmt.Appendf(nil, "key-%d", i), Value: make([]byte, 100)}
	}
	var offset int64
	for b.Loop() {
		offset++
		if err := m.Transact(ctx, 0, map[string][]*intentlog.Record{out: recs}, map[string]map[int32]int64{in: {0: offset}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVisible is the least a record costs from its producer to a
// read_committed consumer on the real broker, one record at a time: plain
// (an idempotent produce, as Debezium's Kafka Connect producer), and in a
// transaction (Begin, the produce, EndTxn: what a resolver's transaction
// adds, before its TxnOffsetCommit). b.N counts records; each is awaited
// by the consumer before the next is sent. It bounds from below what the
// Kafka hops of a write's path cost at low rates (docs/benchmarks.md).
func BenchmarkVisible(b *testing.B) {
	brokers := realBrokers(b)
	j := newJanitor(b, brokers)
	ctx := context.Background()
	for _, txn := range []bool{false, true} {
		b.Run(fmt.Sprintf("transactional=%v", txn), func(b *testing.B) {
			topic := topicName("bench-visible")
			j.add(topic)
			l := openLog(b, brokers, nil)
			if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
				b.Fatal(err)
			}
			opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks())}
			if txn {
				opts = append(opts, kgo.TransactionalID(topic), kgo.ConcurrentTransactionsBackoff(2*time.Millisecond))
			}
			p, err := kgo.NewClient(opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			c, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
				topic: {0: kgo.NewOffset().AtStart()}}), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			var produce, commit time.Duration
			for b.Loop() {
				start := time.Now()
				if txn {
					if err := p.BeginTransaction(); err != nil {
						b.Fatal(err)
					}
				}
				if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: make([]byte, 100)}).FirstErr(); err != nil {
					b.Fatal(err)
				}
				produced := time.Now()
				produce += produced.Sub(start)
				if txn {
					if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
						b.Fatal(err)
					}
					commit += time.Since(produced)
				}
				for got := 0; got == 0; {
					fs := c.PollFetches(ctx)
					if err := fs.Err0(); err != nil {
						b.Fatal(err)
					}
					got = fs.NumRecords()
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(produce.Microseconds())/n, "produce-µs/op")
			b.ReportMetric(float64(commit.Microseconds())/n, "endtxn-µs/op")
		})
	}
}
