package eventbus

import (
	"context"
	"errors"
	"maps"
	"sync"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// memLog is an in-memory log whose failures, retention and reads a test
// controls.
type memLog struct {
	mu      sync.Mutex
	parts   map[string][]*memPart
	grew    chan struct{}                 // closed and replaced on every append
	readers int                           // open readers
	commits map[[2]string]map[int32]int64 // by group, topic
	// errors to fail with (nil: none)
	createErr, appendErr, boundsErr, timeErr, readerErr, nextErr error
	nextOnce                                                     error // the next Next's, once

	onNewReader func()                   // called as NewReader returns
	onNext      func(p int32, pos int64) // called as a reader's Next begins, with its position
	hold        chan struct{}            // when set, reads wait until it is closed
	askedTime   time.Time                // last OffsetForTime's t
	timeOffset  int64                    // what OffsetForTime answers
}

type memPart struct {
	start int64 // first retained offset
	recs  []intentlog.Record
}

func newMemLog() *memLog { return &memLog{parts: map[string][]*memPart{}, grew: make(chan struct{})} }

func (l *memLog) CreateTopic(_ context.Context, topic string, n int32, _ intentlog.TopicOptions) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.createErr != nil {
		return l.createErr
	}
	for range n {
		l.parts[topic] = append(l.parts[topic], &memPart{})
	}
	return nil
}

func (l *memLog) Partitions(_ context.Context, topic string) (int32, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int32(len(l.parts[topic])), nil
}

func (l *memLog) Append(_ context.Context, topic string, recs []*intentlog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.appendErr != nil {
		return l.appendErr
	}
	ps := l.parts[topic]
	if len(ps) == 0 {
		return intentlog.ErrUnknownTopic
	}
	for _, r := range recs {
		p := ps[intentlog.Partition(r.Key, int32(len(ps)))]
		r.Offset, r.Timestamp = p.start+int64(len(p.recs)), time.Now()
		p.recs = append(p.recs, *r)
	}
	close(l.grew)
	l.grew = make(chan struct{})
	return nil
}

func (l *memLog) Bounds(_ context.Context, topic string, p int32) (int64, int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.boundsErr != nil {
		return 0, 0, l.boundsErr
	}
	part := l.parts[topic][p]
	return part.start, part.start + int64(len(part.recs)), nil
}

func (l *memLog) OffsetForTime(_ context.Context, _ string, _ int32, t time.Time) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.askedTime = t
	return l.timeOffset, l.timeErr
}

// retain drops the records of a partition below offset start.
func (l *memLog) retain(topic string, p int32, start int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	part := l.parts[topic][p]
	part.recs = part.recs[start-part.start:]
	part.start = start
}

// truncate drops the records of a partition from offset end on (the
// log lost its tail: an unclean Kafka leader election) and wakes the
// readers, which a position past the end answers out of range (as
// Kafka's fetch does).
func (l *memLog) truncate(topic string, p int32, end int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	part := l.parts[topic][p]
	part.recs = part.recs[:end-part.start]
	close(l.grew)
	l.grew = make(chan struct{})
}

func (l *memLog) NewReader(topic string, p int32, offset int64) (intentlog.Reader, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.readerErr != nil {
		return nil, l.readerErr
	}
	l.readers++
	if f := l.onNewReader; f != nil {
		l.onNewReader = nil
		l.mu.Unlock()
		f()
		l.mu.Lock()
	}
	return &memReader{l: l, topic: topic, p: p, pos: offset}, nil
}

func (l *memLog) openReaders() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.readers
}

func (l *memLog) Commit(_ context.Context, group, topic string, offsets map[int32]int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.commits == nil {
		l.commits = map[[2]string]map[int32]int64{}
	}
	c := l.commits[[2]string{group, topic}]
	if c == nil {
		c = map[int32]int64{}
		l.commits[[2]string{group, topic}] = c
	}
	maps.Copy(c, offsets)
	return nil
}

func (l *memLog) Committed(_ context.Context, group, topic string) (map[int32]int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.commits[[2]string{group, topic}]), nil
}
func (l *memLog) DeleteTopic(_ context.Context, topic string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.parts, topic)
	return nil
}

func (l *memLog) Close() error { return nil }

// memReader returns up to 2 records a call.
type memReader struct {
	l      *memLog
	topic  string
	p      int32
	pos    int64
	closed bool
}

func (r *memReader) Next(ctx context.Context) ([]intentlog.Record, error) {
	r.l.mu.Lock()
	hold, onNext := r.l.hold, r.l.onNext
	r.l.mu.Unlock()
	if onNext != nil {
		onNext(r.p, r.pos)
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	for {
		r.l.mu.Lock()
		part := r.l.parts[r.topic][r.p]
		if err := r.l.nextErr; err != nil {
			r.l.mu.Unlock()
			return nil, err
		}
		if err := r.l.nextOnce; err != nil {
			r.l.nextOnce = nil
			r.l.mu.Unlock()
			return nil, err
		}
		if r.pos < part.start || r.pos > part.start+int64(len(part.recs)) {
			r.l.mu.Unlock()
			return nil, intentlog.ErrOffsetOutOfRange
		}
		if i := int(r.pos - part.start); i < len(part.recs) {
			out := append([]intentlog.Record{}, part.recs[i:min(i+2, len(part.recs))]...)
			r.pos += int64(len(out))
			r.l.mu.Unlock()
			return out, nil
		}
		grew := r.l.grew
		r.l.mu.Unlock()
		select {
		case <-grew:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (r *memReader) Position() int64 { return r.pos }

func (r *memReader) Close() error {
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	if r.closed {
		return errors.New("closed twice")
	}
	r.closed = true
	r.l.readers--
	return nil
}

func (l *memLog) Lost(context.Context, string, int32) ([]intentlog.Range, error) { return nil, nil }
