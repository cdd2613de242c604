package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	"golang.org/x/sync/semaphore"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// ProducerConfig tunes a Producer. Zero values take the defaults.
type ProducerConfig struct {
	// Linger is how long a batch waits for more writes before it is sent
	// (default 2ms); a full batch goes at once. A batch not full goes
	// only when no batch is in flight: while one is, writes gather into
	// the next until its answer (or until BatchSize), so that under load
	// the producer sends few large batches, which cost the server far
	// less per write than many small ones, and at low rates a write
	// waits at most Linger plus one answer longer. It waits for answers
	// at most 10 Linger (at least 100ms): one slow batch (a table whose
	// log stalls) does not hold back every other write.
	Linger time.Duration
	// BatchSize is the most mutations per batch (default 1000; at most
	// the server's limits.max_batch_mutations, which fails the writes of
	// a larger batch with invalid_argument).
	BatchSize int
	// MaxBatchBytes is the most bytes per batch, encoded
	// (default 16 MiB; the server refuses a batch over its cap,
	// limits.max_batch_mutations mutations at their limits and at most
	// api.max_write_request_bytes, 32 MiB by default, by ending the
	// stream). A write larger than this fails at once with
	// invalid_argument. A server that tells its cap (max_batch_bytes)
	// gets batches within the lower of the two, and a write over its cap
	// alone fails invalid_argument unsent, instead of failing its batch.
	MaxBatchBytes int
	// MaxInFlight is the most batches sent and not yet answered (default
	// and most: 8, MaxInFlightLimit); all but one of them full.
	MaxInFlight int
	// MaxBuffered is the most writes the producer holds (waiting, in
	// flight, retrying); Write blocks while it holds that many (default
	// 100000), at most until its delivery timeout: then it fails
	// unwritten (ErrFull).
	MaxBuffered int
	// MaxBufferedBytes is the most bytes of writes (encoded, as in a
	// batch) the producer holds; Write blocks while the write would take
	// the bytes held over it, until writes held get their outcome (default
	// 256 MiB: twice what MaxInFlight batches of MaxBatchBytes take with
	// the defaults, so the batches in flight can be full while the next
	// gather, yet 100000 writes of 1 MiB cannot hold 100 GB). Writes wait
	// in turn: a large one is not passed by smaller ones that came after;
	// one that waits until its delivery timeout fails unwritten (ErrFull).
	// A write larger than this goes alone, once nothing else is held.
	MaxBufferedBytes int
	// RetryBackoff is the first wait before a retry (default 50ms); it
	// doubles up to RetryBackoffMax (default 2s). A server that asks for
	// a longer wait (resource_exhausted with retry_after_ms: over a quota,
	// or the table overloaded) gets it, and for all the table's writes:
	// the producer sends none until the wait ends (writes made meanwhile
	// are held, within MaxBuffered and MaxBufferedBytes); other tables'
	// writes go on. A write stream the server refuses with a RetryInfo
	// detail (RetryDelay: no slot free under api.max_write_streams or
	// api.max_write_streams_per_client, while it still counts a stream
	// that dropped) is opened again after its hint, at most
	// RetryBackoffMax; its writes wait meanwhile.
	RetryBackoff, RetryBackoffMax time.Duration
	// DeliveryTimeout bounds the time from Write to its answer, retries
	// and the wait for room (MaxBuffered, MaxBufferedBytes) included
	// (default 2m): then Write fails with the last error. A
	// batch still unanswered twice this after it was sent gives its
	// stream up: the writes after it go on a new one (its keys after
	// FenceAfterBreak).
	DeliveryTimeout time.Duration
}

func (c ProducerConfig) withDefaults() ProducerConfig {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Linger, 2*time.Millisecond)
	def(&c.RetryBackoff, 50*time.Millisecond)
	def(&c.RetryBackoffMax, 2*time.Second)
	def(&c.DeliveryTimeout, 2*time.Minute)
	defInt(&c.BatchSize, 1000)
	defInt(&c.MaxBatchBytes, 16<<20)
	defInt(&c.MaxInFlight, 8)
	defInt(&c.MaxBuffered, 100000)
	defInt(&c.MaxBufferedBytes, 256<<20)
	return c
}

// FenceAfterBreak is how long a Producer waits, after a stream broke with
// writes in flight, before it sends those writes again or any later write
// of their keys, when their server did not tell its clock: the server
// stamps a write within 5 s of reading it or refuses it
// (internal/proxy.MaxStampDelay), so after this no attempt lost with the
// stream can still get a version, and no lost attempt can overwrite a
// retry or a later write of the same key. A server that tells its clock
// (server_time) refuses, too, a batch it comes to stamp later than its
// stamp_before, the batch's send plus its stamp window (5/6 of this, more
// after such refusals: stampclock.go); the keys of such a batch wait
// until then plus the 1 s left, counted from the send, which covers an
// attempt the network itself delivers late.
const FenceAfterBreak = 6 * time.Second

// Result is what the server answered for one write.
type Result struct {
	// Version is the version the write was stored at (or, if Superseded,
	// stamped with).
	Version uint64
	// Superseded: the store already held a newer version of the key; the
	// event of that version covers this write.
	Superseded bool
	// Unlogged: the write's intent was not logged (a table created
	// independent, whose intent log failed: the server answered
	// intent_logged false); stored, or superseded. No event is guaranteed
	// for it; its key's next logged write, or `wail table reconcile`,
	// brings one.
	Unlogged bool
}

// WriteError is a write that failed. Code is its Connect/gRPC code; when
// Version is not 0 the write was stamped before it failed, and Stored or
// not is what the server knew (a store write whose outcome is unknown may
// have been stored: then its event follows). For a write tried more than
// once whose last attempt knew no version, Version is the latest attempt
// that was stamped, and Message says so; when no attempt with a version is
// known but one was lost with a broken stream, Message says it may have
// been written. A write Close gave up on after such an attempt fails with
// a WriteError that is also ErrClosed. A write whose last attempt was lost
// with a broken stream fails unavailable (or deadline_exceeded, a stream
// given up as stuck), whatever code the transport gave the break.
type WriteError struct {
	Code         connect.Code
	Message      string
	Version      uint64
	IntentLogged bool
	cause        error // Unwrap's (ErrClosed), or nil
}

func (e *WriteError) Error() string { return fmt.Sprintf("wail: %s: %s", e.Code, e.Message) }

// Unwrap returns ErrClosed for a write Close gave up on, ErrFull for one
// that found no room in the producer, or nil.
func (e *WriteError) Unwrap() error { return e.cause }

// ErrClosed: a write after Close, or one still waiting when Close gave up
// (one sent and unanswered may have been written). When an earlier
// attempt of the write was stamped, the error is a *WriteError with that
// version (errors.As), which is also ErrClosed (errors.Is).
var ErrClosed = errors.New("wail: producer closed")

// Producer batches the writes of many goroutines into few large batches
// on one ProducerService.WriteStream: each Write waits for its own answer,
// while the producer sends what they wrote every Linger (or, while a batch
// is in flight, at its answer) or BatchSize writes, MaxInFlight batches at
// a time, and retries what can be retried.
//
// Order: writes of one key are answered, and get versions, in the order
// their Writes were called (a key is in at most one batch in flight; later
// writes of it wait for that batch's answer). So a write the caller saw
// answered before it wrote the key again always has the lower version,
// also across retries. Writes of different keys are not ordered.
//
// Retries: a batch or a write the server refused unwritten (unavailable,
// resource_exhausted, aborted) is sent again after a backoff; a refusal
// resource_exhausted with retry_after_ms (a quota, an overloaded table)
// pauses the writes of that table: none is sent until that wait passed,
// since the server would refuse them too (Write and Close still return
// when their contexts end; other tables' writes go on); a write
// stamped whose store write failed with an unknown outcome is written
// again, with a new, higher version. A broken stream is reopened; its
// writes in flight may or may not have been written, so they and every
// later write of their keys wait FenceAfterBreak before they are sent
// again: a lost attempt cannot be stamped after that, so a retry or later
// write of the key always gets the higher version and the event after.
// A write that ends in an error may still have been written (its event
// then follows); the WriteError says what the server knew.
//
// A Producer is safe for concurrent use. Close it to flush.
type Producer struct {
	cfg    ProducerConfig
	fence  time.Duration // FenceAfterBreak (tests shorten it)
	client wailv1connect.ProducerServiceClient
	// closeIdle closes the HTTP client's idle connections (nil: none to
	// close): a stream ended unauthenticated is reopened on a new one.
	closeIdle func()

	space chan struct{}       // MaxBuffered tokens
	bytes *semaphore.Weighted // MaxBufferedBytes
	// stopped is done when Close is called (as stop is closed): it ends
	// a Write waiting for bytes.
	stopped     context.Context
	stopStopped context.CancelFunc
	// inbox holds the writes not yet taken by the loop; notify tells the
	// loop there are some. Writes hand over under mu without waiting for
	// the loop, which takes them all at once.
	mu     sync.Mutex
	inbox  []*pending
	closed bool // Close was called: no write enters the inbox
	notify chan struct{}
	stop   chan struct{} // Close was called: send what is held, then stop
	abort  chan struct{} // Close gave up: fail what is held
	done   chan struct{}
	// answers: the streams' receivers hand the loop what they received.
	answers chan answer

	closeOnce, abortOnce sync.Once
}

// pending is one write.
type pending struct {
	m        *wailv1.Mutation
	n        uint64    // arrival order
	key      string    // table and key
	size     int       // bytes in the batch
	held     int64     // bytes of MaxBufferedBytes it holds
	at       time.Time // when Write was called
	deadline time.Time
	result   chan outcome // buffered 1
	lastErr  error
	// stamped is the latest failed attempt the server had stamped (its
	// Version set): it may have been written. A later attempt's error
	// that knows of no version reports it instead of "nothing written".
	stamped *WriteError
	// lost: an attempt was lost with a broken stream before its answer;
	// it may have been written, at a version not known. Reported like
	// stamped when no attempt with a version is known.
	lost bool
	// notBefore: sent again no earlier (a backoff or a fence).
	notBefore time.Time
	tries     int
	picked    bool // take's scratch
	// answered: Write has its outcome (a write in flight past its
	// delivery timeout gets it before its batch's answer).
	answered bool
}

type outcome struct {
	r   Result
	err error
}

// MaxInFlightLimit is the most ProducerConfig.MaxInFlight may be: a
// server reads at least this many batches of a stream at once
// (api.write_stream_in_flight), and a batch sent must be read, and
// stamped, at once. One that waited unread in the stream could be stamped
// after FenceAfterBreak, over a newer write of its key.
const MaxInFlightLimit = 8

// NewProducer returns a producer on the server o names (o.H2C and
// o.HTTP2 are set for it: write streams need HTTP/2). It does not
// connect: the first write does. It fails with a *WriteError
// (invalid_argument) when cfg.MaxInFlight is over MaxInFlightLimit.
func NewProducer(o Options, cfg ProducerConfig) (*Producer, error) {
	if cfg.MaxInFlight > MaxInFlightLimit {
		return nil, &WriteError{Code: connect.CodeInvalidArgument, Message: fmt.Sprintf(
			"MaxInFlight %d is over %d (MaxInFlightLimit): a server reads only that many batches of a stream at once, and a batch left unread could be written after a newer write of its key", cfg.MaxInFlight, MaxInFlightLimit)}
	}
	o.H2C, o.HTTP2 = true, true
	base, err := o.BaseURL()
	if err != nil {
		return nil, err
	}
	hc, err := o.HTTPClient()
	if err != nil {
		return nil, err
	}
	p := newProducer(wailv1connect.NewProducerServiceClient(hc, base, o.connectOptions()...), cfg, FenceAfterBreak)
	p.closeIdle = hc.CloseIdleConnections
	return p, nil
}

func newProducer(c wailv1connect.ProducerServiceClient, cfg ProducerConfig, fence time.Duration) *Producer {
	cfg = cfg.withDefaults()
	p := &Producer{cfg: cfg, fence: fence, client: c, space: make(chan struct{}, cfg.MaxBuffered),
		bytes:  semaphore.NewWeighted(int64(cfg.MaxBufferedBytes)),
		notify: make(chan struct{}, 1), stop: make(chan struct{}), abort: make(chan struct{}), done: make(chan struct{}),
		answers: make(chan answer, cfg.MaxInFlight+1)}
	p.stopped, p.stopStopped = context.WithCancel(context.Background())
	go p.run()
	return p
}

// Put writes value to key of table and waits for its answer.
func (p *Producer) Put(ctx context.Context, table string, key, value []byte) (Result, error) {
	return p.Write(ctx, &wailv1.Mutation{Table: table, Key: key, Value: value, Op: wailv1.Op_OP_UPSERT})
}

// Delete deletes key of table and waits for its answer.
func (p *Producer) Delete(ctx context.Context, table string, key []byte) (Result, error) {
	return p.Write(ctx, &wailv1.Mutation{Table: table, Key: key, Op: wailv1.Op_OP_DELETE})
}

// Write sends m in the next batch and waits for its answer. A ctx that
// ends before the write is handed over to the producer (before the call,
// or while it waits for room) fails it unsent, with ctx's error. If ctx
// ends after, Write returns ctx's error and the write goes
// on without a waiter (it may be written): the producer reads m until
// then, so m must not be changed after Write, even once it returned
// ctx's error. An answer that came before ctx ended is returned, not
// ctx's error.
func (p *Producer) Write(ctx context.Context, m *wailv1.Mutation) (Result, error) {
	size, err := p.check(m)
	if err != nil {
		return Result{}, err
	}
	// The delivery timeout counts from the call: the wait for room
	// (MaxBuffered, MaxBufferedBytes) is part of it.
	deadline := time.Now().Add(p.cfg.DeliveryTimeout)
	held := int64(min(size, p.cfg.MaxBufferedBytes)) // a larger write takes it all: it goes alone
	if err := p.holdBytes(ctx, held, deadline); err != nil {
		return Result{}, err
	}
	if err := p.holdSpace(ctx, deadline); err != nil {
		p.bytes.Release(held)
		return Result{}, err
	}
	if err := ctx.Err(); err != nil { // ended before it was handed over: nothing sent
		<-p.space
		p.bytes.Release(held)
		return Result{}, err
	}
	now := time.Now()
	w := &pending{m: m, key: m.GetTable() + "\x00" + string(m.GetKey()), size: size, held: held, at: now,
		deadline: deadline, result: make(chan outcome, 1)}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.space
		p.bytes.Release(held)
		return Result{}, ErrClosed
	}
	p.inbox = append(p.inbox, w)
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default: // the loop was told already
	}
	select {
	case o := <-w.result:
		return o.r, o.err
	case <-ctx.Done():
		select {
		case o := <-w.result: // answered before: say so, not "canceled"
			return o.r, o.err
		default:
			return Result{}, ctx.Err()
		}
	}
}

// holdBytes takes n bytes of MaxBufferedBytes, waiting until writes held
// give them back, ctx ends (its error), Close is called (ErrClosed) or
// the write's delivery timeout passes (fullError).
func (p *Producer) holdBytes(ctx context.Context, n int64, deadline time.Time) error {
	if p.bytes.TryAcquire(n) {
		return nil
	}
	wait, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	defer context.AfterFunc(p.stopped, cancel)()
	if err := p.bytes.Acquire(wait, n); err != nil {
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case p.stopped.Err() != nil:
			return ErrClosed
		}
		return fullError("MaxBufferedBytes")
	}
	return nil
}

// holdSpace takes one of MaxBuffered's tokens, waiting as holdBytes.
func (p *Producer) holdSpace(ctx context.Context, deadline time.Time) error {
	select {
	case p.space <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case p.space <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.stop:
		return ErrClosed
	case <-t.C:
		return fullError("MaxBuffered")
	}
}

// ErrFull: a write waited for room in the producer (it held MaxBuffered
// writes, or MaxBufferedBytes) for its whole delivery timeout, and was
// not written. The error is a *WriteError, deadline_exceeded, which is
// also ErrFull (errors.Is).
var ErrFull = errors.New("wail: producer full")

// fullError is the error of a write that found no room (limit: the
// ProducerConfig field that held it back) within its delivery timeout.
func fullError(limit string) error {
	return &WriteError{Code: connect.CodeDeadlineExceeded, cause: ErrFull, Message: "not written: the producer was full (" + limit +
		" held by writes waiting for their answers) for the whole delivery timeout; the server answers too slowly or not at all"}
}

// check refuses a write that cannot go in a batch (it would fail to be
// encoded, or make the server refuse the batch, and so break the stream
// at each try) and returns its size in a batch.
func (p *Producer) check(m *wailv1.Mutation) (int, error) {
	invalid := func(msg string) (int, error) {
		return 0, &WriteError{Code: connect.CodeInvalidArgument, Message: msg}
	}
	if !utf8.ValidString(m.GetTable()) || !utf8.ValidString(m.GetValueJson()) {
		return invalid("the table name and value_json must be UTF-8")
	}
	switch op := m.GetOp(); {
	case op != wailv1.Op_OP_UNSPECIFIED && op != wailv1.Op_OP_UPSERT && op != wailv1.Op_OP_DELETE:
		return invalid(fmt.Sprintf("op %s is not a write: use OP_UPSERT or OP_DELETE", op))
	case m.GetValueJson() != "" && len(m.GetValue()) > 0:
		return invalid("set value or value_json, not both")
	case m.GetValueJson() != "" && op == wailv1.Op_OP_DELETE:
		return invalid("a delete has no value")
	}
	n := proto.Size(m)
	size := protowire.SizeTag(2) + protowire.SizeBytes(n) // as a WriteStreamRequest's mutation
	if size > p.cfg.MaxBatchBytes-headBytes {
		return invalid(fmt.Sprintf("the write takes %d bytes in a batch, over the producer's MaxBatchBytes (%d, less %d for the batch's seq and stamp_before)", size, p.cfg.MaxBatchBytes, headBytes))
	}
	return size, nil
}

// headBytes is the most a WriteStreamRequest takes besides its mutations:
// its seq and stamp_before fields (a tag and at most 10 bytes of varint
// each). Counting the seq alone, a batch that filled MaxBatchBytes but for
// it went over once a stamp_before was set (a server up for a year tells
// times of 8 bytes): set to the server's cap, that batch was refused, by
// ending the stream, at each try.
const headBytes = 2 * (1 + 10)

// Close sends what the producer holds, waits for the answers until ctx
// ends, and stops. Writes still waiting then fail with ErrClosed. A write
// fails at its delivery timeout even unanswered. Then, if an attempt lost
// with a broken stream (or a batch still unanswered) could still be
// stamped by a server, Close waits until it no longer can (its keys'
// fence: at most FenceAfterBreak, or a grown stamp window plus 1 s, after
// its send), so that a producer made after this one, here or in another
// process, is not overtaken by it on a key; when ctx ends first, Close
// returns ctx's error.
func (p *Producer) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		close(p.stop)
		p.stopStopped()
	})
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		p.abortOnce.Do(func() { close(p.abort) })
		<-p.done
		return ctx.Err()
	}
}
