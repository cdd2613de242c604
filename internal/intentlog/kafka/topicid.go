package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wail-cdc/wail/internal/intentlog"
)

var _ intentlog.TopicIDDeleter = (*Log)(nil)

// TopicIDs implements intentlog.TopicIDDeleter from fresh metadata; a
// broker without topic ids (before Kafka 2.8) fails it with
// errors.ErrUnsupported.
func (l *Log) TopicIDs(ctx context.Context, topics ...string) (map[string]intentlog.TopicID, error) {
	if err := l.checkOpen(); err != nil {
		return nil, fmt.Errorf("kafka: topic ids: %w", err)
	}
	ids := make(map[string]intentlog.TopicID, len(topics))
	for _, topic := range topics {
		id, found, err := l.topicID(ctx, l.names.external(topic))
		if err != nil {
			return nil, fmt.Errorf("kafka: topic id of %s: %w", l.names.external(topic), err)
		}
		if found {
			ids[topic] = id
		}
	}
	return ids, nil
}

// freshTopics asks a broker for the metadata of topics, as kadm's
// ListTopics answers it (name, id, error), never from the client's cache:
// kadm answers from metadata up to MetadataMinAge old, and the id checks
// that keep a deleted topic's offsets off one created again under its name
// must see a topic replaced a moment ago (TestTopicIDChecksAskTheBroker).
func (l *Log) freshTopics(ctx context.Context, topics ...string) (kadm.TopicDetails, error) {
	return l.freshTopicsAt(ctx, -1, topics...)
}

// freshTopicsAt is freshTopics asked of the broker node (-1: any). A
// broker's metadata never goes back, but brokers apply it each at its own
// pace: the group coordinator's, asked after it took a TxnOffsetCommit
// naming topics by name, shows each topic as it was then or newer
// (Member.sameIDs), which another broker, a moment behind, may not.
func (l *Log) freshTopicsAt(ctx context.Context, node int32, topics ...string) (kadm.TopicDetails, error) {
	req := kmsg.NewPtrMetadataRequest()
	for _, topic := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
	}
	var resp *kmsg.MetadataResponse
	if node < 0 {
		var err error
		if resp, err = req.RequestWith(ctx, l.cl); err != nil {
			return nil, err
		}
	} else {
		kresp, err := l.cl.Broker(int(node)).RetriableRequest(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("broker %d: %w", node, err)
		}
		resp = kresp.(*kmsg.MetadataResponse)
	}
	tds := make(kadm.TopicDetails, len(resp.Topics))
	for _, rt := range resp.Topics {
		if rt.Topic == nil {
			continue
		}
		tds[*rt.Topic] = kadm.TopicDetail{Topic: *rt.Topic, ID: rt.TopicID, IsInternal: rt.IsInternal, Err: kerr.ErrorForCode(rt.ErrorCode)}
	}
	return tds, nil
}

// groupCoordinator is the node id of group's coordinator: the broker
// that takes the group's offset commits, and checks their topics' names
// against its metadata.
func (l *Log) groupCoordinator(ctx context.Context, group string) (int32, error) {
	c, ok := l.adm.FindGroupCoordinators(ctx, group)[group]
	switch {
	case !ok:
		return -1, fmt.Errorf("the coordinator of group %s: no answer", group)
	case c.Err != nil:
		return -1, fmt.Errorf("the coordinator of group %s: %w", group, c.Err)
	}
	return c.NodeID, nil
}

// topicID reads an external topic's id from fresh metadata (found false:
// no such topic).
func (l *Log) topicID(ctx context.Context, topic string) (id intentlog.TopicID, found bool, err error) {
	tds, err := l.freshTopics(ctx, topic)
	if err != nil {
		return id, false, mapErr(err)
	}
	td, ok := tds[topic]
	switch {
	case !ok, errors.Is(td.Err, kerr.UnknownTopicOrPartition):
		return id, false, nil
	case td.Err != nil:
		return id, false, mapErr(td.Err)
	case td.ID == (kadm.TopicID{}):
		return id, false, fmt.Errorf("%w: the broker gives no topic id (Kafka before 2.8)", errors.ErrUnsupported)
	}
	return intentlog.TopicID(td.ID), true, nil
}

// DeleteTopicID implements intentlog.TopicIDDeleter with DeleteTopics by
// id (v6, KIP-516): the broker answers UNKNOWN_TOPIC_ID for a topic gone or
// made again since, and deletes nothing. Once deleted, it waits until the
// metadata no longer lists the name with that id, and forgets the topic
// (as DeleteTopic).
func (l *Log) DeleteTopicID(ctx context.Context, topic string, id intentlog.TopicID) error {
	ext := l.names.external(topic)
	if err := l.checkOpen(); err != nil {
		return fmt.Errorf("kafka: delete topic %s: %w", ext, err)
	}
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = 60_000
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.TopicID = id
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, l.cl)
	if err == nil {
		switch {
		case len(resp.Topics) != 1:
			err = fmt.Errorf("%d topics in the answer to the deletion of one", len(resp.Topics))
		default:
			err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
		}
	}
	switch {
	case errors.Is(err, kerr.UnknownTopicID), errors.Is(err, kerr.UnknownTopicOrPartition):
		return nil // gone already; a topic of the name now is another's
	case err != nil:
		return fmt.Errorf("kafka: delete topic %s (id %x): %w", ext, id, mapErr(err))
	}
	l.forget(ext)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		now, found, err := l.topicID(ctx, ext)
		switch {
		case err != nil:
			return fmt.Errorf("kafka: delete topic %s: waiting for the deletion: %w", ext, err)
		case !found || now != id:
			l.Forget(topic)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka: delete topic %s: waiting for the deletion: %w", ext, ctx.Err())
		case <-time.After(delay):
		}
	}
}
