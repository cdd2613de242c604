package kafka

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestStartAtEpochUnknownToBroker: a reader started at a committed offset
// and its leader epoch, which the partition's leader has no record of:
// OffsetForLeaderEpoch answers UNDEFINED_EPOCH_OFFSET (end offset and
// epoch -1: its leader-epoch history lost, the epoch newer than any it
// knows). The log below the offset cannot be validated. franz-go keeps
// the offset then (with no reset offset, or nothing consumed yet): the
// reader read on from it silently, as if validated. It now fails its
// first Next with a *Truncation whose From is -1 (where the log diverges
// is not known), every Next after it too, as the Java consumer without a
// reset policy reports a LogTruncation without a divergent offset.
func TestStartAtEpochUnknownToBroker(t *testing.T) {
	t.Parallel()
	c, l, ctx, topic := oneBrokerRecords(t, "epochunknown", 8)
	var asked atomic.Int32
	epochEnds(c, -1, -1, &asked) // UNDEFINED_EPOCH_OFFSET
	rd, err := l.NewEpochReader(topic, 0, intentlog.EpochOffset{Offset: 5, Epoch: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for range 2 {
		got, err := rd.Next(ctx)
		var tr *intentlog.Truncation
		if !errors.As(err, &tr) || !errors.Is(err, intentlog.ErrTruncated) || !errors.Is(err, intentlog.ErrEpochUnknown) {
			t.Fatalf("Next at offset 5 of epoch 3, which the broker does not know = %d records (from %v), %v (epoch asked %d times); "+
				"want a truncation, the epoch unknown", len(got), got, err, asked.Load())
		}
		if tr.From != -1 || tr.Read != 5 || rd.Position() != 5 {
			t.Fatalf("truncation %+v at position %d; want from -1 (not known), read 5, the position kept", tr, rd.Position())
		}
		if !strings.Contains(err.Error(), "leader epoch 3") {
			t.Fatalf("%v: does not name the epoch", err)
		}
	}
	// Without an epoch nothing is validated: it reads on.
	rd2, err := l.NewEpochReader(topic, 0, intentlog.EpochOffset{Offset: 5, Epoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer rd2.Close()
	if got, err := rd2.Next(ctx); err != nil || len(got) == 0 || got[0].Offset != 5 {
		t.Fatalf("Next of a reader started without an epoch = %v, %v; want the records from 5", got, err)
	}
}

// TestStaleBrokerUndefinedNotBelieved: the broker asked about a reader's
// committed epoch is not the partition's leader any more but still thinks
// it is (cut off from the cluster, its metadata stale), and knows no epoch
// as new as the committed one: asked without a current leader epoch it
// answers UNDEFINED_EPOCH_OFFSET, which the reader took for a lost
// history and failed for good (a group member ended, the resolver read
// the whole log again). Asked with the leader epoch of fresh metadata, as
// the Java consumer asks, such a broker answers UNKNOWN_LEADER_EPOCH, and
// only a leader at that epoch can answer UNDEFINED: the reader validates
// at the leader and reads on.
func TestStaleBrokerUndefinedNotBelieved(t *testing.T) {
	t.Parallel()
	c, l, ctx, topic := oneBrokerRecords(t, "stalebroker", 8)
	var stale atomic.Int32 // answers of the stale broker
	c.ControlKey(int16(kmsg.OffsetForLeaderEpoch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.OffsetForLeaderEpochRequest)
		resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
		resp.Version = r.Version
		for _, rt := range r.Topics {
			st := kmsg.NewOffsetForLeaderEpochResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				if rp.CurrentLeaderEpoch >= 0 && stale.Load() > 0 {
					return nil, nil, false // the leader, once asked with an epoch the stale broker has not seen
				}
				stale.Add(1)
				sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
				sp.Partition = rp.Partition
				if rp.CurrentLeaderEpoch >= 0 {
					sp.ErrorCode = kerr.UnknownLeaderEpoch.Code // newer than the stale broker's
				} else {
					sp.LeaderEpoch, sp.EndOffset = -1, -1 // UNDEFINED_EPOCH_OFFSET
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	rd, err := l.NewEpochReader(topic, 0, intentlog.EpochOffset{Offset: 5, Epoch: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	got, err := rd.Next(ctx)
	if err != nil || len(got) == 0 || got[0].Offset != 5 {
		t.Fatalf("Next at offset 5 of epoch 0, asked first of a stale broker = %d records, %v; want the records from 5", len(got), err)
	}
}

// TestEpochCheckOutlastsBrokerErrors: the check of a reader's committed
// epoch meets a retriable error first (the leader moving, the broker
// behind the metadata, no leader yet) and UNDEFINED_EPOCH_OFFSET after.
// Such errors come with what makes a history lost (an unclean leader
// election, a topic deleted and created again): the check left the
// validation to the client at the first error, and franz-go lets
// UNDEFINED pass, so the reader read on from the committed offset,
// silently. It asks again until it has an answer, for at most the log's
// RequestTimeout; then the reader's start fails (the partition is
// unavailable) and is tried again, never read on unvalidated.
func TestEpochCheckOutlastsBrokerErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		code   int16
		errors int32 // answers with code before the UNDEFINED ones; -1: every answer
	}{
		{"not leader", kerr.NotLeaderForPartition.Code, 1},
		{"leader epoch fenced", kerr.FencedLeaderEpoch.Code, 2},
		{"leader epoch unknown", kerr.UnknownLeaderEpoch.Code, 3},
		{"never an answer", kerr.NotLeaderForPartition.Code, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, l, ctx, topic := oneBrokerRecords(t, "epocherrors", 8)
			l.opts.RequestTimeout = 2 * time.Second
			var asked, failing atomic.Int32
			failing.Store(tc.errors)
			epochAnswers(c, &asked, func(_ kmsg.OffsetForLeaderEpochRequestTopicPartition, sp *kmsg.OffsetForLeaderEpochResponseTopicPartition) {
				if f := failing.Load(); f < 0 || asked.Load() <= f {
					sp.ErrorCode = tc.code
				} else {
					sp.LeaderEpoch, sp.EndOffset = -1, -1 // UNDEFINED_EPOCH_OFFSET
				}
			})
			rd, err := l.NewEpochReader(topic, 0, intentlog.EpochOffset{Offset: 5, Epoch: 0})
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			var got []intentlog.Record
			if tc.errors < 0 {
				// It waits, as a fetch from a partition without a leader
				// does, past the request timeout, until its context ends.
				short, cancel := context.WithTimeout(ctx, 2*l.opts.RequestTimeout)
				got, err = rd.Next(short)
				cancel()
				if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, intentlog.ErrTruncated) {
					t.Fatalf("Next while every epoch check fails = %d records, %v (asked %d times); want it to wait until "+
						"its context ends, not a truncation", len(got), err, asked.Load())
				}
				failing.Store(0) // the broker answers from now on: UNDEFINED
			}
			got, err = rd.Next(ctx)
			if !errors.Is(err, intentlog.ErrEpochUnknown) {
				t.Fatalf("Next at offset 5 of epoch 0, %s before UNDEFINED_EPOCH_OFFSET = %d records (from %v), %v "+
					"(asked %d times); want the epoch unknown", tc.name, len(got), got, err, asked.Load())
			}
		})
	}
}
