package intentlog

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Vectors from Kafka's own tests (org.apache.kafka.common.utils.UtilsTest
// testMurmur2) so that keys land on the same partition as with Kafka.
func TestMurmur2MatchesKafka(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	}
	for _, c := range cases {
		if got := int32(Murmur2([]byte(c.in))); got != c.want {
			t.Errorf("Murmur2(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestPartitionInRange(t *testing.T) {
	t.Parallel()
	for _, n := range []int32{1, 3, 8, 64} {
		for i := 0; i < 1000; i++ {
			key := []byte{byte(i), byte(i >> 8), 'k'}
			if p := Partition(key, n); p < 0 || p >= n {
				t.Fatalf("Partition(%v, %d) = %d", key, n, p)
			}
		}
	}
}

// TestPartitionMatchesKafka: a key goes to the partition Kafka's default
// partitioner picks (franz-go's, for keyed records: murmur2 made positive,
// modulo the partitions), so that consumers and tools that partition
// by key as Kafka does (co-partitioned topics, a producer of its own)
// agree with wail; about half of the keys hash with the high bit set,
// which toPositive clears.
func TestPartitionMatchesKafka(t *testing.T) {
	t.Parallel()
	kafka := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		key := make([]byte, 1+rng.IntN(40))
		for j := range key {
			key[j] = byte(rng.Uint32())
		}
		n := int32(1 + i%1024)
		if got, want := Partition(key, n), int32(kafka.Partition(&kgo.Record{Key: key}, int(n))); got != want {
			t.Fatalf("Partition(%x, %d) = %d, Kafka's partitioner says %d", key, n, got, want)
		}
	}
}

// TestFramedSize: exactly the size of the record in Kafka's format with
// its timestamp and offset deltas at their widest (franz-go's encoding is
// the oracle).
func TestFramedSize(t *testing.T) {
	t.Parallel()
	kafka := func(key, value []byte, headers []kmsg.Header) int {
		r := kmsg.Record{TimestampDelta64: math.MinInt64, OffsetDelta: math.MinInt32, Key: key, Value: value, Headers: headers}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // what follows the length (1 byte when 0)
		return len(r.AppendTo(nil))
	}
	big := make([]byte, 1<<20)
	for _, c := range []struct {
		key, value []byte
		headers    []kmsg.Header
	}{
		{key: []byte("k"), value: []byte("v")},
		{key: []byte{}, value: nil},
		{key: big[:63], value: big[:64]},
		{key: big[:4096], value: big, headers: []kmsg.Header{{Key: "wail.version", Value: []byte("12345678901234567890")}, {Key: "wail.op", Value: []byte("UPSERT")}}},
		{key: big[:8191], value: big[:8192], headers: []kmsg.Header{{Key: string(big[:300]), Value: big[:20000]}}},
	} {
		var hs [][2]int
		for _, h := range c.headers {
			hs = append(hs, [2]int{len(h.Key), len(h.Value)})
		}
		want := kafka(c.key, c.value, c.headers) // a nil value's length is -1: as long as 0
		if got := FramedSize(len(c.key), len(c.value), hs...); got != want {
			t.Errorf("FramedSize(key %d, value %d, headers %v) = %d, want %d", len(c.key), len(c.value), hs, got, want)
		}
	}
}

// TestVarintLen: VarintLen is the length binary.AppendVarint writes, at
// every length boundary of the zigzag encoding and in between.
func TestVarintLen(t *testing.T) {
	var ns []int64
	for shift := range 64 {
		b := int64(1) << shift
		ns = append(ns, b-1, b, b+1, -b-1, -b, -b+1)
	}
	ns = append(ns, 0, math.MaxInt64, math.MinInt64)
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		ns = append(ns, int64(r.Uint64()))
	}
	for _, n := range ns {
		if got, want := VarintLen(n), len(binary.AppendVarint(nil, n)); got != want {
			t.Fatalf("VarintLen(%d) = %d, want %d", n, got, want)
		}
	}
}
