package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
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
	topics map[string]*topicLimit
	closed bool           // no more refreshes
	wg     sync.WaitGroup // refreshes in flight
}

// close waits for the refreshes in flight and starts no more.
func (c *recordLimits) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wg.Wait()
}

type topicLimit struct {
	bytes      int
	read       time.Time // zero: never read
	refreshing bool
	warned     bool // a read failed and it was logged
	// failed is when the last read of a topic never read failed (lastErr
	// why): for failedRetry after it, calls answer at once with that
	// error instead of waiting up to firstRead each (a request of many mutations checks
	// each one; a cluster that refuses DescribeConfigs refuses them all).
	failed  time.Time
	lastErr error
}

// failedRetry is how long after a failed first read of a topic's
// max.message.bytes the next call reads it again.
const failedRetry = 10 * time.Second

// RecordLimit returns the largest record, counted with its framing in a
// record batch, that an Append to topic takes: the topic's
// max.message.bytes or the producer's own limit (Options.MaxMessageBytes),
// whichever is smaller, less the batch around the record; and which limit
// that is. The topic's setting is read from the brokers at creation (or at
// the first call), then served from memory and refreshed in the
// background once a minute old, and at once when a broker refuses records
// as too large (it may have been lowered). When it was never read (no
// DescribeConfigs permission, brokers down) the producer's limit applies.
func (l *Log) RecordLimit(ctx context.Context, topic string) (int, string, error) {
	if err := l.checkOpen(); err != nil {
		return 0, "", fmt.Errorf("kafka: record limit of %s: %w", topic, err)
	}
	n, source := l.recordLimit(ctx, l.names.external(topic))
	return n, source, nil
}

// recordLimit is RecordLimit of topic, Kafka's name.
func (l *Log) recordLimit(ctx context.Context, topic string) (int, string) {
	producer := int(l.opts.MaxMessageBytes) - producerBatchOverhead
	producerSource := fmt.Sprintf("the Kafka producer's limit of %d bytes per record batch", l.opts.MaxMessageBytes)
	topicMax, err := l.maxMessageBytes(ctx, topic)
	switch {
	case err != nil:
		return producer, producerSource + " (the max.message.bytes of topic " + topic + " could not be read)"
	case topicMax-brokerBatchOverhead < producer:
		return topicMax - brokerBatchOverhead, fmt.Sprintf("max.message.bytes=%d of Kafka topic %s", topicMax, topic)
	}
	return producer, producerSource
}

// limitNote says what topics (Kafka's names) take, for an error of
// records refused as too large.
func (l *Log) limitNote(ctx context.Context, topics ...string) string {
	var b strings.Builder
	for i, topic := range topics {
		if i > 0 {
			b.WriteString("; ")
		}
		n, source := l.recordLimit(ctx, topic)
		fmt.Fprintf(&b, "topic %s takes records of at most %d bytes with their framing (%s)", topic, n, source)
	}
	return b.String()
}

// maxMessageBytes returns the max.message.bytes of topic (a Kafka name).
// The first call reads it (waiting at most firstRead); later calls return
// the cached value at once and, once it is older than limitTTL, refresh it
// in the background, so that a write never waits on brokers that are down.
func (l *Log) maxMessageBytes(ctx context.Context, topic string) (int, error) {
	c := &l.limits
	c.mu.Lock()
	tl := c.topics[topic]
	if tl == nil {
		tl = &topicLimit{}
		if c.topics == nil {
			c.topics = map[string]*topicLimit{}
		}
		c.topics[topic] = tl
	}
	if !tl.read.IsZero() {
		if time.Since(tl.read) >= limitTTL && !tl.refreshing && !c.closed {
			tl.refreshing = true
			c.wg.Go(func() {
				rctx, cancel := context.WithTimeout(context.Background(), l.opts.RequestTimeout)
				defer cancel()
				began := time.Now()
				n, err := l.describeMaxMessageBytes(rctx, topic)
				l.storeLimit(topic, n, err, began)
			})
		}
		n := tl.bytes
		c.mu.Unlock()
		return n, nil
	}
	if !tl.failed.IsZero() && time.Since(tl.failed) < failedRetry {
		err := tl.lastErr
		c.mu.Unlock()
		return 0, fmt.Errorf("not read again within %s of a failed read: %w", failedRetry, err)
	}
	c.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, firstRead)
	defer cancel()
	began := time.Now()
	n, err := l.describeMaxMessageBytes(rctx, topic)
	if err == nil || ctx.Err() == nil {
		// (A read cut by the caller's end says nothing of the cluster:
		// not remembered as failed.)
		l.storeLimit(topic, n, err, began)
	}
	return n, err
}

// batchMaxBytes is the producers' limit on a record batch to topic
// (Kafka's name), which a client is told when kgo first asks (see
// batchClient): Options.MaxMessageBytes, or the topic's max.message.bytes when that
// was read (RecordLimit, CreateTopic) and is lower. Kept at the producer's
// limit, a batch gathering the records of concurrent Appends (or of one
// transaction) that each fit the topic could exceed it, and the broker
// refused the whole batch: every Append in it failed with ErrTooLarge.
// kgo counts a batch with the length prefix of the request's records
// field, 4 bytes (producerBatchOverhead - brokerBatchOverhead), or 1 to 4
// on flexible produce versions: the limit is the topic's plus 4, so that a
// record of RecordLimit goes through, and a batch of several records can
// still exceed the topic's limit by a byte or two on flexible versions
// (one for limits of 16 KiB to 2 MiB), which the broker refuses. It never
// waits: a limit not yet read is the producer's. A client told another
// limit than the topic's as last read is replaced (see batchClient).
// Called with c.mu held.
func (l *Log) batchMaxBytes(topic string) int32 {
	n := l.opts.MaxMessageBytes
	if tl := l.limits.topics[topic]; tl != nil && !tl.read.IsZero() {
		topicMax := tl.bytes + producerBatchOverhead - brokerBatchOverhead
		if topicMax < int(n) {
			n = int32(max(topicMax, minBatchMaxBytes))
		}
	}
	return n
}

// batchClient is a producing client and the batch limit it cuts each
// topic's batches at (Kafka's name; under recordLimits.mu): batchMaxBytes
// when kgo first asked, and the same ever after. kgo keeps what it is told
// for a partition's life in the client (ProducerBatchMaxBytesFn), but asks
// again at every metadata read, for partitions it then throws away when it
// has them already: answered the limit of the moment, what it was told
// last was not what its batches are cut at. A client whose limit for a
// topic is no longer the topic's (its max.message.bytes changed: stale)
// is replaced by a new one, which asks again. Not purged of the topic
// instead: the purged partitions' sequence numbers would start over under
// the same producer id, and the broker takes a batch whose numbers match
// one of its last five as a duplicate: it acknowledges it without writing
// it.
type batchClient struct {
	cl     *kgo.Client
	handed map[string]int32
}

// newBatchClient is a producing client of opts then extra (which may
// override what opts set) whose batch limits are batchMaxBytes, each
// topic's as it was when kgo first asked.
func (l *Log) newBatchClient(opts, extra []kgo.Opt) (*batchClient, error) {
	bc := &batchClient{handed: map[string]int32{}}
	fn := func(topic string) int32 {
		c := &l.limits
		c.mu.Lock()
		defer c.mu.Unlock()
		if n, ok := bc.handed[topic]; ok {
			return n
		}
		n := l.batchMaxBytes(topic)
		if topic != "" { // kgo's check of the option at NewClient
			bc.handed[topic] = n
		}
		return n
	}
	all := append(append(append([]kgo.Opt{}, opts...), kgo.ProducerBatchMaxBytesFn(fn)), extra...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, err
	}
	bc.cl = cl
	return bc, nil
}

// stale reports whether bc cuts batches of one of topics (Kafka's names)
// at another limit than the topic's as last read.
func (l *Log) stale(bc *batchClient, topics ...string) bool {
	c := &l.limits
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, topic := range topics {
		if n, ok := bc.handed[topic]; ok && n != l.batchMaxBytes(topic) {
			return true
		}
	}
	return false
}

// forgetHanded drops what bc was told of topics: they are purged from it
// next (after: a partition kgo made in between would keep what it was
// told before), and kgo asks again.
func (l *Log) forgetHanded(bc *batchClient, topics ...string) {
	c := &l.limits
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, topic := range topics {
		delete(bc.handed, topic)
	}
}

// forgetLimits drops the cached max.message.bytes of topics (Kafka's
// names): deleted, and maybe created again with another.
func (l *Log) forgetLimits(topics ...string) {
	c := &l.limits
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, topic := range topics {
		delete(c.topics, topic)
	}
}

// rereadLimit reads topic's max.message.bytes again now, unless a read
// of it began after since (when the refused records were handed to the
// producer): a broker (or the client, with a limit it was told before)
// refused records as too large, and the limit may have changed since it
// was read. Records refused together by one change (produced before the
// batch went) ask once. Not "unless read within the last 100 ms": a read
// just before the change (the one at the topic's creation, a refresh)
// kept the old limit, the producer was not replaced, and the records, or
// the transaction, failed as too large though they fit the new limit
// (the resolver dead-lettered such events; TestTransactLimitLowered).
// Bounded by firstRead; a failure keeps the last value.
func (l *Log) rereadLimit(ctx context.Context, topic string, since time.Time) {
	c := &l.limits
	c.mu.Lock()
	if tl := c.topics[topic]; tl != nil && !tl.read.IsZero() && tl.read.After(since) {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, firstRead)
	defer cancel()
	began := time.Now()
	n, err := l.describeMaxMessageBytes(rctx, topic)
	if err == nil || ctx.Err() == nil {
		l.storeLimit(topic, n, err, began)
	}
}

// minBatchMaxBytes is the least batch limit kgo takes.
const minBatchMaxBytes = 512

// firstRead bounds the first read of a topic's max.message.bytes.
const firstRead = 2 * time.Second

// storeLimit records the outcome of a read of topic's max.message.bytes
// that began at began (what it says is as of then at the earliest): a
// failure keeps the last value (or none) and is logged once.
func (l *Log) storeLimit(topic string, n int, err error, began time.Time) {
	c := &l.limits
	c.mu.Lock()
	defer c.mu.Unlock()
	tl := c.topics[topic]
	if tl == nil { // forgotten meanwhile (Forget)
		tl = &topicLimit{}
		if c.topics == nil {
			c.topics = map[string]*topicLimit{}
		}
		c.topics[topic] = tl
	}
	tl.refreshing = false
	if err == nil {
		tl.bytes, tl.read, tl.warned, tl.failed, tl.lastErr = n, began, false, time.Time{}, nil
		return
	}
	if tl.read.IsZero() {
		tl.failed, tl.lastErr = time.Now(), err
	}
	if !tl.warned {
		tl.warned = true
		l.opts.Logger.Warn("kafka: cannot read max.message.bytes of a topic; record limits use the last value read or the producer's limit; grant DescribeConfigs on the topic",
			"topic", topic, "err", err)
	}
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

// AppendLimit returns the largest total of records (each counted as
// RecordLimit counts one) that an Append, or a transaction, to one
// partition of topic is sure to get through in one record batch: the
// record limit. The producer splits more into batches of up to the
// topic's max.message.bytes as last read (batchMaxBytes); a batch over a
// limit lowered since the broker refuses as a whole, which has the limit
// read again and the records sent again in batches of the new one
// (Append, Member.Transact).
func (l *Log) AppendLimit(ctx context.Context, topic string) (int, error) {
	n, _, err := l.RecordLimit(ctx, topic)
	return n, err
}
