package kafka

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestFencedCommitCoordinatorAnswers: on kfake, a fenced commit whose
// staged offset the coordinator refuses, or whose end it refuses, fails
// with what it answered and records no offset as committed; an end
// refused otherwise than by a fence (or a commit answered
// INVALID_TXN_STATE: only an abort with nothing open may be) leaves the
// committer unsure, so that its next commit recovers first; an end answered
// INVALID_PRODUCER_EPOCH is a fence.
func TestFencedCommitCoordinatorAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		stage, end *kerr.Error // answered once to TxnOffsetCommit, EndTxn
		wantErr    error
		wantUnsure bool
	}{
		{name: "stage refused", stage: kerr.UnknownServerError, wantErr: kerr.UnknownServerError},
		{name: "stage refused, abort refused", stage: kerr.UnknownServerError, end: kerr.UnknownServerError,
			wantErr: kerr.UnknownServerError, wantUnsure: true},
		{name: "end refused", end: kerr.UnknownServerError, wantErr: kerr.UnknownServerError, wantUnsure: true},
		{name: "commit answered invalid state", end: kerr.InvalidTxnState, wantErr: kerr.InvalidTxnState, wantUnsure: true},
		{name: "end fenced", end: kerr.InvalidProducerEpoch, wantErr: intentlog.ErrFenced},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			ctx := testCtx(t, time.Minute)
			l := openLog(t, c.ListenAddrs(), nil)
			topic := topicName("fence-answers")
			if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
				t.Fatal(err)
			}
			fc, err := l.FencePartition(ctx, "wail.test."+topic, topic, 0)
			if err != nil {
				t.Fatal(err)
			}
			f := fc.(*fencedCommitter)
			if err := f.Commit(ctx, 3); err != nil {
				t.Fatal(err)
			}
			if tc.stage != nil {
				c.ControlKey(int16(kmsg.TxnOffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
					r := req.(*kmsg.TxnOffsetCommitRequest)
					resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
					resp.Version = r.Version
					for _, rt := range r.Topics {
						st := kmsg.NewTxnOffsetCommitResponseTopic()
						st.Topic = rt.Topic
						for _, rp := range rt.Partitions {
							sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
							sp.Partition, sp.ErrorCode = rp.Partition, tc.stage.Code
							st.Partitions = append(st.Partitions, sp)
						}
						resp.Topics = append(resp.Topics, st)
					}
					return resp, nil, true
				})
			}
			if tc.end != nil {
				c.ControlKey(int16(kmsg.EndTxn), func(req kmsg.Request) (kmsg.Response, error, bool) {
					resp := req.ResponseKind().(*kmsg.EndTxnResponse)
					resp.Version, resp.ErrorCode = req.GetVersion(), tc.end.Code
					resp.ProducerID, resp.ProducerEpoch = -1, -1
					return resp, nil, true
				})
			}
			err = f.Commit(ctx, 5)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("commit: %v, want %v", err, tc.wantErr)
			}
			if f.unsure != tc.wantUnsure {
				t.Fatalf("unsure %v after %v, want %v", f.unsure, err, tc.wantUnsure)
			}
			if f.last.Offset != 3 {
				t.Fatalf("a failed commit of 5 recorded %v as committed, want 3", f.last)
			}
		})
	}
}
