package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// recordSize is the size of r encoded as the only record of a Kafka record
// batch (timestamp and offset deltas 0): what RecordLimit counts.
func recordSize(r *intentlog.Record) int {
	v := func(n int) int { return len(binary.AppendVarint(nil, int64(n))) }
	body := 1 + 1 + 1 + v(len(r.Key)) + len(r.Key) + v(len(r.Value)) + len(r.Value) + v(len(r.Headers))
	for _, h := range r.Headers {
		body += v(len(h.Key)) + len(h.Key) + v(len(h.Value)) + len(h.Value)
	}
	return v(body) + body
}

// TestRecordLimit: the limit is the smaller of the topic's
// max.message.bytes and the producer's, less the record batch around the
// record, and it is safe and tight: a record of exactly that size is
// written; one byte more is refused by the broker, and a few bytes more by
// the producer (which counts the batch's length prefix as a 1 to 4 byte
// uvarint on recent protocol versions; RecordLimit counts 4).
func TestRecordLimit(t *testing.T) {
	brokers := realBrokers(t)
	tests := []struct {
		name     string
		topicMax string
		producer int32
		source   string
		over     int // the smallest excess refused
	}{
		{"topic", "1048576", 4 << 20, "max.message.bytes=1048576 of Kafka topic", 1},
		{"producer", "8388608", 1 << 20, "producer's limit of 1048576 bytes", 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := openLog(t, brokers, func(o *Options) {
				o.MaxMessageBytes = tc.producer
				o.TopicConfigs = map[string]string{"max.message.bytes": tc.topicMax}
			})
			j := newJanitor(t, brokers)
			log := tracked{l, j}
			ctx := testCtx(t, time.Minute)
			topic := topicName("limit")
			if err := log.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
				t.Fatal(err)
			}
			limit, source, err := l.RecordLimit(ctx, topic)
			if err != nil || !strings.Contains(source, tc.source) {
				t.Fatalf("RecordLimit = %d, %q, %v; want the source to name %q", limit, source, err, tc.source)
			}
			rec := func(extra int) *intentlog.Record {
				r := &intentlog.Record{Key: []byte("k"), Headers: []intentlog.Header{{Key: "h", Value: []byte("v")}}}
				r.Value = make([]byte, limit-recordSize(r)) // roughly; the varint of the length grows
				for recordSize(r) > limit {
					r.Value = r.Value[:len(r.Value)-1]
				}
				for recordSize(r) < limit+extra {
					r.Value = append(r.Value, 0)
				}
				return r
			}
			if r := rec(0); recordSize(r) != limit {
				t.Fatalf("cannot build a record of exactly %d bytes", limit)
			} else if err := l.Append(ctx, topic, []*intentlog.Record{r}); err != nil {
				t.Fatalf("a record of exactly the limit (%d bytes): %v", limit, err)
			}
			if err := l.Append(ctx, topic, []*intentlog.Record{rec(tc.over)}); !errors.Is(err, intentlog.ErrTooLarge) {
				t.Fatalf("a record %d bytes over the limit: %v, want ErrTooLarge", tc.over, err)
			}
			t.Logf("%s: %d bytes (%s)", tc.name, limit, source)
		})
	}
}

// TestRecordLimitCached: once read, a topic's limit is served from memory,
// so a write never waits on brokers that went away.
func TestRecordLimitCached(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	l := openLog(t, c.ListenAddrs(), func(o *Options) {
		o.TopicConfigs = map[string]string{"max.message.bytes": "100000"}
	})
	ctx := testCtx(t, 30*time.Second)
	if err := l.CreateTopic(ctx, "t", 1, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	want, _, err := l.RecordLimit(ctx, "t")
	if err != nil || want != 100000-brokerBatchOverhead {
		t.Fatalf("RecordLimit = %d, %v; want %d", want, err, 100000-brokerBatchOverhead)
	}
	c.Close()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if got, _, err := l.RecordLimit(short, "t"); got != want || err != nil {
		t.Fatalf("with the brokers gone: %d, %v; want the cached %d", got, err, want)
	}
	// A topic never read falls back on the producer's limit.
	if got, source, err := l.RecordLimit(short, "u"); err != nil || got != int(defaultMaxMessageBytes)-producerBatchOverhead || !strings.Contains(source, "could not be read") {
		t.Fatalf("a topic never read with the brokers gone: %d, %q, %v", got, source, err)
	}
}

// TestRecordLimitFailedReadNotRepeated: after a read of a topic's
// max.message.bytes failed (a cluster that refuses DescribeConfigs), the
// calls within failedRetry fall back on the producer's limit at once,
// without asking the cluster again: a request of many mutations checks
// each one, and waited up to two seconds per mutation. A read its caller
// cut short does not count as failed.
func TestRecordLimitFailedReadNotRepeated(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l := openLog(t, c.ListenAddrs(), nil)
	ctx := testCtx(t, 30*time.Second)
	var describes atomic.Int32
	c.ControlKey(int16(kmsg.DescribeConfigs), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		describes.Add(1)
		resp := req.(*kmsg.DescribeConfigsRequest).ResponseKind().(*kmsg.DescribeConfigsResponse)
		for _, r := range req.(*kmsg.DescribeConfigsRequest).Resources {
			rr := kmsg.NewDescribeConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = r.ResourceType, r.ResourceName, kerr.TopicAuthorizationFailed.Code
			resp.Resources = append(resp.Resources, rr)
		}
		return resp, nil, true
	})
	want := int(defaultMaxMessageBytes) - producerBatchOverhead
	for i := range 5 {
		got, source, err := l.RecordLimit(ctx, "u")
		if err != nil || got != want || !strings.Contains(source, "could not be read") {
			t.Fatalf("call %d: %d, %q, %v; want the producer's limit %d", i, got, source, err, want)
		}
	}
	if n := describes.Load(); n != 1 {
		t.Fatalf("%d DescribeConfigs for 5 calls within %s of a failed read; want 1", n, failedRetry)
	}
	// A read cut by its caller's end is not remembered as failed: the
	// next call asks the cluster.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	_, _, _ = l.RecordLimit(gone, "v")
	before := describes.Load()
	if _, _, err := l.RecordLimit(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if n := describes.Load(); n != before+1 {
		t.Fatalf("after a read cut by its caller, the next call made %d DescribeConfigs; want 1", n-before)
	}
}
