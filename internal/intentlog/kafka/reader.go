package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// reader reads one partition with a kgo client of its own, created by the
// first Next (after checking that the partition exists), and let go when
// no Next came for Options.ReaderIdle (release): made again by the next.
type reader struct {
	l     *Log
	topic string
	part  int32
	next  atomic.Int64 // offset of the next record to return; only Next moves it

	mu     sync.Mutex
	cl     *kgo.Client
	closed bool
	// nexts counts the Nexts running; idle lets the client go once none
	// ran for Options.ReaderIdle (see release).
	nexts int
	idle  *time.Timer
	err   error // sticky: an error that came with records, returned next
	// trunc: a truncation returned, returned again by every Next (the
	// client reset to where the log diverges and fetches on from there,
	// below the position: reading on would pass the records between).
	trunc error
	// epochs are where the leader epoch of the records read changed, in
	// offset order: the first is the start (the offset before it, with
	// the epoch the reader was started with), each other the first record
	// read under a new epoch. Epochs change rarely (at a leader change);
	// at most maxEpochMarks are kept, the oldest dropped.
	epochs []epochMark
	// unknownIDs counts the polls in a row, without records, that said
	// UNKNOWN_TOPIC_ID while the metadata still lists the topic (only
	// Next touches it).
	unknownIDs int
	// id: the id of the topic of the records returned (zero before any,
	// or when the broker does not say: fetch before v13); its client
	// keeps the id it read first.
	id atomic.Pointer[intentlog.TopicID]
}

// epochMark: the record at offset (and those after it, up to the next
// mark) was written under epoch.
type epochMark struct {
	offset int64
	epoch  int32
}

// maxEpochMarks bounds a reader's epoch history: a committed offset
// older than its marks is committed without an epoch (not validated).
const maxEpochMarks = 64

// readerFetchBytes bounds what a reader's client fetches at once, and
// holds buffered ahead of Next (one fetch): a reader reads one partition,
// and every partition of every event stream has one, so a stream whose
// client reads nothing holds that (decoded: several times its bytes for
// small records) per partition, twice. A record batch larger still is
// fetched whole (Kafka returns the first batch whatever the limits).
// The limit was max_message_bytes (4 MiB), four times per fetch: a
// stalled stream of a table of 4 partitions held some 90 MiB.
const readerFetchBytes = 1 << 20

// NewReader returns a reader of a partition from offset on. A negative
// offset fails at once; an unknown topic or partition, or an offset outside
// [start, end], fails the first Next.
func (l *Log) NewReader(topic string, partition int32, offset int64) (intentlog.Reader, error) {
	return l.NewEpochReader(topic, partition, intentlog.EpochOffset{Offset: offset, Epoch: -1})
}

// NewEpochReader implements intentlog.EpochLog: NewReader at at.Offset,
// which, when at.Epoch >= 0, the client validates first (KIP-320:
// OffsetForLeaderEpoch of at.Epoch; an end offset below at.Offset is
// kgo.ErrDataLoss, an *intentlog.Truncation from the first Next).
func (l *Log) NewEpochReader(topic string, partition int32, at intentlog.EpochOffset) (intentlog.EpochReader, error) {
	offset := at.Offset
	topic = l.names.external(topic)
	if err := l.checkOpen(); err != nil {
		return nil, fmt.Errorf("kafka: reader %s/%d: %w", topic, partition, err)
	}
	if offset < 0 {
		return nil, fmt.Errorf("kafka: reader %s/%d at %d: %w", topic, partition, offset, intentlog.ErrOffsetOutOfRange)
	}
	r := &reader{l: l, topic: topic, part: partition}
	r.next.Store(offset)
	if at.Epoch >= 0 {
		r.epochs = []epochMark{{offset: offset - 1, epoch: at.Epoch}}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("kafka: reader %s/%d: %w", topic, partition, intentlog.ErrClosed)
	}
	l.readers[r] = struct{}{}
	return r, nil
}

// TopicID implements intentlog.TopicIDReader.
func (r *reader) TopicID() intentlog.TopicID {
	if id := r.id.Load(); id != nil {
		return *id
	}
	return intentlog.TopicID{}
}

// PinTopicID implements intentlog.TopicIDPinner: the reader's client,
// when it makes one, first checks with fresh metadata that the topic is
// still the one of id (sameID), and its fetches' topic ids are checked
// against it, as for a client made again after a release.
func (r *reader) PinTopicID(id intentlog.TopicID) {
	if id != (intentlog.TopicID{}) {
		r.id.CompareAndSwap(nil, &id)
	}
}

// Position implements intentlog.Reader.
func (r *reader) Position() int64 { return r.next.Load() }

// EpochBefore implements intentlog.EpochReader.
func (r *reader) EpochBefore(offset int64) int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.epochs) - 1; i >= 0; i-- {
		if r.epochs[i].offset < offset {
			return r.epochs[i].epoch
		}
	}
	return -1
}

// sawEpoch records the epoch of a record read at offset (in offset order).
func (r *reader) sawEpoch(offset int64, epoch int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.epochs); n > 0 && r.epochs[n-1].epoch == epoch {
		return
	}
	if len(r.epochs) == maxEpochMarks {
		r.epochs = append(r.epochs[:0], r.epochs[1:]...)
	}
	r.epochs = append(r.epochs, epochMark{offset: offset, epoch: epoch})
}

// Next returns the next records, blocking until there are some or ctx ends
// (records its poll took as ctx ended are returned, with no error). It
// returns none, with a moved Position, when a fetch held only
// transaction markers. A truncation is final: every Next after it returns
// it again, the position where it was.
func (r *reader) Next(ctx context.Context) ([]intentlog.Record, error) {
	r.enter()
	defer r.leave()
	cl, err := r.client(ctx)
	if err != nil {
		return nil, r.wrap(err)
	}
	for {
		fs := cl.PollFetches(ctx)
		if err := r.stateErr(); err != nil {
			return nil, r.wrap(err)
		}
		// What the poll took is converted even when ctx ended meanwhile
		// (a deadline that passed as the fetch landed): the client has
		// moved past it and never returns it again. Dropped, its records
		// were skipped by the next Nexts, or waited for at the position
		// for ever when nothing came after them; a truncation was missed.
		from := r.next.Load()
		recs, err, unknown := r.convert(fs)
		if len(recs) > 0 || r.next.Load() > from {
			r.unknownIDs = 0
		} else if err == nil && unknown != nil && ctx.Err() == nil {
			err = r.topicGone(ctx, unknown)
		}
		switch {
		case len(recs) > 0 || (err == nil && r.next.Load() > from):
			r.setSticky(err)
			return recs, nil
		case err != nil:
			if errors.Is(err, intentlog.ErrTruncated) {
				r.mu.Lock()
				r.trunc = err
				r.mu.Unlock()
			}
			return nil, r.wrap(err)
		case ctx.Err() != nil:
			return nil, r.wrap(ctx.Err())
		}
	}
}

// enter marks a Next running: the client is not let go under it.
func (r *reader) enter() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nexts++
	if r.idle != nil {
		r.idle.Stop()
	}
}

// leave marks a Next done; the last one out arms the idle timer.
func (r *reader) leave() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nexts--; r.nexts > 0 || r.closed || r.cl == nil {
		return
	}
	if r.idle == nil {
		r.idle = time.AfterFunc(r.l.opts.ReaderIdle, r.release)
	} else {
		r.idle.Reset(r.l.opts.ReaderIdle)
	}
}

// release lets an idle reader's client go: the fetch it buffered ahead
// (up to readerFetchBytes, decoded several times over for small records)
// and its connections. A stream whose client reads nothing stops calling
// Next once its read-ahead is full, and held them per partition for as
// long as it stayed open, outside every budget. The next Next makes a
// client again at the position, validated by the leader epoch of the
// record before it (KIP-320: a log truncated meanwhile is a Truncation),
// after fresh metadata said the topic's id is still the one read so far
// (sameID: another topic of the name would pass as this one truncated),
// and the topic id of its records is checked too (convert). Only a reader that knows that id is released: it read
// records, so it has its topic's id to compare (a reader that never got
// one buffered nothing either; a broker that never says ids keeps its
// clients).
func (r *reader) release() {
	r.mu.Lock()
	cl := r.cl
	if r.nexts > 0 || r.closed || cl == nil || r.id.Load() == nil {
		r.mu.Unlock()
		return
	}
	r.cl = nil
	r.mu.Unlock()
	cl.Close()
}

// sameID waits until fresh metadata answers for the reader's topic, and
// fails with ErrUnknownTopic unless it is still the topic of id, the one
// the reader read: a client made again after a release learns the topic
// by its name, and the leader epoch check of its start would take
// another topic of the name, shorter than the position, for the reader's
// own truncated (its epochs start again: a *intentlog.Truncation from the
// new topic's end, which an event stream rewinds to and a group member
// reports as events lost), where a reader that kept its client hears
// UNKNOWN_TOPIC_ID. No answer (a broker unreachable, a request timed
// out) is asked again until ctx ends, as a fetch waits.
func (r *reader) sameID(ctx context.Context, id intentlog.TopicID) error {
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 250*time.Millisecond) {
		qctx, cancel := context.WithTimeout(ctx, r.l.opts.RequestTimeout) // one question
		now, found, err := r.l.topicID(qctx, r.topic)
		cancel()
		switch {
		case err == nil && found && now == id:
			return nil
		case err == nil && !found:
			r.l.forget(r.topic)
			return fmt.Errorf("%w (the metadata does not know the topic)", intentlog.ErrUnknownTopic)
		case err == nil:
			return fmt.Errorf("%w (deleted and created again since the reader read it: id %x, now %x; its position is the old topic's)",
				intentlog.ErrUnknownTopic, id[:], now[:])
		case errors.Is(err, errors.ErrUnsupported): // a broker downgraded: the fetches' ids are checked (convert)
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("checking the topic id: %w (retrying %w)", ctx.Err(), err)
		case r.l.checkOpen() != nil:
			return fmt.Errorf("checking the topic id: %w", intentlog.ErrClosed)
		case !retriableCheck(err):
			return fmt.Errorf("checking the topic id: %w", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
}

func (r *reader) wrap(err error) error {
	return fmt.Errorf("kafka: read %s/%d at %d: %w", r.topic, r.part, r.next.Load(), err)
}

// client returns the reader's client, creating it on first use.
func (r *reader) client(ctx context.Context) (*kgo.Client, error) {
	if err := r.stateErr(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	cl := r.cl
	r.mu.Unlock()
	if cl != nil {
		return cl, nil
	}
	if err := r.l.checkPartition(ctx, r.topic, r.part); err != nil {
		return nil, err
	}
	if id := r.id.Load(); id != nil { // made again after a release
		if err := r.sameID(ctx, *id); err != nil {
			return nil, err
		}
	}
	at := kgo.NewOffset().At(r.next.Load())
	if e := r.EpochBefore(r.next.Load()); e >= 0 {
		if err := r.l.epochKnown(ctx, r.topic, r.part, r.next.Load(), e); err != nil {
			if errors.Is(err, intentlog.ErrTruncated) { // final; else the start is tried again
				r.mu.Lock()
				r.trunc = err
				r.mu.Unlock()
			}
			return nil, err
		}
		at = at.WithEpoch(e) // validated first (KIP-320)
	}
	opts := append(append([]kgo.Opt{}, r.l.common...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.topic: {r.part: at}}),
		kgo.KeepControlRecords(),                    // to move Position past transaction markers
		kgo.KeepRetryableFetchErrors(),              // to see a topic deleted (convert drops the others)
		kgo.ConsumeResetOffset(kgo.NoResetOffset()), // out of range is an error, never a jump
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(readerFetchBytes),
		kgo.FetchMaxPartitionBytes(readerFetchBytes),
	)
	opts = append(opts, r.l.opts.ExtraClientOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.cl != nil { // closed meanwhile, or another Next won
		go cl.Close()
		if r.closed {
			return nil, intentlog.ErrClosed
		}
		return r.cl, nil
	}
	r.cl = cl
	return cl, nil
}

// stateErr is ErrClosed once the reader or its log is closed, else the
// truncation it returned, if any, else the sticky error, if any (which it
// clears).
func (r *reader) stateErr() error {
	r.mu.Lock()
	closed, err, trunc := r.closed, r.err, r.trunc
	r.err = nil
	r.mu.Unlock()
	if closed {
		return intentlog.ErrClosed
	}
	if err := r.l.checkOpen(); err != nil {
		return err
	}
	if trunc != nil {
		return trunc
	}
	return err
}

func (r *reader) setSticky(err error) {
	if err == nil {
		return
	}
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

// convert turns a poll's records into intentlog records and its errors into
// one error (the first), mapped to the intentlog sentinels. Retriable Kafka
// errors (the client asks again itself: no leader, a leader moving, ...)
// are dropped, as the client drops them unless asked to keep them; unknown
// is the last that says the topic is unknown (UNKNOWN_TOPIC_OR_PARTITION,
// UNKNOWN_TOPIC_ID), for Next to confirm with the metadata.
func (r *reader) convert(fs kgo.Fetches) (_ []intentlog.Record, _ error, unknown error) {
	var first error
	fs.EachError(func(_ string, _ int32, err error) {
		if errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.UnknownTopicID) {
			unknown = err
			return
		}
		if ke, ok := errors.AsType[*kerr.Error](err); ok && ke.Retriable {
			return
		}
		if first == nil {
			first = mapErr(err)
		}
	})
	if errors.Is(first, intentlog.ErrTruncated) {
		// The client reset the partition to where its log diverges
		// and fetches on from there (kgo.ErrDataLoss is informational):
		// records of the same poll may be the diverged log's, at or past
		// the position. None is returned before the truncation.
		return nil, first, nil
	}
	if id := r.id.Load(); id != nil {
		// A client made again after a release learns the topic's id anew:
		// another id is another topic under the same name, whose offsets
		// say nothing of the position (an original client asks by the id
		// it read first, and hears UNKNOWN_TOPIC_ID: topicGone).
		var other bool
		fs.EachTopic(func(ft kgo.FetchTopic) {
			other = other || (ft.Topic == r.topic && ft.TopicID != [16]byte{} && intentlog.TopicID(ft.TopicID) != *id)
		})
		if other {
			return nil, fmt.Errorf("%w (the topic was deleted and created again since the reader read it; its position is the old topic's)",
				intentlog.ErrUnknownTopic), nil
		}
	} else {
		fs.EachTopic(func(ft kgo.FetchTopic) {
			if ft.Topic != r.topic || ft.TopicID == ([16]byte{}) {
				return
			}
			for _, fp := range ft.Partitions {
				if fp.Partition == r.part && fp.Err == nil && len(fp.Records) > 0 {
					id := intentlog.TopicID(ft.TopicID)
					r.id.CompareAndSwap(nil, &id)
				}
			}
		})
	}
	var out []intentlog.Record
	fs.EachRecord(func(kr *kgo.Record) {
		if kr.Topic != r.topic || kr.Partition != r.part || kr.Offset < r.next.Load() {
			return
		}
		r.next.Store(kr.Offset + 1)
		if kr.LeaderEpoch >= 0 {
			r.sawEpoch(kr.Offset, kr.LeaderEpoch)
		}
		if kr.Attrs.IsControl() {
			return // a transaction's commit or abort marker
		}
		out = append(out, intentlog.Record{
			Key:       kr.Key,
			Value:     kr.Value,
			Headers:   fromKgoHeaders(kr.Headers),
			Partition: kr.Partition,
			Offset:    kr.Offset,
			Timestamp: kr.Timestamp,
		})
	})
	if errors.Is(first, context.Canceled) || errors.Is(first, context.DeadlineExceeded) {
		first = nil // the caller's context, checked by Next
	}
	return out, first, unknown
}

// unknownIDPolls: the polls in a row that may say UNKNOWN_TOPIC_ID of a
// topic the metadata lists before the reader fails with ErrUnknownTopic
// (the topic deleted and created again: the client keeps the id it read
// first, and never reads the new topic). A broker says it a moment after
// a topic's creation too; franz-go asks again five times before it
// reports it, as this does.
const unknownIDPolls = 6

// topicGone is ErrUnknownTopic, the partition count forgotten, when the
// metadata does not know the reader's topic, asked again for
// unknownConfirm (a broker learns of a topic created elsewhere a moment
// late), after the reader's client said it was unknown (err): the topic
// deleted, or deleted and created again (UNKNOWN_TOPIC_ID repeated while
// the metadata lists it, see unknownIDPolls). Otherwise nil: the reader
// waits on (no answer from the metadata either: a broker unreachable).
// Its client, which never read a topic deleted before it started, waits
// for it for ever otherwise: franz-go asks again for an unknown topic.
func (r *reader) topicGone(ctx context.Context, err error) error {
	began := time.Now()
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, 250*time.Millisecond) {
		_, _, merr := r.l.metadata(ctx, r.topic)
		switch {
		case merr == nil && errors.Is(err, kerr.UnknownTopicID):
			if r.unknownIDs++; r.unknownIDs >= unknownIDPolls {
				return fmt.Errorf("%w (the metadata lists the topic under another id than the reader's: "+
					"deleted and created again since the reader started; its position is the old topic's)", mapErr(err))
			}
			return nil
		case !errors.Is(merr, intentlog.ErrUnknownTopic):
			return nil
		case time.Since(began) >= unknownConfirm:
			r.l.forget(r.topic)
			return fmt.Errorf("%w (the metadata does not know the topic)", mapErr(err))
		}
		select {
		case <-ctx.Done():
			return nil // Next returns the context's error
		case <-time.After(delay):
		}
	}
}

// Close closes the reader; a blocked Next returns ErrClosed.
func (r *reader) Close() error {
	r.closeClient()
	r.l.mu.Lock()
	delete(r.l.readers, r)
	r.l.mu.Unlock()
	return nil
}

// closeClient marks the reader closed and closes its client, which wakes a
// Next blocked in PollFetches.
func (r *reader) closeClient() {
	r.mu.Lock()
	cl := r.cl
	r.closed = true
	if r.idle != nil {
		r.idle.Stop()
	}
	r.mu.Unlock()
	if cl != nil {
		cl.Close()
	}
}
