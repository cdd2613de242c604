package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestBoundsLeaderless: a partition whose ListOffsets keeps failing with a
// retriable error (no leader, an election that does not end) makes Bounds,
// StableEnd and OffsetForTime fail after Options.RequestTimeout of
// retries, with an error that names the partition, keeps the Kafka error
// and says what to do. They retried until the caller's context ended,
// which for a resolver starting a partition is never: its start stalled
// with nothing said.
func TestBoundsLeaderless(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int16
		// timeout is Options.RequestTimeout: kgo retries
		// NOT_LEADER_FOR_PARTITION itself, after a metadata refresh
		// (about 2 tries in 300ms on a quiet machine, fewer on a
		// loaded one): its case waits longer so the retries are seen.
		timeout time.Duration
	}{
		{"no leader", kerr.LeaderNotAvailable.Code, 300 * time.Millisecond},
		{"not leader", kerr.NotLeaderForPartition.Code, 1500 * time.Millisecond},
		{"offset not available", kerr.OffsetNotAvailable.Code, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			l := openLog(t, c.ListenAddrs(), func(o *Options) { o.RequestTimeout = tc.timeout })
			ctx := testCtx(t, time.Minute)
			topic := topicName("leaderless")
			if err := l.CreateTopic(ctx, topic, 2, intentlog.TopicOptions{}); err != nil {
				t.Fatal(err)
			}
			var lists atomic.Int32
			c.ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				lists.Add(1)
				r := req.(*kmsg.ListOffsetsRequest)
				resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
				resp.Version = r.Version
				for _, rt := range r.Topics {
					st := kmsg.NewListOffsetsResponseTopic()
					st.Topic = rt.Topic
					for _, rp := range rt.Partitions {
						sp := kmsg.NewListOffsetsResponseTopicPartition()
						sp.Partition = rp.Partition
						sp.ErrorCode = tc.code
						st.Partitions = append(st.Partitions, sp)
					}
					resp.Topics = append(resp.Topics, st)
				}
				return resp, nil, true
			})
			calls := map[string]func(context.Context) error{
				"bounds": func(ctx context.Context) error { _, _, err := l.Bounds(ctx, topic, 1); return err },
				"stable end": func(ctx context.Context) error {
					_, _, err := l.StableEnd(ctx, topic, 1)
					return err
				},
				"offset for time": func(ctx context.Context) error {
					_, err := l.OffsetForTime(ctx, topic, 1, time.Now())
					return err
				},
			}
			for name, call := range calls {
				// The caller's context would wait 10 s: the error comes
				// well before.
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				began := time.Now()
				err := call(cctx)
				took := time.Since(began)
				cancel()
				if err == nil || errors.Is(err, context.DeadlineExceeded) || took > 5*time.Second {
					t.Fatalf("%s of a leaderless partition: %v after %s; want an error after the request timeout", name, err, took)
				}
				t.Logf("%s: %v", name, err)
				msg := err.Error()
				if !errors.Is(err, ErrPartitionUnavailable) || !errors.Is(err, kerr.ErrorForCode(tc.code)) ||
					!strings.Contains(msg, topic+"/1") || !strings.Contains(msg, "kafka-topics.sh --describe") {
					t.Errorf("%s: %v; want ErrPartitionUnavailable with the Kafka error, naming %s/1 and what to check", name, err, topic)
				}
			}
			if lists.Load() < 6 {
				t.Errorf("%d ListOffsets: want retries before the error", lists.Load())
			}
		})
	}
}

// TestMapErrAccessDenied: Kafka's authorization and authentication errors
// map to intentlog.ErrAccessDenied (the proxy answers failed_precondition
// saying to grant the ACL, instead of unavailable as if a retry helped),
// keeping the Kafka error.
func TestMapErrAccessDenied(t *testing.T) {
	for _, kerrr := range []error{kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed,
		kerr.ClusterAuthorizationFailed, kerr.TransactionalIDAuthorizationFailed, kerr.SaslAuthenticationFailed} {
		err := mapErr(fmt.Errorf("produce: %w", kerrr))
		if !errors.Is(err, intentlog.ErrAccessDenied) || !errors.Is(err, kerrr) {
			t.Errorf("mapErr(%v) = %v; want ErrAccessDenied with the Kafka error", kerrr, err)
		}
	}
	if err := mapErr(kerr.NotEnoughReplicas); errors.Is(err, intentlog.ErrAccessDenied) {
		t.Errorf("mapErr(NOT_ENOUGH_REPLICAS) = %v", err)
	}
}
