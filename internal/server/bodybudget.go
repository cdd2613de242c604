package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/schemaregistry"
)

// The process's budget of request bodies in flight
// (api.max_request_bytes_in_flight). Each request's cap bounds one body,
// api.read_timeout how long it may take to arrive, but not how many
// arrive at once: api.max_connections times
// api.max_streams_per_connection calls, each holding what it read of
// its body until it ends (and connect's buffer grows by doubling, so
// about twice that). Clients that sent most of a large Write body and
// stalled held their bandwidth times api.read_timeout (48 bodies of
// 2 MiB held 192 MiB of heap; TestRequestBodiesInFlightBounded).
//
// A body is charged as it is read, not by its Content-Length: a client
// that only announces a large body must not take the budget from the
// others without sending it. A read takes at most what is left; with
// nothing left, the call fails with resource_exhausted naming the
// setting and a RetryInfo detail (budgetRetryDelay). A call's bytes are
// given back when it ends; a write stream's batch's once it is answered
// (api.BodyCharge), the stream's rest when it ends, and a write stream
// waits for its own batches rather than fail (chargedBody.freed); an event stream's
// (Subscribe, Consume) once its request is read, as the stream may live
// for days: streams left open would otherwise take the budget from every
// other call (TestEventStreamsHoldNoBudget).

// budgetRetryDelay is the wait a call refused by the budget is told: the
// budget frees as calls end, within api.read_timeout for stalled ones.
const budgetRetryDelay = time.Second

// bodyBudget counts the bytes of request bodies held.
type bodyBudget struct {
	max     int64
	used    atomic.Int64
	held    prometheus.GaugeFunc
	refused prometheus.Counter
}

func newBodyBudget(reg prometheus.Registerer, max int64) *bodyBudget {
	b := &bodyBudget{max: max,
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "wail_api_request_bytes_refused_total",
			Help: "Calls refused (resource_exhausted) because api.max_request_bytes_in_flight bytes of request bodies were held."}),
	}
	b.held = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "wail_api_request_bytes_in_flight",
		Help: "Bytes of request bodies held (read and not yet done with), up to api.max_request_bytes_in_flight."},
		func() float64 { return float64(b.used.Load()) })
	reg.MustRegister(b.held, b.refused)
	return b
}

// left is what the budget has left.
func (b *bodyBudget) left() int64 { return b.max - b.used.Load() }

// charge counts n bytes read, unless they take the budget past its max
// (reads that ran at once, each within what was left when it began).
func (b *bodyBudget) charge(n int64) bool {
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *bodyBudget) give(n int64) { b.used.Add(-n) }

// errBudget is the refusal of a call whose body does not fit.
func (b *bodyBudget) errBudget(rpc bool) error {
	b.refused.Inc()
	msg := fmt.Sprintf("%d bytes of request bodies are held, the most this server holds at once (api.max_request_bytes_in_flight); "+
		"retry later, or raise api.max_request_bytes_in_flight if the memory is there", b.max)
	if !rpc {
		// The endpoint words its own answer: the registry 429, which its
		// clients retry (TestRegistryBodyRefusedByBudgetIsRetried).
		return fmt.Errorf("%w: %s", schemaregistry.ErrBusy, msg)
	}
	err := errors.New(msg)
	ce := connect.NewError(connect.CodeResourceExhausted, err)
	if d, derr := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(budgetRetryDelay)}); derr == nil {
		ce.AddDetail(d)
	}
	return ce
}

// chargedBody charges what is read of a body to the budget; release
// gives back what it holds. Its reads are sequential (one reader per
// body); Release and release may come from other goroutines, and
// reads may come after release.
type chargedBody struct {
	io.ReadCloser
	b   *bodyBudget
	rpc bool
	// untilEOF gives the bytes back once the body has been read: an
	// event stream's request, which the stream keeps for as long as it
	// lives (api.max_subscriptions bounds those).
	untilEOF bool
	// freed, a write stream's, is signalled when its bytes are given
	// back (a batch answered, the call ended): a read that finds the
	// budget full while batches of its own stream hold bytes waits for
	// them instead of failing the stream. Refused, a producer pipelining
	// large batches (client.Producer: up to 8) lost its stream on an idle
	// server whenever the budget held fewer than it had in flight, again
	// on every retry (TestWriteStreamWaitsForItsOwnBatches). Those bytes
	// come back once the batches are answered, or their answers dropped.
	freed chan struct{}
	// batch, a write stream's, bounds the arrival of each batch.
	batch batchDeadline
	// maxBatch, above 0, caps what a write stream's batch is read from,
	// envelope included, as http.MaxBytesReader caps other bodies: connect
	// reads a batch announced past its cap through to discard it, and
	// that took the whole budget while the client sent it
	// (TestWriteStreamOversizedBatchTakesNoMoreThanItsCap).
	maxBatch int64
	taken    int64 // since the last Taken (the reader's goroutine)

	mu   sync.Mutex
	held int64 // charged, not given back
	// done: release gave back what the call held. A write stream's
	// receiver may still read after its call ended (writeStream.receive);
	// what it reads then is given back at once, as nothing else would.
	done bool
}

func (c *chargedBody) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return c.ReadCloser.Read(p)
	}
	// Nothing is reserved while the read waits: a client that sends
	// nothing must take nothing (a pooled buffer's capacity would have
	// reserved megabytes).
	left := c.b.left()
	for left <= 0 {
		if !c.waitOwn() {
			return 0, c.b.errBudget(c.rpc)
		}
		left = c.b.left()
	}
	n, err := c.ReadCloser.Read(p[:min(int64(len(p)), left)])
	for !c.b.charge(int64(n)) {
		if !c.waitOwn() {
			return 0, c.b.errBudget(c.rpc)
		}
	}
	if n > 0 && c.taken == 0 {
		c.batch.start()
	}
	err = c.batch.explain(err)
	c.taken += int64(n)
	if c.maxBatch > 0 && c.taken > c.maxBatch {
		return n, connect.NewError(connect.CodeResourceExhausted,
			fmt.Errorf("a write stream's batch passes %d bytes, the most one takes (%s)", c.maxBatch,
				capSetting(wailv1connect.ProducerServiceWriteStreamProcedure)))
	}
	c.hold(int64(n))
	if err == io.EOF && c.untilEOF {
		c.release()
	}
	return n, err
}

// waitOwn waits until bytes are given back, if batches of the stream
// hold some (not the message being read: Taken has not counted it to a
// batch yet); false if none do, or the call ended.
func (c *chargedBody) waitOwn() bool {
	if c.freed == nil {
		return false
	}
	c.mu.Lock()
	own := !c.done && c.held-c.taken > 0
	c.mu.Unlock()
	if own {
		c.batch.pause() // the wait is the server's, not the client's
		<-c.freed       // a signal sent since the check is not lost: the read tries again
		c.batch.resume()
	}
	return own
}

func (c *chargedBody) signal() {
	if c.freed != nil {
		select {
		case c.freed <- struct{}{}:
		default:
		}
	}
}

var _ api.BodyCharge = (*chargedBody)(nil)

// Taken implements api.BodyCharge: the bytes read since its last call.
func (c *chargedBody) Taken() int64 {
	c.batch.stop()
	n := c.taken
	c.taken = 0
	return n
}

// hold counts n bytes charged as the call's, or gives them back at once
// once the call ended.
func (c *chargedBody) hold(n int64) {
	c.mu.Lock()
	done := c.done
	if !done {
		c.held += n
	}
	c.mu.Unlock()
	if done {
		c.b.give(n)
	}
}

// Release implements api.BodyCharge. Once the call ended, release gave
// back everything: nothing is given twice.
func (c *chargedBody) Release(n int64) {
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		return
	}
	c.held -= n
	c.mu.Unlock()
	c.b.give(n)
	c.signal()
}

// release gives back what the call still holds, when it ends (an event
// stream's: once its request is read); what is read after is given back
// as it is read.
func (c *chargedBody) release() {
	c.batch.end()
	c.mu.Lock()
	n := c.held
	c.held, c.done = 0, true
	c.mu.Unlock()
	c.b.give(n)
	c.signal()
}

// batchDeadline bounds how long a write stream's batch takes to arrive
// once its first bytes have: api.read_timeout, as any body. The stream
// has no read deadline between batches (it lives for as long as its
// client writes), so a batch begun and stalled held its bytes of the
// budget for as long as its connection lived: a few such streams refused
// every other call for good
// (TestWriteStreamStalledBatchGivesBackItsBytes). Its methods but end
// are called by the stream's reader; without rc, they do nothing. The
// reader may read after the call ended, when the ResponseController
// must not be used (net/http's HTTP/2 writer panics): end, called
// before the handler returns, waits for a deadline being set and makes
// the rest do nothing (TestBatchDeadlineUntouchedAfterCall).
type batchDeadline struct {
	rc      *http.ResponseController
	timeout time.Duration
	running bool // the reader's

	mu    sync.Mutex
	ended bool
}

// set sets the read deadline unless the call ended.
func (d *batchDeadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.ended {
		_ = d.rc.SetReadDeadline(t)
	}
}

// end makes the deadline untouched from now on: the call ends.
func (d *batchDeadline) end() {
	d.mu.Lock()
	d.ended = true
	d.mu.Unlock()
}

// start runs the deadline: a batch's first bytes arrived.
func (d *batchDeadline) start() {
	if d.rc != nil {
		d.running = true
		d.set(time.Now().Add(d.timeout))
	}
}

// stop lifts it: the batch has arrived.
func (d *batchDeadline) stop() {
	if d.running {
		d.running = false
		d.set(time.Time{})
	}
}

// pause lifts it while the reader waits for the budget; resume runs it
// again, whole.
func (d *batchDeadline) pause() {
	if d.running {
		d.set(time.Time{})
	}
}

func (d *batchDeadline) resume() {
	if d.running {
		d.set(time.Now().Add(d.timeout))
	}
}

// explain words a read's deadline error as the batch's.
func (d *batchDeadline) explain(err error) error {
	if d.running && err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return connect.NewError(connect.CodeDeadlineExceeded,
			fmt.Errorf("a write stream's batch did not arrive within %s of its first bytes (api.read_timeout)", d.timeout))
	}
	return err
}
