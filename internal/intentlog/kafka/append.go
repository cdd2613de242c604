package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// Append produces recs to topic, each to partition intentlog.Partition(key,
// n), and returns once all of them are acknowledged (acks=all), with
// Partition, Offset and Timestamp filled in. It returns when ctx ends even if
// records are still in flight (see the package comment).
//
// A topic deleted and created again by another process has a new id: the
// client, which still holds the old one, refuses the records with
// UNKNOWN_TOPIC_ID. Append then drops what it knows of the topic (purges
// it from the client) and tries again (within ctx) with fresh metadata;
// the records it was refused were not written. A purge fails every record
// of the topic buffered or in flight in the client (franz-go's "topic
// purged while buffered"): an Append whose records failed while the topic
// was purged (by another Append so refused, or by Forget) is tried again
// too. Its first records may have been written all the same (a request in
// flight is answered after the purge, unheard), so the topic may hold them
// twice: harmless for intents, which are idempotent per version (the
// resolver settles an intent at or below a version it published, or that
// its read covers, without a second event).
func (l *Log) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	topic = l.names.external(topic)
	if len(recs) == 0 {
		return nil
	}
	stale, err := l.appendOnce(ctx, topic, recs)
	for try := 1; stale && ctx.Err() == nil && try < staleTries; try++ {
		stale, err = l.appendOnce(ctx, topic, recs)
	}
	if err != nil {
		return fmt.Errorf("kafka: append %s: %w", topic, err)
	}
	return nil
}

// staleTries bounds the tries of an Append whose topic was purged (see
// Append): each try after the first follows a purge, and one purge ends
// what concurrent Appends were refused for (purge).
const staleTries = 3

// appendOnce is one try of Append (topic is Kafka's name). Its records
// refused for an unknown topic (or topic id), it purges the topic so that
// the next try looks it up afresh, and says so with stale; so it does when
// the topic was purged while its records were in the client. (A topic the
// metadata does not show was asked again already: not stale.)
func (l *Log) appendOnce(ctx context.Context, topic string, recs []*intentlog.Record) (stale bool, err error) {
	gen := l.purgeGen(topic) // before the records are in the client
	n, err := l.appendPartitions(ctx, topic)
	if err != nil {
		return false, err
	}
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krs[i] = &kgo.Record{
			Topic:     topic,
			Partition: r.Place(n),
			Key:       r.Key,
			Value:     r.Value,
			Headers:   toKgoHeaders(r.Headers),
		}
	}
	// The topic's max.message.bytes, for the producer's batches: read
	// (at most firstRead) if it never was, refreshed in the background
	// once a minute old.
	_, _ = l.maxMessageBytes(ctx, topic)
	w := newWaiter(len(krs))
	sent := time.Now()
	used := l.produce(ctx, topic, krs, w.promise)
	select {
	case <-w.done:
	case <-ctx.Done():
		return false, l.cutOff(ctx.Err(), topic, krs)
	}
	if err := w.firstErr(); err != nil {
		if errors.Is(err, intentlog.ErrTooLarge) {
			// The topic's limit may have changed (lowered: the broker
			// refused a batch cut at the old one; raised: the client
			// refused a record over the old one): read it again, and go
			// again with a producer told the new one. A record over
			// the topic's limit as it is fails so.
			l.rereadLimit(ctx, topic, sent)
			again := l.prod.Load() != used || l.stale(used, topic)
			return again, fmt.Errorf("%w; %s", err, l.limitNote(ctx, topic))
		}
		if errors.Is(err, intentlog.ErrUnknownTopic) {
			// Deleted, maybe created again (with a new topic id that the
			// client must look up): start over with fresh metadata.
			l.purge(topic, gen)
			return true, err
		}
		// Failed by a purge ("topic purged while buffered", unexported),
		// or failed otherwise while one happened: try again.
		return l.purgeGen(topic) != gen, err
	}
	for i, kr := range krs {
		recs[i].Partition = kr.Partition
		recs[i].Offset = kr.Offset
		recs[i].Timestamp = kr.Timestamp
	}
	return false, nil
}

// purgeGen returns the count of purge starts and ends of topic (Kafka's
// name): a purge that begins after it, or ends after it, changes it.
func (l *Log) purgeGen(topic string) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.purges[topic]
}

// purge forgets topic (Kafka's name) in the Log and purges it from the
// producer, unless that began since gen (read before the records that were
// refused went into the client): one purge drops the old id for every
// Append refused with it, and another would fail their new tries.
func (l *Log) purge(topic string, gen uint64) {
	l.mu.Lock()
	if l.purges[topic] != gen {
		l.mu.Unlock()
		return
	}
	l.purges[topic]++
	delete(l.parts, topic)
	l.mu.Unlock()
	l.leaveTopics(topic)
	l.purged(topic)
}

// leaveTopics has Appends produce with a new client (a new producer id)
// that knows nothing of topics (Kafka's names), and purges them from the
// one it replaces, which never produces again: the records of theirs that
// it holds fail, and their Appends go again with the new one. Not purged
// from the client that produces on: were a topic still there (metadata
// behind, a broker that did not know it yet, a topic created again and
// written to before it was forgotten), that client would start the
// partitions' sequence numbers over under its producer id, and the broker
// would take its next batch for a duplicate of one it holds, acknowledged
// and never written. It reports whether the producer was replaced: not
// once the Log is closed, or when no client could be made (then it
// stays, the topics not purged, and a refusal for an unknown topic tries
// again).
func (l *Log) leaveTopics(topics ...string) bool {
	l.produceMu.Lock()
	old := l.prod.Load()
	moved := l.renewProducer(strings.Join(topics, ","), "") != old
	l.produceMu.Unlock()
	if !moved {
		return false
	}
	l.forgetHanded(old, topics...)
	old.cl.PurgeTopicsFromProducing(topics...)
	return true
}

// purged counts the end of a purge of topics (Kafka's names): an Append
// whose records went into the client while it ran sees a change.
func (l *Log) purged(topics ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range topics {
		l.purges[t]++
	}
}

// appendPartitions is partitionCount for an Append: a topic the metadata
// does not show is asked again for unknownConfirm before it is called
// unknown (the proxy refuses such a write for good). A broker learns of a
// topic another process just created a moment after its controller: the
// first write of a process to a table created a moment before failed so.
// Cut off before, it is the context's error (a retry may work), not
// ErrUnknownTopic.
func (l *Log) appendPartitions(ctx context.Context, topic string) (int32, error) {
	began := time.Now()
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, 250*time.Millisecond) {
		n, err := l.partitionCount(ctx, topic)
		if !errors.Is(err, intentlog.ErrUnknownTopic) || time.Since(began) >= unknownConfirm {
			return n, err
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w (the topic was not yet in the metadata: %v)", ctx.Err(), err)
		case <-time.After(delay):
		}
	}
}

// unknownConfirm: how long an Append asks again for a topic the metadata
// does not show: the client answers from its cache for
// MetadataMinAge (250 ms), so the metadata is read afresh twice more.
const unknownConfirm = 600 * time.Millisecond

// produce stamps krs (of topic) with one timestamp (milliseconds, as
// Kafka keeps them, never below one handed out before) and hands them to
// the producer in order, which it returns. Holding produceMu across both
// keeps every partition's timestamps in offset order for the records of
// this Log (but for records still in flight in a producer that was
// replaced). A producer that cuts topic's batches at another limit than
// the topic's as last read is replaced first.
func (l *Log) produce(ctx context.Context, topic string, krs []*kgo.Record, promise func(*kgo.Record, error)) *batchClient {
	l.produceMu.Lock()
	defer l.produceMu.Unlock()
	prod := l.prod.Load()
	if l.stale(prod, topic) {
		prod = l.renewProducer(topic, "kafka: max.message.bytes of a topic changed; record batches follow it (a new producer)")
	}
	milli := max(time.Now().UnixMilli(), l.lastMilli)
	l.lastMilli = milli
	ts := time.UnixMilli(milli)
	for _, kr := range krs {
		kr.Timestamp = ts
		prod.cl.Produce(ctx, kr, promise)
	}
	return prod
}

// renewProducer replaces the producer of Appends by a new client (with a
// new producer id; see batchClient), for topic: its batches are cut at a
// limit no longer the topic's (an INFO line says so, with msg), or it
// must forget the topic (purge). It returns the new one. The old one
// finishes the records it holds, then is closed (but for l.cl, which
// serves the rest). Once the Log is closed, or when the client cannot be
// made, the old one stays. Called with produceMu held.
func (l *Log) renewProducer(topic, msg string) *batchClient {
	old := l.prod.Load()
	if l.checkOpen() != nil {
		return old
	}
	bc, err := l.newBatchClient(l.prodOpts, l.opts.ExtraClientOpts)
	if err != nil {
		l.opts.Logger.Warn("kafka: cannot make a new producer client; the old one produces on", "topic", topic, "err", err)
		return old
	}
	if msg != "" {
		l.opts.Logger.Info(msg, "topic", topic)
	}
	l.prod.Store(bc)
	if old.cl != l.cl {
		l.drains.Go(func() {
			_ = old.cl.Flush(l.drainCtx) // each record ends by its Append's context
			old.cl.Close()
		})
	}
	return bc
}

// waiter collects the promises of one Append.
type waiter struct {
	left atomic.Int64
	done chan struct{}
	mu   sync.Mutex
	err  error
}

func newWaiter(n int) *waiter {
	w := &waiter{done: make(chan struct{})}
	w.left.Store(int64(n))
	return w
}

func (w *waiter) promise(_ *kgo.Record, err error) {
	if err != nil {
		w.mu.Lock()
		if w.err == nil {
			w.err = mapErr(err)
		}
		w.mu.Unlock()
	}
	if w.left.Add(-1) == 0 {
		close(w.done)
	}
}

func (w *waiter) firstErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func toKgoHeaders(hs []intentlog.Header) []kgo.RecordHeader {
	if len(hs) == 0 {
		return nil
	}
	out := make([]kgo.RecordHeader, len(hs))
	for i, h := range hs {
		out[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
	}
	return out
}

func fromKgoHeaders(hs []kgo.RecordHeader) []intentlog.Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]intentlog.Header, len(hs))
	for i, h := range hs {
		out[i] = intentlog.Header{Key: h.Key, Value: h.Value}
	}
	return out
}
