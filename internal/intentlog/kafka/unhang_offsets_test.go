package kafka

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestUnhangOffsetsOnlyTheGroups: on kfake (answers made up for one
// hanging transaction on the group's __consumer_offsets partition), the
// offsets' unhang aborts a hanging transaction of the group's own
// producers (transactional id "<group>.*") and leaves those of other
// groups or applications on the same partition alone, a group whose name
// starts with this one's ("g2" for "g") included: their offsets are not
// this group's to drop.
func TestUnhangOffsetsOnlyTheGroups(t *testing.T) {
	t.Parallel()
	const group, pid = "g", int64(77)
	for _, tc := range []struct {
		txnID string
		abort bool
	}{
		{"g.0", true},
		{"g.resolver.3", true},
		{"other.0", false},
		{"g2.0", false},
		{"g", false},
	} {
		t.Run(tc.txnID, func(t *testing.T) {
			t.Parallel()
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			ctx := testCtx(t, time.Minute)
			l := openLog(t, c.ListenAddrs(), func(o *Options) { o.HangingAfter = time.Second })
			const offsets = "__consumer_offsets"
			if _, err := l.adm.CreateTopic(ctx, 50, 1, nil, offsets); err != nil {
				t.Fatal(err)
			}
			part := offsetsPartition(group, 50)
			c.ControlKey(int16(kmsg.DescribeProducers), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				r := req.(*kmsg.DescribeProducersRequest)
				resp := r.ResponseKind().(*kmsg.DescribeProducersResponse)
				resp.Version = r.Version
				for _, rt := range r.Topics {
					st := kmsg.NewDescribeProducersResponseTopic()
					st.Topic = rt.Topic
					for _, p := range rt.Partitions {
						sp := kmsg.NewDescribeProducersResponseTopicPartition()
						sp.Partition = p
						if rt.Topic == offsets && p == part {
							ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
							ap.ProducerID, ap.ProducerEpoch, ap.LastSequence = pid, 0, 0
							ap.LastTimestamp = time.Now().Add(-time.Hour).UnixMilli()
							ap.CurrentTxnStartOffset = 5
							sp.ActiveProducers = append(sp.ActiveProducers, ap)
						}
						st.Partitions = append(st.Partitions, sp)
					}
					resp.Topics = append(resp.Topics, st)
				}
				return resp, nil, true
			})
			c.ControlKey(int16(kmsg.ListTransactions), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
				resp.Version = req.GetVersion()
				s := kmsg.NewListTransactionsResponseTransactionState()
				s.TransactionalID, s.ProducerID, s.TransactionState = tc.txnID, pid, "CompleteCommit"
				resp.TransactionStates = append(resp.TransactionStates, s)
				return resp, nil, true
			})
			c.ControlKey(int16(kmsg.DescribeTransactions), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				r := req.(*kmsg.DescribeTransactionsRequest)
				resp := r.ResponseKind().(*kmsg.DescribeTransactionsResponse)
				resp.Version = r.Version
				for _, id := range r.TransactionalIDs {
					s := kmsg.NewDescribeTransactionsResponseTransactionState()
					// Committed, its markers lost on the partition: hanging.
					s.TransactionalID, s.State, s.ProducerID, s.ProducerEpoch = id, "CompleteCommit", pid, 1
					resp.TransactionStates = append(resp.TransactionStates, s)
				}
				return resp, nil, true
			})
			var markers atomic.Int32
			c.ControlKey(int16(kmsg.WriteTxnMarkers), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				r := req.(*kmsg.WriteTxnMarkersRequest)
				resp := r.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
				resp.Version = r.Version
				for _, m := range r.Markers {
					markers.Add(1)
					rm := kmsg.NewWriteTxnMarkersResponseMarker()
					rm.ProducerID = m.ProducerID
					for _, mt := range m.Topics {
						rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
						rt.Topic = mt.Topic
						for _, p := range mt.Partitions {
							rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
							rp.Partition = p
							rt.Partitions = append(rt.Partitions, rp)
						}
						rm.Topics = append(rm.Topics, rt)
					}
					resp.Markers = append(resp.Markers, rm)
				}
				return resp, nil, true
			})
			aborted, err := l.unhangOffsets(ctx, group)
			if err != nil {
				t.Fatal(err)
			}
			if aborted != tc.abort || (markers.Load() > 0) != tc.abort {
				t.Fatalf("group %s, hanging transaction of %s: aborted %v (%d markers written), want %v", group, tc.txnID, aborted, markers.Load(), tc.abort)
			}
		})
	}
}
