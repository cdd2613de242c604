package api

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/proxy"
)

// StreamLimits bound write streams (WriteStream). Zero values: no bound
// on streams, DefaultStreamInFlight batches in flight.
type StreamLimits struct {
	// SlotLimits bound the write streams open: MaxStreams is
	// api.max_write_streams, MaxStreamsPerClient
	// api.max_write_streams_per_client.
	SlotLimits
	// InFlight is how many batches of one stream run at once: the server
	// reads no further batch of a stream while that many are running or
	// answered but not yet taken by the client, so a client that sends
	// without reading its answers stops being read.
	InFlight int
	// MaxBatchBytes is the cap on one batch, encoded (the procedure's
	// read cap: a larger batch ends the stream unread), told in every
	// answer (max_batch_bytes) so that a producer keeps its batches
	// within it; 0: not told.
	MaxBatchBytes int64
}

// BodyCharge is what a write stream's body holds of the process's
// budget of request bodies (the server's api.max_request_bytes_in_flight),
// when the stream's context carries one (WithBodyCharge): Taken returns
// the bytes read since its last call, and is called by the goroutine
// that reads the stream; Release gives n bytes back. A batch holds the
// bytes it was read from until its answer is sent; what the stream still
// holds when it ends, its owner gives back.
type BodyCharge interface {
	Taken() int64
	Release(n int64)
}

type bodyChargeKey struct{}

// WithBodyCharge returns ctx carrying c, for WriteStream.
func WithBodyCharge(ctx context.Context, c BodyCharge) context.Context {
	return context.WithValue(ctx, bodyChargeKey{}, c)
}

// noCharge is the BodyCharge of a stream without a budget.
type noCharge struct{}

func (noCharge) Taken() int64  { return 0 }
func (noCharge) Release(int64) {}

func bodyChargeOf(ctx context.Context) BodyCharge {
	if c, ok := ctx.Value(bodyChargeKey{}).(BodyCharge); ok {
		return c
	}
	return noCharge{}
}

// DefaultStreamInFlight is StreamLimits.InFlight when unset, and its
// least: a Go producer (client.MaxInFlight) sends up to this many batches
// unanswered, and a batch it sent must be read, and stamped, at once. One
// left unread in the stream behind a full window was read, and stamped,
// only when a slot freed: after the producer, its stream broken, had
// waited client.FenceAfterBreak and written the key again, so the late
// older write overwrote the newer one.
const DefaultStreamInFlight = 8

// writeStreams words the refusals of write streams.
var writeStreams = slotKind{what: "write streams", total: "api.max_write_streams", perClient: "api.max_write_streams_per_client",
	hint: "one stream carries many batches at once: share it (a stream that dropped is counted until the server sees it end)"}

// WithStreamLimits sets the write streams' limits; call it before
// serving.
func (s *ProducerService) WithStreamLimits(l StreamLimits) *ProducerService {
	l.InFlight = max(l.InFlight, DefaultStreamInFlight)
	s.inFlight = l.InFlight
	s.maxBatchBytes = uint64(max(l.MaxBatchBytes, 0))
	s.streams = newSlots(writeStreams, l.SlotLimits)
	return s
}

// WriteStream runs the batches of a stream, up to StreamLimits.InFlight
// at once (they merge with each other and with other requests like any
// writes), and answers each when it is done. A batch runs to its end even
// if the client goes away meanwhile (bounded by the visibility window like
// any write): what a client saw answered was written as answered, and
// what it did not see answered was written or not, with its intents logged
// before its store writes either way (DESIGN.md, "Write streams"). Close
// ends every stream: each stops reading, answers what it runs, and ends.
func (s *ProducerService) WriteStream(ctx context.Context, stream *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
	release, err := s.streams.take(hostOf(stream.Peer().Addr))
	if err != nil {
		return err
	}
	defer release()
	w := &writeStream{s: s, stream: stream, ctx: context.WithoutCancel(ctx), charge: bodyChargeOf(ctx),
		slots:   make(chan struct{}, s.inFlight),
		answers: make(chan streamAnswer, s.inFlight),
		read:    make(chan error, 1), sent: make(chan error, 1), failed: make(chan struct{})}
	go w.send()
	go w.receive()
	var recvErr error
	select {
	case recvErr = <-w.read:
	case <-w.failed: // a send failed
	case <-s.closing:
	case <-ctx.Done():
	}
	w.stop()
	w.running.Wait()
	close(w.answers)
	sendErr := <-w.sent
	switch {
	case ctx.Err() != nil:
		return nil // the client went away
	case recvErr != nil:
		return recvErr // e.g. a message over the size cap
	}
	return sendErr
}

// writeStream is one WriteStream call. A slot is taken before a batch is
// read and given back once its answer was sent: batches running plus
// answers unsent are at most InFlight.
type writeStream struct {
	s       *ProducerService
	stream  *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]
	ctx     context.Context // the batches': without the client's cancellation
	charge  BodyCharge
	slots   chan struct{}
	answers chan streamAnswer
	read    chan error    // the receiver ended (nil: the client closed its side)
	sent    chan error    // the sender ended
	failed  chan struct{} // closed when a send failed

	mu      sync.Mutex
	stopped bool // no batch starts any more
	running sync.WaitGroup
}

// streamAnswer is a batch's answer, and the body bytes the batch holds
// until it is sent.
type streamAnswer struct {
	*wailv1.WriteStreamResponse
	bytes int64
}

// receive reads batches and starts them until the client closes its
// side, the stream fails or stop is called. After stop it may still be
// blocked in Receive: that returns once the handler has returned, and
// the batch it may carry is dropped unanswered (and unwritten).
func (w *writeStream) receive() {
	for {
		w.slots <- struct{}{}
		req, err := w.stream.Receive()
		held := w.charge.Taken()
		if refused := (*refusedBatch)(nil); errors.As(err, &refused) {
			if !w.answer(streamAnswer{refused.answer, held}) {
				<-w.slots
				w.read <- nil
				return
			}
			continue
		}
		if err != nil {
			<-w.slots
			if errors.Is(err, io.EOF) {
				err = nil
			}
			w.read <- err
			return
		}
		if !w.start(req, held) {
			<-w.slots
			w.read <- nil
			return
		}
	}
}

// start runs req, read from held bytes, unless the stream was stopped.
func (w *writeStream) start(req *wailv1.WriteStreamRequest, held int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return false
	}
	w.running.Go(func() { w.answers <- streamAnswer{w.s.streamBatch(w.ctx, req), held} })
	return true
}

// answer answers a batch not run (refused whole by the guard) unless
// the stream was stopped.
func (w *writeStream) answer(a streamAnswer) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return false
	}
	w.running.Go(func() { w.answers <- a })
	return true
}

func (w *writeStream) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

// send sends the answers; after a failed send it drops the rest and
// stops the stream.
func (w *writeStream) send() {
	var err error
	for a := range w.answers {
		if err == nil {
			a.ServerTime = w.s.p.ServerTime()
			a.MaxBatchBytes = w.s.maxBatchBytes
			if err = w.stream.Send(a.WriteStreamResponse); err != nil {
				w.stop()
				close(w.failed)
			}
		}
		w.charge.Release(a.bytes)
		<-w.slots
	}
	w.sent <- err
}

// streamBatch runs one batch of a stream. Unlike Write, it does not
// refuse the whole batch for a malformed mutation (a bad op, value and
// value_json both set): that mutation alone is answered invalid_argument
// and the others are written, since a stream's batch carries the writes
// of many independent writers (client.Producer), and one writer's bug
// must not fail the others' writes for good.
func (s *ProducerService) streamBatch(ctx context.Context, req *wailv1.WriteStreamRequest) *wailv1.WriteStreamResponse {
	out := &wailv1.WriteStreamResponse{Seq: req.Seq}
	err := s.admitted()
	if err == nil {
		err = s.fits(req.Mutations)
	}
	if err != nil {
		out.Error = errorProto(err)
		return out
	}
	muts := make([]proxy.Mutation, 0, len(req.Mutations))
	var bad map[int]error
	for i, m := range req.Mutations {
		mut, err := mutation(i, m)
		if err != nil {
			if bad == nil {
				bad = map[int]error{}
			}
			bad[i] = err
			continue
		}
		mut.StampBefore = req.GetStampBefore()
		muts = append(muts, mut)
	}
	var res []proxy.Result
	if len(muts) > 0 {
		res = s.p.Write(ctx, muts)
	}
	if bad == nil {
		out.Results = resultsProto(res)
		return out
	}
	out.Results = make([]*wailv1.WriteResult, len(req.Mutations))
	for i := range req.Mutations {
		if err, ok := bad[i]; ok {
			out.Results[i] = &wailv1.WriteResult{Error: errorProto(err)}
			continue
		}
		out.Results[i], res = toProto(res[0]), res[1:]
	}
	return out
}

// errorProto is the Error of a batch refused as a whole, with the wait
// the refusal asks for (retryHeader) as retry_after_ms.
func errorProto(err error) *wailv1.Error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		ms, _ := strconv.ParseInt(ce.Meta().Get(retryHeader), 10, 64)
		return &wailv1.Error{Code: ce.Code().String(), Message: ce.Message(), RetryAfterMs: ms}
	}
	return &wailv1.Error{Code: writeCode(err).String(), Message: writeErr(err).Error()}
}
