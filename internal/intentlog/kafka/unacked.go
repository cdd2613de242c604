package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The producer retries a partition's retriable errors (NOT_ENOUGH_REPLICAS
// while fewer replicas than min.insync.replicas are in sync, no leader)
// until the records' context ends, then fails them with the context's
// error alone: what the brokers answered is not kept. An Append cut off so
// looks in the cluster's metadata for a reason (whyUnacked), so that its
// error says what to fix.

// unackedTTL: a topic's metadata is asked at most this often for why its
// records were not acknowledged (appends failing at a high rate share it).
const unackedTTL = 5 * time.Second

// unackedWait bounds the asking.
const unackedWait = time.Second

type unackedDiag struct {
	at      time.Time
	err     error
	running bool
}

// whyUnacked returns why records of topic's partitions parts may not be
// acknowledged (a partition without a leader: LEADER_NOT_AVAILABLE; fewer
// in-sync replicas than the topic's min.insync.replicas, capped at its
// replica count as Kafka caps it: NOT_ENOUGH_REPLICAS), as the metadata
// last read told, or nil when it showed nothing (or was not read yet). It
// never waits: the caller was cut off by its deadline, and what it does
// next (the proxy's store write of an independent table) has only the
// rest of its time. A topic's metadata is read in the background, at most
// once per unackedTTL (appends failing at a high rate share it), so an
// outage's first cut-off append may go without a reason and later ones
// get it.
func (l *Log) whyUnacked(topic string, parts []int32) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.unacked == nil {
		l.unacked = map[string]*unackedDiag{}
	}
	d := l.unacked[topic]
	if d == nil {
		d = &unackedDiag{}
		l.unacked[topic] = d
	}
	if !d.running && time.Since(d.at) >= unackedTTL && !l.closed {
		d.running = true
		parts = slices.Clone(parts)
		l.diags.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), unackedWait)
			defer cancel()
			diagnose := l.diagnose
			if l.diagnoseHook != nil {
				diagnose = l.diagnoseHook
			}
			err := diagnose(ctx, topic, parts)
			l.mu.Lock()
			d.at, d.err, d.running = time.Now(), err, false
			l.mu.Unlock()
		})
	}
	return d.err
}

func (l *Log) diagnose(ctx context.Context, topic string, parts []int32) error {
	tds, err := l.adm.ListTopics(ctx, topic)
	if err != nil {
		return nil
	}
	td, ok := tds[topic]
	if !ok || td.Err != nil {
		return nil
	}
	return unackedReason(td, parts, func() (int, error) { return l.minInsyncReplicas(ctx, topic) })
}

// unackedReason is whyUnacked's verdict on a topic's metadata; minISR
// reads the topic's min.insync.replicas, asked only when a partition of
// parts has replicas out of sync.
func unackedReason(td kadm.TopicDetail, parts []int32, minISR func() (int, error)) error {
	need := -1 // the topic's min.insync.replicas, once read
	for _, p := range parts {
		pd, ok := td.Partitions[p]
		switch {
		case !ok:
			continue
		case pd.Leader < 0:
			return fmt.Errorf("partition %d of %s has no leader (%w)", p, td.Topic, kerr.LeaderNotAvailable)
		case len(pd.ISR) >= len(pd.Replicas):
			continue
		}
		if need < 0 {
			n, err := minISR()
			if err != nil {
				return nil
			}
			need = n
		}
		// Kafka caps min.insync.replicas at the replica count.
		if len(pd.ISR) < min(need, len(pd.Replicas)) {
			return fmt.Errorf("partition %d of %s has %d in-sync replica(s) of %d, fewer than min.insync.replicas=%d: "+
				"the brokers refuse acks=all writes until its replicas catch up (%w)",
				p, td.Topic, len(pd.ISR), len(pd.Replicas), need, kerr.NotEnoughReplicas)
		}
	}
	return nil
}

func (l *Log) minInsyncReplicas(ctx context.Context, topic string) (int, error) {
	rcs, err := l.adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return 0, err
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return 0, err
	}
	for _, c := range rc.Configs {
		if c.Key == "min.insync.replicas" && c.Value != nil {
			return strconv.Atoi(*c.Value)
		}
	}
	return 0, errors.New("no min.insync.replicas")
}

// partitionsOf lists the partitions of krs.
func partitionsOf(krs []*kgo.Record) []int32 {
	var ps []int32
	for _, kr := range krs {
		if !slices.Contains(ps, kr.Partition) {
			ps = append(ps, kr.Partition)
		}
	}
	return ps
}

// cutOff is the error of an Append of krs to topic cut off by its context
// (ctxErr): with why, when the metadata tells. A cancelled caller (one
// shutting down) is not kept waiting for it.
func (l *Log) cutOff(ctxErr error, topic string, krs []*kgo.Record) error {
	if !errors.Is(ctxErr, context.DeadlineExceeded) {
		return ctxErr
	}
	if why := l.whyUnacked(topic, partitionsOf(krs)); why != nil {
		return fmt.Errorf("%w (%w)", ctxErr, why)
	}
	return ctxErr
}

// cutOffTxn is cutOff for a transaction's records, of any topics.
func (l *Log) cutOffTxn(err error, krs []*kgo.Record) error {
	byTopic := map[string][]*kgo.Record{}
	for _, kr := range krs {
		byTopic[kr.Topic] = append(byTopic[kr.Topic], kr)
	}
	for topic, rs := range byTopic {
		if why := l.whyUnacked(topic, partitionsOf(rs)); why != nil {
			return fmt.Errorf("%w (%w)", err, why)
		}
	}
	return err
}
