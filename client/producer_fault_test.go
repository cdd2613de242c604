package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// TestProducerRefusesMalformedWrites: a write that cannot be encoded, or
// that the server refuses as malformed (an op that is not a write, value
// and value_json both set, a delete with a value), fails at once with
// invalid_argument, before it joins a batch of other writes; it does not
// break the stream (and
// fence the keys of everything in flight) again and again until its
// delivery timeout.
func TestProducerRefusesMalformedWrites(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		m    *wailv1.Mutation
	}{
		{name: "table not UTF-8", m: &wailv1.Mutation{Table: "t\xff", Key: []byte("k")}},
		{name: "value_json not UTF-8", m: &wailv1.Mutation{Table: "t", Key: []byte("k"), ValueJson: "{\"a\":\"\xff\"}"}},
		// The server refuses a unary batch whole for these: in a batch of
		// other callers' writes they would fail those too.
		{name: "value and value_json", m: &wailv1.Mutation{Table: "t", Key: []byte("k"), Value: []byte("v"), ValueJson: "{}"}},
		{name: "delete with value_json", m: &wailv1.Mutation{Table: "t", Key: []byte("k"), Op: wailv1.Op_OP_DELETE, ValueJson: "{}"}},
		{name: "op not a write", m: &wailv1.Mutation{Table: "t", Key: []byte("k"), Op: wailv1.Op_OP_ABORT}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newScript()
			p := serveScript(t, s, ProducerConfig{Linger: time.Millisecond, RetryBackoff: time.Millisecond, DeliveryTimeout: 3 * time.Second}, 10*time.Millisecond)
			start := time.Now()
			_, err := p.Write(context.Background(), tc.m)
			var werr *WriteError
			if !errors.As(err, &werr) || werr.Code != connect.CodeInvalidArgument {
				t.Fatalf("a malformed write: %v after %s; want invalid_argument", err, time.Since(start).Round(time.Millisecond))
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("a malformed write failed after %s: it was retried", d)
			}
			if _, err := p.Put(context.Background(), "t", []byte("good"), nil); err != nil {
				t.Fatalf("a good write after it: %v", err)
			}
		})
	}
}

// TestProducerBatchBytes: many writes of the largest values a server
// takes by default (limits.max_value_bytes, 1 MiB) go in batches the
// server takes (api.max_write_request_bytes, 32 MiB by default), instead
// of one batch it refuses again and again; a write over MaxBatchBytes
// fails at once.
func TestProducerBatchBytes(t *testing.T) {
	t.Parallel()
	s := newScript()
	// A batch the server refused would be refused at every try, until the
	// delivery timeout: 30 s, not the few seconds 40 MiB take, which under
	// -race on a loaded machine were more than 4 s.
	p := serveHandler(t, s, ProducerConfig{Linger: 50 * time.Millisecond, RetryBackoff: time.Millisecond, DeliveryTimeout: 30 * time.Second},
		10*time.Millisecond, connect.WithReadMaxBytes(32<<20))
	value := bytes.Repeat([]byte("v"), 1<<20)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			if _, err := p.Put(context.Background(), "t", fmt.Appendf(nil, "k%d", i), value); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a write of 1 MiB among 40: %v", err)
	}
	huge := bytes.Repeat([]byte("v"), 17<<20) // over the default MaxBatchBytes
	_, err := p.Put(context.Background(), "t", []byte("huge"), huge)
	var werr *WriteError
	if !errors.As(err, &werr) || werr.Code != connect.CodeInvalidArgument {
		t.Fatalf("a write over MaxBatchBytes: %v; want invalid_argument", err)
	}
}

// stuck is a ProducerService whose WriteStream never reads nor answers,
// as a server that hangs: HTTP/2 flow control then stops the client's
// sends.
type stuck struct {
	wailv1connect.UnimplementedProducerServiceHandler
}

func (stuck) WriteStream(ctx context.Context, _ *connect.BidiStream[wailv1.WriteStreamRequest, wailv1.WriteStreamResponse]) error {
	<-ctx.Done()
	return nil
}

// TestProducerCloseWhileSendBlocks: Close gives up when its context ends
// even while a batch cannot be sent (the server stopped reading), and the
// write fails with ErrClosed.
func TestProducerCloseWhileSendBlocks(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewProducerServiceHandler(stuck{}))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	hc, err := Options{Addr: srv.URL, H2C: true}.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	p := newProducer(wailv1connect.NewProducerServiceClient(hc, srv.URL), ProducerConfig{Linger: time.Millisecond}, time.Millisecond)
	written := make(chan error, 1)
	go func() {
		_, err := p.Put(context.Background(), "t", []byte("k"), bytes.Repeat([]byte("v"), 8<<20)) // over the flow-control windows
		written <- err
	}()
	for len(p.space) == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the batch is being sent
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		closed <- p.Close(ctx)
	}()
	select {
	case err := <-closed:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(3 * time.Second):
		srv.CloseClientConnections() // lets the producer go
		t.Fatal("Close did not return 3s after its context ended: the producer's loop is stuck in a send")
	}
	if err := <-written; !errors.Is(err, ErrClosed) {
		t.Fatalf("the write: %v; want ErrClosed", err)
	}
}

// TestProducerFenceOfAnExpiredWrite: a write lost with a broken stream
// that then fails at its delivery timeout leaves its key fenced; a later
// write of the key goes when the fence ends (or at once if it has), not
// at its own delivery timeout, unsent.
func TestProducerFenceOfAnExpiredWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		after time.Duration // from the lost write's failure to the next write
	}{
		{name: "next write during the fence"},
		{name: "next write after the fence", after: 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newScript()
			s.fail = func(n int) string {
				if n == 1 {
					return "break"
				}
				return ""
			}
			// The lost write fails during the fence; a write right after it
			// has 2*400-500ms of slack for the break to be seen.
			const fence = 500 * time.Millisecond
			p := serveScript(t, s, ProducerConfig{Linger: time.Millisecond, RetryBackoff: time.Millisecond, DeliveryTimeout: 400 * time.Millisecond}, fence)
			if _, err := p.Put(context.Background(), "t", []byte("k"), nil); err == nil {
				t.Fatal("the write lost with the stream was answered")
			}
			time.Sleep(tc.after)
			if _, err := p.Put(context.Background(), "t", []byte("k"), nil); err != nil {
				t.Fatalf("the next write of the key: %v", err)
			}
		})
	}
}

// TestProducerPumpWaitsForReopen: while no stream can be opened (the
// reopen backoff), pump asks to look again when it ends, not at once (a
// loop spinning on the CPU for the whole backoff).
func TestProducerPumpWaitsForReopen(t *testing.T) {
	t.Parallel()
	now := time.Now()
	p := &Producer{cfg: ProducerConfig{}.withDefaults()}
	l := &loop{p: p, flights: map[uint64]*flight{}, busy: map[string]bool{}, fence: map[string]time.Time{},
		queued: map[string]int{}, seen: map[string]bool{}, reopenAt: now.Add(time.Second)}
	l.add(&pending{m: &wailv1.Mutation{Table: "t", Key: []byte("k")}, key: "t\x00k", at: now.Add(-time.Second), deadline: now.Add(time.Minute)})
	if wake := l.pump(false); wake.Before(l.reopenAt) {
		t.Fatalf("pump looks again in %s, before the stream can be reopened (in %s)", time.Until(wake).Round(time.Millisecond), time.Until(l.reopenAt).Round(time.Millisecond))
	}
	if len(l.queue) != 1 {
		t.Fatalf("%d writes queued, want the one back", len(l.queue))
	}
}

// TestProducerDeliveryTimeoutInFlight: a write whose batch the server
// never answers fails at its delivery timeout (it may have been written),
// and the next write of its key waits for that batch's answer: it is not
// in flight together with it.
func TestProducerDeliveryTimeoutInFlight(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s := &slowServer{arrived: make(chan int, 100), hold: func(n int) {
		if n == 1 {
			<-release
		}
	}}
	// The next write of the key gets what is left of its 2 s once the
	// first is answered: room for a loaded machine (500 ms failed 2 runs
	// of 7 under -race with the other tests).
	p := serveHandler(t, s, ProducerConfig{Linger: time.Millisecond, DeliveryTimeout: 2 * time.Second}, time.Millisecond)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the server closes
	first := make(chan error, 1)
	go func() { _, err := p.Put(context.Background(), "t", []byte("k"), nil); first <- err }()
	<-s.arrived
	select {
	case err := <-first:
		var werr *WriteError
		if !errors.As(err, &werr) || werr.Code != connect.CodeDeadlineExceeded {
			t.Fatalf("a write never answered: %v; want deadline_exceeded", err)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("a write never answered did not fail at its delivery timeout (2s)")
	}
	next := make(chan error, 1)
	go func() { _, err := p.Put(context.Background(), "t", []byte("k"), nil); next <- err }()
	time.Sleep(50 * time.Millisecond)
	if n := len(s.seen()); n != 1 {
		t.Fatalf("the server saw %d batches while the first write of the key was unanswered; want 1", n)
	}
	once.Do(func() { close(release) })
	if err := <-next; err != nil {
		t.Fatalf("the next write of the key after the answer: %v", err)
	}
}

// forbid refuses, as the server's guard did before it answered such a
// batch per mutation (internal/api, refuseBatch), a WriteStream message
// naming table "forbidden": PermissionDenied from Receive, which ends the
// stream. It tells got when it has such a message
// and refuses it once proceed is closed.
type forbid struct{ got, proceed chan struct{} }

func (forbid) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }
func (forbid) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}
func (f forbid) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		return next(ctx, forbidConn{conn, f})
	}
}

type forbidConn struct {
	connect.StreamingHandlerConn
	f forbid
}

func (c forbidConn) Receive(m any) error {
	if err := c.StreamingHandlerConn.Receive(m); err != nil {
		return err
	}
	for _, mu := range m.(*wailv1.WriteStreamRequest).GetMutations() {
		if mu.GetTable() == "forbidden" {
			c.f.got <- struct{}{}
			<-c.f.proceed
			return connect.NewError(connect.CodePermissionDenied, errors.New(`no permission on table "forbidden"`))
		}
	}
	return nil
}

// TestProducerPermissionDeniedMidStream: a server that ends the stream
// with permission_denied for a batch naming a table the caller may not
// write (as wail's does) fails the writes in flight, not the writes
// queued meanwhile: they go on a new stream.
func TestProducerPermissionDeniedMidStream(t *testing.T) {
	t.Parallel()
	s := newScript()
	f := forbid{got: make(chan struct{}, 1), proceed: make(chan struct{})}
	p := serveHandler(t, s, ProducerConfig{Linger: time.Millisecond, MaxInFlight: 1, DeliveryTimeout: 3 * time.Second}, time.Millisecond, connect.WithInterceptors(f))
	denied := make(chan error, 1)
	go func() { _, err := p.Put(context.Background(), "forbidden", []byte("k"), nil); denied <- err }()
	<-f.got // its batch is in flight, not yet refused
	allowed := make(chan error, 1)
	go func() { _, err := p.Put(context.Background(), "ok", []byte("k"), nil); allowed <- err }()
	for len(p.space) < 2 {
		time.Sleep(time.Millisecond) // queued
	}
	close(f.proceed)
	if err := <-allowed; err != nil {
		t.Fatalf("a write of a table allowed, queued while another's batch was refused: %v", err)
	}
	var werr *WriteError
	if err := <-denied; !errors.As(err, &werr) || werr.Code != connect.CodePermissionDenied {
		t.Fatalf("the write of the forbidden table: %v; want permission_denied", err)
	}
}

// TestProducerFenceForgotten: the fences whose time has passed are
// dropped, even of keys no write comes to again (a write that failed
// during its fence): a long outage with unique keys does not grow the
// producer's memory without bound.
func TestProducerFenceForgotten(t *testing.T) {
	t.Parallel()
	now := time.Now()
	p := &Producer{cfg: ProducerConfig{}.withDefaults(), fence: time.Second}
	l := &loop{p: p, flights: map[uint64]*flight{}, busy: map[string]bool{}, fence: map[string]time.Time{},
		queued: map[string]int{}, seen: map[string]bool{}}
	for i := range 1000 {
		l.fence[fmt.Sprintf("t\x00gone%d", i)] = now.Add(-time.Millisecond) // their writes failed meanwhile
	}
	l.fence["t\x00fenced"] = now.Add(time.Minute)
	w := &pending{m: &wailv1.Mutation{Table: "t", Key: []byte("k")}, key: "t\x00k", at: now, deadline: now.Add(time.Minute)}
	l.flights[1] = &flight{writes: []*pending{w}, deadline: w.deadline}
	l.busy[w.key] = true
	l.broken(connect.NewError(connect.CodeUnavailable, errors.New("broken")))
	if len(l.fence) != 2 {
		t.Fatalf("%d keys fenced after a break; want 2 (the lost write's and the one still fenced)", len(l.fence))
	}
}

// TestProducerCloseBoundedByDeliveryTimeout: Close with a context that
// never ends still returns against a server that never answers: once
// every write held has failed at its delivery timeout, nothing is left to
// wait for.
func TestProducerCloseBoundedByDeliveryTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s := &slowServer{arrived: make(chan int, 100), hold: func(int) { <-release }}
	p := serveHandler(t, s, ProducerConfig{Linger: time.Millisecond, DeliveryTimeout: 200 * time.Millisecond}, time.Millisecond)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the server closes
	written := make(chan error, 1)
	go func() { _, err := p.Put(context.Background(), "t", []byte("k"), nil); written <- err }()
	<-s.arrived
	closed := make(chan error, 1)
	go func() { closed <- p.Close(context.Background()) }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(3 * time.Second):
		once.Do(func() { close(release) }) // lets Close return
		t.Fatal("Close did not return 3s after the only write held failed at its delivery timeout (200ms)")
	}
	var werr *WriteError
	if err := <-written; !errors.As(err, &werr) || werr.Code != connect.CodeDeadlineExceeded {
		t.Fatalf("the write: %v; want deadline_exceeded", err)
	}
}

// TestProducerMaxBatchBytesIsTheRequest: MaxBatchBytes bounds the whole
// request, its seq included: set to the server's cap, a write that fills
// it fails at once instead of making a batch the server refuses at each
// try.
func TestProducerMaxBatchBytesIsTheRequest(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	s := newScript()
	p := serveHandler(t, s, ProducerConfig{Linger: time.Millisecond, RetryBackoff: time.Millisecond, MaxBatchBytes: limit, DeliveryTimeout: 2 * time.Second},
		time.Millisecond, connect.WithReadMaxBytes(limit))
	var m *wailv1.Mutation
	for n := limit; n > limit-100 && m == nil; n-- { // a write of exactly MaxBatchBytes as a mutation
		c := &wailv1.Mutation{Table: "t", Key: []byte("k"), Value: bytes.Repeat([]byte("v"), n)}
		if proto.Size(&wailv1.WriteStreamRequest{Mutations: []*wailv1.Mutation{c}}) == limit {
			m = c
		}
	}
	if m == nil {
		t.Fatal("no write of exactly the limit")
	}
	start := time.Now()
	_, err := p.Write(context.Background(), m)
	var werr *WriteError
	if !errors.As(err, &werr) || werr.Code != connect.CodeInvalidArgument || time.Since(start) > time.Second {
		t.Fatalf("a write of MaxBatchBytes, the server's cap, without the seq: %v after %s; want invalid_argument at once", err, time.Since(start).Round(time.Millisecond))
	}
}
