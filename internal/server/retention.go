package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/kafka"
)

// retentionReader is a log whose topics' retention may be set outside
// wail, and whose CreateTopic leaves an existing topic's configs alone
// (Kafka): log.retention and log.event_retention only apply to topics it
// creates, so their order is checked on the topics themselves.
type retentionReader interface {
	TopicRetention(ctx context.Context, topic string) (kafka.TopicRetention, error)
}

var _ retentionReader = (*kafka.Log)(nil)

// retentionProblem reads the retention of table's intent and event topics
// and returns a description of what is wrong (empty when the events
// outlive the intents), or an error when the configs cannot be read. An
// event topic that keeps records for less time than its intent topic
// breaks a replay of intents (DESIGN.md, "A damaged offsets file": events
// must outlive the intents they resolve):
// a replayed intent whose events expired publishes a version a consumer
// has seen again. A compacted intent topic (cleanup.policy set outside
// wail) is wrong on its own: compaction removes a key's intents that a
// resolver behind has not read, and a later intent of the key whose write
// never reached the store covers nothing, so the stored write gets no
// event.
func retentionProblem(ctx context.Context, r retentionReader, table string, brokers []string) (problem, action string, err error) {
	in, err := r.TopicRetention(ctx, intent.Topic(table))
	if err != nil {
		return "", "", err
	}
	if in.Compacted() {
		problem = fmt.Sprintf("intent topic %s of table %s has cleanup.policy %s: Kafka compaction removes a key's older intents, "+
			"resolved or not; an acknowledged write whose intent is removed before the resolver reads it may get no event",
			in.Topic, table, in.CleanupPolicy)
		action = fmt.Sprintf("kafka-configs.sh --bootstrap-server %s --alter --entity-type topics --entity-name %s --add-config cleanup.policy=delete, "+
			"then wail table reconcile %s (publishes what compaction may have cost)", strings.Join(brokers, ","), in.Topic, table)
		return problem, action, nil
	}
	ev, err := r.TopicRetention(ctx, eventbus.Topic(table))
	if err != nil {
		return "", "", err
	}
	if ev.Forever() || (!in.Forever() && ev.RetentionMS >= in.RetentionMS) {
		problem, action = compactionLagProblem(ev, table, brokers)
		return problem, action, nil
	}
	intents, want := "forever", "-1"
	if !in.Forever() {
		intents = fmt.Sprintf("retention.ms %d (%s)", in.RetentionMS, time.Duration(in.RetentionMS)*time.Millisecond)
		want = fmt.Sprint(in.RetentionMS)
	}
	problem = fmt.Sprintf("event topic %s of table %s keeps records for retention.ms %d (%s, cleanup.policy %s), less than its intent topic %s (%s): "+
		"a replayed intent whose events expired would publish a version consumers have seen again",
		ev.Topic, table, ev.RetentionMS, time.Duration(ev.RetentionMS)*time.Millisecond, ev.CleanupPolicy, in.Topic, intents)
	action = fmt.Sprintf("raise it: kafka-configs.sh --bootstrap-server %s --alter --entity-type topics --entity-name %s --add-config retention.ms=%s "+
		"(or -1: events forever), or lower the intent topic's", strings.Join(brokers, ","), ev.Topic, want)
	return problem, action, nil
}

// compactionLagProblem describes an event topic whose compaction may
// drop a delete's event and keep its tombstone (empty when it cannot):
// event streams pass tombstones, so a consumer behind at that compaction
// never sees the delete, and its copy keeps a key the store no longer
// has. wail creates compacted topics with min.compaction.lag.ms of a day
// (Kafka's default delete.retention.ms); topics made before, or altered
// outside wail, may have 0.
func compactionLagProblem(ev kafka.TopicRetention, table string, brokers []string) (problem, action string) {
	if !ev.DeletesOutlived() {
		return "", ""
	}
	problem = fmt.Sprintf("event topic %s of table %s is compacted with min.compaction.lag.ms %d (%s), less than its delete.retention.ms %d (%s): "+
		"compaction may drop a delete's event and keep its tombstone, which event streams pass, so a consumer behind by more than %s "+
		"never sees the delete and keeps the key",
		ev.Topic, table, ev.MinCompactionLagMS, time.Duration(ev.MinCompactionLagMS)*time.Millisecond,
		ev.DeleteRetentionMS, time.Duration(ev.DeleteRetentionMS)*time.Millisecond, time.Duration(ev.MinCompactionLagMS)*time.Millisecond)
	action = fmt.Sprintf("raise it: kafka-configs.sh --bootstrap-server %s --alter --entity-type topics --entity-name %s --add-config min.compaction.lag.ms=%d; "+
		"consumers of %s that were behind may have missed deletes: rebuild their copies from a snapshot (Subscribe from \"snapshot\", or a new group that starts from it)",
		strings.Join(brokers, ","), ev.Topic, ev.DeleteRetentionMS, table)
	return problem, action
}

// checkRetention raises (or clears) the health condition retention/<table>
// when the log is Kafka's; a failed read of the configs is logged and
// leaves the condition as it was.
func (s *Server) checkRetention(ctx context.Context, table string) {
	if err := s.recheckRetention(ctx, table); err != nil {
		s.logger.Warn(retentionUnreadable, "table", table, "err", err)
	}
}

const retentionUnreadable = "cannot read the retention of a table's topics to check that events outlive intents; " +
	"grant DescribeConfigs on them (wail doctor checks it too)"

// recheckRetention is checkRetention that returns a failed read instead
// of logging it.
func (s *Server) recheckRetention(ctx context.Context, table string) error {
	r, ok := s.log.(retentionReader)
	if !ok {
		return nil
	}
	problem, action, err := retentionProblem(ctx, r, table, s.cfg.Log.Kafka.Brokers)
	switch {
	case err != nil:
		return err
	case problem == "":
		s.health.Clear(retentionComponent(table))
	default:
		s.health.Set(retentionComponent(table), health.Degraded, problem, action)
	}
	return nil
}

// watchRetention checks every table's topics again each
// log.kafka.retention_check until ctx ends: the topics' configs change
// outside wail (an operator lowers retention.ms, or raises it as the
// condition's action says, which then clears it without a restart). A read
// that fails is logged once per table until one works again.
func (s *Server) watchRetention(ctx context.Context) {
	every := s.cfg.Log.Kafka.RetentionCheck
	if _, ok := s.log.(retentionReader); !ok || every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failing := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		listed := s.catalog.List()
		for name := range failing {
			if !slices.ContainsFunc(listed, func(t catalog.Table) bool { return t.Name == name }) {
				delete(failing, name)
			}
		}
		for _, tb := range listed {
			if _, ok := s.catalog.Get(tb.Name); !ok {
				continue // not ready: being created, dropped, or unreadable
			}
			cctx, cancel := context.WithTimeout(ctx, retentionCheckBound)
			err := s.recheckRetention(cctx, tb.Name)
			if err == nil {
				err = s.checkPartitions(cctx, tb)
			}
			cancel()
			switch {
			case ctx.Err() != nil:
				return
			case err != nil && !failing[tb.Name]:
				s.logger.Warn(retentionUnreadable, "table", tb.Name, "err", err)
			}
			failing[tb.Name] = err != nil
			if _, ok := s.catalog.Get(tb.Name); !ok {
				// Dropped while checked: its drop cleared the condition
				// before this check could set it again.
				s.health.Clear(retentionComponent(tb.Name))
				s.health.Clear(partitionsComponent(tb.Name))
				delete(failing, tb.Name)
			}
		}
	}
}

// retentionCheckBound bounds one table's periodic check (two
// DescribeConfigs).
const retentionCheckBound = 30 * time.Second

func retentionComponent(table string) string { return "retention/" + table }

// checkPartitions raises (or clears) the health condition
// partitions/<table> when the table's intent or event topic has another
// partition count than the table: partitions added behind wail's back
// (kafka-topics.sh --alter). This process keeps placing keys by the
// table's count, so nothing fails until a restart, which no longer serves
// the table (its topics' count differs from the catalog's).
func (s *Server) checkPartitions(ctx context.Context, t catalog.Table) error {
	var problems []string
	k := s.cfg.Log.Kafka
	for _, tp := range []struct{ topic, name string }{
		{intent.Topic(t.Name), strings.ReplaceAll(k.IntentTopic, "{table}", t.Name)},
		{eventbus.Topic(t.Name), strings.ReplaceAll(k.EventTopic, "{table}", t.Name)},
	} {
		n, err := s.log.Partitions(ctx, tp.topic)
		switch {
		case errors.Is(err, intentlog.ErrUnknownTopic):
			// Deleted: the catalog's refresh makes it again.
		case err != nil:
			return err
		case n != t.Partitions:
			problems = append(problems, fmt.Sprintf("%s of table %s has %d partitions, the table %d", tp.name, t.Name, n, t.Partitions))
		}
	}
	if len(problems) == 0 {
		s.health.Clear(partitionsComponent(t.Name))
		return nil
	}
	s.health.Set(partitionsComponent(t.Name), health.Degraded,
		strings.Join(problems, "; ")+": partitions were added behind wail's back. This process keeps placing every key by the table's count "+
			"(no key moves, every write is resolved), but a restart no longer serves the table",
		fmt.Sprintf("Kafka cannot take partitions away: before any restart, stop the writes to %s, let the resolvers catch up (wail table describe %s), "+
			"then drop the table and create it again (wail table drop %s --force; wail table create %s --partitions %d), and have its consumers start over",
			t.Name, t.Name, t.Name, t.Name, t.Partitions))
	return nil
}

func partitionsComponent(table string) string { return "partitions/" + table }

// offsetsRetentionReader is a log that forgets a group's committed offset
// not committed again for a while (Kafka: offsets.retention.minutes).
type offsetsRetentionReader interface {
	OffsetsRetention(ctx context.Context) (time.Duration, error)
}

var _ offsetsRetentionReader = (*kafka.Log)(nil)

// offsetsRetentionProblem describes what is wrong when the brokers forget
// a group's positions (retention) within three api.group_commit_refresh
// (refresh) of their last commit: a refresh that fails once or twice, or
// comes late, loses them (empty: nothing).
func offsetsRetentionProblem(retention, refresh time.Duration) string {
	if retention >= 3*refresh {
		return ""
	}
	return fmt.Sprintf("the Kafka brokers forget a consumer group's position %s after its last commit (offsets.retention.minutes), "+
		"less than three api.group_commit_refresh (%s): the positions of partitions that get no events may be forgotten while members hold them, "+
		"and a member that joins after starts as in a new group (\"latest\": skipping events)", retention, refresh)
}

// checkOffsetsRetention logs, once at start, when the brokers' offsets
// retention is too short for api.group_commit_refresh.
func (s *Server) checkOffsetsRetention(ctx context.Context) {
	r, ok := s.log.(offsetsRetentionReader)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, retentionCheckBound)
	defer cancel()
	d, err := r.OffsetsRetention(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.logger.Info("cannot read the Kafka brokers' offsets.retention.minutes to check it against api.group_commit_refresh", "err", err)
		}
		return
	}
	if problem := offsetsRetentionProblem(d, s.cfg.API.GroupCommitRefresh); problem != "" {
		s.logger.Warn(problem, "action", "lower api.group_commit_refresh to a third of offsets.retention.minutes or less, or raise offsets.retention.minutes on the brokers")
	}
}
