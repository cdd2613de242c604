package versus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wail-cdc/wail/internal/latency"
)

// topicAdmin creates and deletes the bench's topics.
type topicAdmin struct {
	cl  *kgo.Client
	adm *kadm.Client
}

func newTopicAdmin(brokers string) (*topicAdmin, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		return nil, err
	}
	return &topicAdmin{cl: cl, adm: kadm.NewClient(cl)}, nil
}

func (t *topicAdmin) close() { t.cl.Close() }

func (t *topicAdmin) create(ctx context.Context, topic string, partitions int32) error {
	resp, err := t.adm.CreateTopic(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

func (t *topicAdmin) delete(ctx context.Context, topics ...string) error {
	resps, err := t.adm.DeleteTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("delete topics %v: %w", topics, err)
	}
	var errs []error
	for _, r := range resps.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("delete topic %s: %w", r.Topic, r.Err))
		}
	}
	return errors.Join(errs...)
}

// recentTokens is how many tokens per key the duplicate check remembers.
const recentTokens = 8

// consumer reads a pipeline's topic from the start, decodes every record
// and hands (key, token) to the matcher; it is the same code for every
// pipeline, only the decoder differs.
type consumer struct {
	cl      *kgo.Client
	decode  Decoder
	matcher *latency.Matcher
	table   string

	mu     sync.Mutex
	recent map[string][]uint64 // key -> last tokens seen, for duplicates

	events, dups, outOfOrder, decodeErrs atomic.Int64
	firstErr                             atomic.Pointer[string]
	done                                 chan struct{}
}

// newConsumer subscribes to topic (read_committed, from the start) and runs
// until close.
func newConsumer(brokers, topic, table string, decode Decoder, m *latency.Matcher) (*consumer, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(brokers, ",")...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	c := &consumer{cl: cl, decode: decode, matcher: m, table: table, recent: map[string][]uint64{}, done: make(chan struct{})}
	go c.run()
	return c, nil
}

func (c *consumer) run() {
	defer close(c.done)
	for {
		fs := c.cl.PollFetches(context.Background())
		if fs.IsClientClosed() {
			return
		}
		now := time.Now()
		fs.EachRecord(func(r *kgo.Record) { c.handle(r.Key, r.Value, r.Headers, now) })
	}
}

// handle processes one record that arrived at at.
func (c *consumer) handle(key, value []byte, headers []kgo.RecordHeader, at time.Time) {
	ev, skip, err := c.decode(key, value, headers)
	if skip {
		return
	}
	if err != nil {
		if c.decodeErrs.Add(1) == 1 {
			s := err.Error()
			c.firstErr.Store(&s)
		}
		return
	}
	c.events.Add(1)
	switch c.seen(ev) {
	case seenDuplicate:
		c.dups.Add(1)
		return
	case seenOlder:
		c.outOfOrder.Add(1)
	}
	c.matcher.Event(c.table, ev.Key, ev.Token, at)
}

type seenKind int

const (
	seenNew seenKind = iota
	seenDuplicate
	seenOlder // new, but below a token already seen for the key
)

// seen classifies ev against the last tokens of its key and remembers it.
func (c *consumer) seen(ev Event) seenKind {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := string(ev.Key)
	toks := c.recent[k]
	kind := seenNew
	for _, t := range toks {
		if t == ev.Token {
			return seenDuplicate
		}
		if t > ev.Token {
			kind = seenOlder
		}
	}
	if len(toks) == recentTokens {
		toks = toks[1:]
	}
	c.recent[k] = append(toks, ev.Token)
	return kind
}

func (c *consumer) close() {
	c.cl.Close()
	<-c.done
}
