package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// What a record batch adds around its records, as counted against the two
// limits a record must fit: the broker's max.message.bytes of the topic
// (the batch's offset and length, then the 49 bytes of the v2 batch
// header) and the producer's ProducerBatchMaxBytes (the same plus the
// records array length of the produce request, as franz-go counts it).
const (
	brokerBatchOverhead   = 61
	producerBatchOverhead = 65
	// limitTTL is how long a topic's max.message.bytes is trusted before
	// it is read again (an operator may change it).
	limitTTL = time.Minute
)

// recordLimits caches the max.message.bytes of topics.
type recordLimits struct {
	mu     sync.Mutex
	topics map[string]topicLimit
}

type topicLimit struct {
	bytes  int
	read   time.Time
	warned bool // the last read failed and it was logged
}

// RecordLimit returns the largest record, counted with its framing in a
// record batch, that an Append to topic takes: the topic's
// max.message.bytes (read from the brokers at creation and again after a
// minute) or the producer's own limit (Options.MaxMessageBytes), whichever
// is smaller, less the batch around the record; and which limit that is.
// When the topic's setting cannot be read (no DescribeConfigs permission,
// brokers down) it returns the producer's limit, or the last value read.
func (l *Log) RecordLimit(ctx context.Context, topic string) (int, string, error) {
	if err := l.checkOpen(); err != nil {
		return 0, "", fmt.Errorf("kafka: record limit of %s: %w", topic, err)
	}
	topic = l.names.external(topic)
	producer := int(l.opts.MaxMessageBytes) - producerBatchOverhead
	producerSource := fmt.Sprintf("the Kafka producer's limit of %d bytes per record batch", l.opts.MaxMessageBytes)
	topicMax, err := l.maxMessageBytes(ctx, topic)
	switch {
	case err != nil:
		return producer, producerSource + " (the max.message.bytes of topic " + topic + " could not be read)", nil
	case topicMax-brokerBatchOverhead < producer:
		return topicMax - brokerBatchOverhead, fmt.Sprintf("max.message.bytes=%d of Kafka topic %s", topicMax, topic), nil
	}
	return producer, producerSource, nil
}

// maxMessageBytes returns the max.message.bytes of topic (a Kafka name):
// cached, or read if the cached value is older than limitTTL. When a read
// fails it returns the cached value, however old, and logs the failure
// once.
func (l *Log) maxMessageBytes(ctx context.Context, topic string) (int, error) {
	c := &l.limits
	c.mu.Lock()
	cached, ok := c.topics[topic]
	c.mu.Unlock()
	if ok && time.Since(cached.read) < limitTTL {
		return cached.bytes, nil
	}
	n, err := l.describeMaxMessageBytes(ctx, topic)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.topics == nil {
		c.topics = map[string]topicLimit{}
	}
	if err == nil {
		c.topics[topic] = topicLimit{bytes: n, read: time.Now()}
		return n, nil
	}
	cur := c.topics[topic]
	if !cur.warned {
		l.opts.Logger.Warn("kafka: cannot read max.message.bytes of a topic; the proxy checks values against the last value read or the producer's limit; grant DescribeConfigs on the topic",
			"topic", topic, "err", err)
		cur.warned = true
		c.topics[topic] = cur
	}
	if cur.read.IsZero() {
		return 0, err
	}
	return cur.bytes, nil
}

func (l *Log) describeMaxMessageBytes(ctx context.Context, topic string) (int, error) {
	rcs, err := l.adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return 0, mapErr(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return 0, err
	}
	if rc.Err != nil {
		return 0, mapErr(rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == "max.message.bytes" && c.Value != nil {
			return strconv.Atoi(*c.Value)
		}
	}
	return 0, errors.New("the brokers did not name max.message.bytes")
}
