package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TopicRetention is how long a topic keeps its records by time, as its
// configs on the brokers say (they may be set outside wail: CreateTopic
// leaves an existing topic's configs alone).
type TopicRetention struct {
	// Topic is the topic's Kafka name.
	Topic string
	// RetentionMS is retention.ms; -1 keeps records forever.
	RetentionMS int64
	// CleanupPolicy is cleanup.policy. Without "delete" in it, time
	// retention removes nothing (Forever).
	CleanupPolicy string
	// MinCompactionLagMS is min.compaction.lag.ms: the least time
	// compaction leaves a record in place (-1: not named).
	MinCompactionLagMS int64
	// DeleteRetentionMS is delete.retention.ms: how long compaction keeps
	// a tombstone once it compacted its segment (-1: not named).
	DeleteRetentionMS int64
}

// DeletesOutlived reports whether compaction may drop a delete's event
// while it keeps the tombstone after it (which event streams pass): a
// compacted topic whose min.compaction.lag.ms is below its
// delete.retention.ms (0, Kafka's default: at its segment's first
// compaction). A consumer behind by more than the lag then never sees
// the delete and keeps the key.
func (r TopicRetention) DeletesOutlived() bool {
	return r.Compacted() && r.MinCompactionLagMS >= 0 && r.DeleteRetentionMS >= 0 && r.MinCompactionLagMS < r.DeleteRetentionMS
}

// Forever reports whether time retention never removes a record.
func (r TopicRetention) Forever() bool {
	return r.RetentionMS < 0 || !slices.Contains(strings.Split(r.CleanupPolicy, ","), "delete")
}

// Compacted reports whether compaction removes records of the topic (its
// cleanup.policy has "compact"): a key's older records go, read or not.
func (r TopicRetention) Compacted() bool {
	return slices.Contains(strings.Split(r.CleanupPolicy, ","), "compact")
}

// TopicRetention reads topic's retention.ms, cleanup.policy,
// min.compaction.lag.ms and delete.retention.ms from the brokers
// (DescribeConfigs on the topic).
func (l *Log) TopicRetention(ctx context.Context, topic string) (TopicRetention, error) {
	r := TopicRetention{Topic: l.names.external(topic), RetentionMS: -2, MinCompactionLagMS: -1, DeleteRetentionMS: -1}
	rcs, err := l.adm.DescribeTopicConfigs(ctx, r.Topic)
	if err != nil {
		return r, fmt.Errorf("kafka: retention of %s: %w", r.Topic, mapErr(err))
	}
	rc, err := rcs.On(r.Topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return r, fmt.Errorf("kafka: retention of %s: %w", r.Topic, mapErr(err))
	}
	for _, c := range rc.Configs {
		switch {
		case c.Value == nil:
		case c.Key == "retention.ms":
			if r.RetentionMS, err = strconv.ParseInt(*c.Value, 10, 64); err != nil {
				return r, fmt.Errorf("kafka: retention of %s: retention.ms %q: %w", r.Topic, *c.Value, err)
			}
		case c.Key == "cleanup.policy":
			r.CleanupPolicy = *c.Value
		case c.Key == "min.compaction.lag.ms" || c.Key == "delete.retention.ms":
			ms, err := strconv.ParseInt(*c.Value, 10, 64)
			if err != nil || ms < 0 {
				return r, fmt.Errorf("kafka: retention of %s: %s %q is not a count of milliseconds", r.Topic, c.Key, *c.Value)
			}
			if c.Key == "min.compaction.lag.ms" {
				r.MinCompactionLagMS = ms
			} else {
				r.DeleteRetentionMS = ms
			}
		}
	}
	if r.RetentionMS == -2 || r.CleanupPolicy == "" {
		return r, fmt.Errorf("kafka: retention of %s: %w", r.Topic, errors.New("the brokers did not name retention.ms and cleanup.policy"))
	}
	return r, nil
}

// OffsetsRetention reads the brokers' offsets.retention.minutes (from one
// broker: the group coordinators share it): how long a group without Kafka
// members, as wail's groups are, keeps an offset not committed again
// (KIP-211).
func (l *Log) OffsetsRetention(ctx context.Context) (time.Duration, error) {
	md, err := l.adm.BrokerMetadata(ctx)
	if err != nil {
		return 0, fmt.Errorf("kafka: offsets.retention.minutes: %w", mapErr(err))
	}
	if len(md.Brokers) == 0 {
		return 0, errors.New("kafka: offsets.retention.minutes: the cluster named no broker")
	}
	rcs, err := l.adm.DescribeBrokerConfigs(ctx, md.Brokers[0].NodeID)
	if err != nil {
		return 0, fmt.Errorf("kafka: offsets.retention.minutes: %w", mapErr(err))
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			return 0, fmt.Errorf("kafka: offsets.retention.minutes: %w", mapErr(rc.Err))
		}
		for _, c := range rc.Configs {
			if c.Key == "offsets.retention.minutes" && c.Value != nil {
				m, err := strconv.ParseInt(*c.Value, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("kafka: offsets.retention.minutes %q: %w", *c.Value, err)
				}
				return time.Duration(m) * time.Minute, nil
			}
		}
	}
	return 0, errors.New("kafka: the broker did not name offsets.retention.minutes")
}
