package client_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
)

// scripted is an event service whose n'th stream (Subscribe or Consume)
// sends script[n]'s messages, then ends without an error (a server that
// shuts down: its streams end cleanly), or with code when set. Streams
// past the script's end send nothing and wait for the client to go.
type scripted struct {
	wailv1connect.UnimplementedEventServiceHandler
	mu    sync.Mutex
	subs  []scriptedStream[wailv1.SubscribeResponse]
	grps  []scriptedStream[wailv1.ConsumeResponse]
	froms []string
}

type scriptedStream[T any] struct {
	msgs []*T
	code connect.Code
	hold bool // after msgs, wait for the client to go
	// last: after msgs, the stream stays open this long, then ends.
	last time.Duration
}

func (s *scripted) Subscribe(ctx context.Context, req *connect.Request[wailv1.SubscribeRequest], st *connect.ServerStream[wailv1.SubscribeResponse]) error {
	s.mu.Lock()
	s.froms = append(s.froms, req.Msg.From)
	n := len(s.froms) - 1
	s.mu.Unlock()
	if n >= len(s.subs) {
		<-ctx.Done()
		return nil
	}
	return play(ctx, st.Send, s.subs[n])
}

func (s *scripted) Consume(ctx context.Context, _ *connect.Request[wailv1.ConsumeRequest], st *connect.ServerStream[wailv1.ConsumeResponse]) error {
	s.mu.Lock()
	s.froms = append(s.froms, "")
	n := len(s.froms) - 1
	s.mu.Unlock()
	if n >= len(s.grps) {
		<-ctx.Done()
		return nil
	}
	return play(ctx, st.Send, s.grps[n])
}

func play[T any](ctx context.Context, send func(*T) error, s scriptedStream[T]) error {
	for _, m := range s.msgs {
		if err := send(m); err != nil {
			return err
		}
	}
	if s.hold {
		<-ctx.Done()
		return nil
	}
	select {
	case <-time.After(s.last):
	case <-ctx.Done():
		return nil
	}
	if s.code != 0 {
		return connect.NewError(s.code, errors.New("dropped"))
	}
	return nil
}

func (s *scripted) opened() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.froms...)
}

func (s *scripted) serve(t *testing.T) wailv1connect.EventServiceClient {
	t.Helper()
	return serveEvents(t, s)
}

// serveEvents serves h over HTTP for the test and returns a client of it.
func serveEvents(t *testing.T, h wailv1connect.EventServiceHandler) wailv1connect.EventServiceClient {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewEventServiceHandler(h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return wailv1connect.NewEventServiceClient(srv.Client(), srv.URL)
}

// snapshotMember opens member m of group g of table t from "snapshot"
// on events, reconnecting at once; it is closed at the test's end.
func snapshotMember(ctx context.Context, t *testing.T, events wailv1connect.EventServiceClient) *client.Consumer {
	t.Helper()
	c, err := client.NewConsumer(ctx, events, client.ConsumerConfig{Table: "t", Group: "g", Member: "m", Start: "snapshot",
		Reconnect: client.Reconnect{MinWait: time.Millisecond, MaxWait: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestConsumerUntilEndNeedsItsEnd: an until-end subscription whose
// stream ends cleanly before the message that marks the end (the server
// shut down half way) has not read what existed: Next reconnects from
// its cursor instead of returning io.EOF, and ends at the end marker.
func TestConsumerUntilEndNeedsItsEnd(t *testing.T) {
	t.Parallel()
	ev := func(k string) *wailv1.ChangeEvent { return &wailv1.ChangeEvent{Table: "t", Key: []byte(k), Version: 1} }
	s := &scripted{subs: []scriptedStream[wailv1.SubscribeResponse]{
		{msgs: []*wailv1.SubscribeResponse{{Event: ev("a"), Cursor: "c1"}}}, // then the server shuts down
		{msgs: []*wailv1.SubscribeResponse{{Event: ev("b"), Cursor: "c2"}, {Cursor: "c2"}}},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.NewConsumer(ctx, s.serve(t), client.ConsumerConfig{Table: "t", From: "beginning", UntilEnd: true,
		Reconnect: client.Reconnect{MinWait: time.Millisecond, MaxWait: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var keys []string
	for {
		m, err := c.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("after %q: %v", keys, err)
		}
		keys = append(keys, string(m.Event.Key))
	}
	if len(keys) != 2 || keys[1] != "b" {
		t.Fatalf("read %q until io.EOF, want [a b]: a stream cut short ended as if complete", keys)
	}
	if got := s.opened(); len(got) != 2 || got[1] != "c1" {
		t.Fatalf("streams opened from %q, want [beginning c1]", got)
	}
}

// TestConsumerGroupSnapshotOver: a group member whose snapshot was all
// sent (the server sends the empty message of the member's join once the
// snapshot's end is committed) and whose stream then drops is not
// interrupted mid-snapshot: it joins again.
func TestConsumerGroupSnapshotOver(t *testing.T) {
	t.Parallel()
	row := &wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Version: 1}
	live := &wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Version: 2}
	s := &scripted{grps: []scriptedStream[wailv1.ConsumeResponse]{
		// Started, the snapshot, joined; no partition yet (another member has them all).
		{msgs: []*wailv1.ConsumeResponse{{}, {Event: row, Snapshot: true}, {}}, code: connect.CodeUnavailable},
		{msgs: []*wailv1.ConsumeResponse{{}, {Granted: []*wailv1.PartitionGrant{{Partition: 0, Epoch: 1}}}, {Event: live, Epoch: 1, Next: 1}}},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.NewConsumer(ctx, s.serve(t), client.ConsumerConfig{Table: "t", Group: "g", Member: "m", Start: "snapshot",
		Reconnect: client.Reconnect{MinWait: time.Millisecond, MaxWait: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m, err := c.Next(ctx); err != nil || !m.Snapshot {
		t.Fatalf("snapshot row: %v, %v", m, err)
	}
	m, err := c.Next(ctx)
	if err != nil {
		t.Fatalf("after the snapshot was over: %v", err)
	}
	if m.Event.Version != 2 {
		t.Fatalf("got version %d, want the change (2)", m.Event.Version)
	}
}

// TestConsumerReconnectClosed: a consumer closed while it reconnects (the
// wait is over, Close came meanwhile: here from OnReconnect, as from
// another goroutine or a Ctrl-C) fails its Next, and stays closeable:
// no nil stream behind (a panic in Close or Next), and a group member's
// Ack is not a silent success.
func TestConsumerReconnectClosed(t *testing.T) {
	t.Parallel()
	ev := &wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Version: 1}
	for _, group := range []bool{false, true} {
		// The wait before the attempt is 1ns: once Close cancelled the
		// consumer, the attempt and the cancellation are both ready, and
		// either may come first; enough rounds see both.
		for range 40 {
			s := &scripted{
				subs: []scriptedStream[wailv1.SubscribeResponse]{{msgs: []*wailv1.SubscribeResponse{{Event: ev, Cursor: "c1"}}, code: connect.CodeUnavailable}},
				grps: []scriptedStream[wailv1.ConsumeResponse]{{msgs: []*wailv1.ConsumeResponse{{Event: ev, Epoch: 1, Next: 1}}, code: connect.CodeUnavailable}},
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			var c *client.Consumer
			cfg := client.ConsumerConfig{Table: "t", Reconnect: client.Reconnect{MinWait: time.Nanosecond, MaxWait: time.Nanosecond,
				OnReconnect: func(error, int) { c.Close() }}}
			if group {
				cfg.Group, cfg.Member = "g", "m"
			}
			c, err := client.NewConsumer(ctx, s.serve(t), cfg)
			if err != nil {
				t.Fatal(err)
			}
			m, err := c.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Next(ctx); !errors.Is(err, client.ErrConsumerClosed) {
				t.Fatalf("Next of a closed consumer: %v, want ErrConsumerClosed", err)
			}
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("group %v: after a reconnection cut by Close: panic: %v", group, r)
					}
				}()
				if _, err := c.Next(ctx); err == nil {
					t.Fatal("Next of a closed consumer succeeded")
				}
				if group {
					if err := c.Ack(ctx, m); err == nil {
						t.Fatal("Ack of a closed member succeeded (the server implements no Ack)")
					}
				}
				c.Close()
			}()
			cancel()
		}
	}
}

// TestConsumerCloseWhileNext: Close from another goroutine ends a Next
// that waits for a message, or for its next attempt to reconnect, at
// once, without a data race (go test -race).
func TestConsumerCloseWhileNext(t *testing.T) {
	t.Parallel()
	ev := &wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Version: 1}
	for _, tc := range []struct {
		name string
		subs []scriptedStream[wailv1.SubscribeResponse]
		wait time.Duration
	}{
		{name: "waiting for a message", wait: time.Millisecond, subs: []scriptedStream[wailv1.SubscribeResponse]{
			{msgs: []*wailv1.SubscribeResponse{{}}, hold: true}}},
		{name: "reconnecting", wait: time.Microsecond, subs: dropping(&wailv1.SubscribeResponse{Event: ev, Cursor: "c1"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for range 20 {
				s := &scripted{subs: tc.subs}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				c, err := client.NewConsumer(ctx, s.serve(t), client.ConsumerConfig{Table: "t",
					Reconnect: client.Reconnect{MinWait: tc.wait, MaxWait: tc.wait}})
				if err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() {
					for {
						if _, err := c.Next(ctx); err != nil {
							done <- err
							return
						}
					}
				}()
				time.Sleep(time.Millisecond)
				c.Close()
				select {
				case err := <-done:
					if !errors.Is(err, client.ErrConsumerClosed) {
						t.Fatalf("Next after Close: %v, want ErrConsumerClosed", err)
					}
				case <-time.After(2 * time.Second):
					t.Fatal("Next still waits 2s after Close")
				}
				cancel()
			}
		})
	}
}

// dropping is a subscription's script: first, then streams that fail at
// once, more than a test waits for.
func dropping(first *wailv1.SubscribeResponse) []scriptedStream[wailv1.SubscribeResponse] {
	subs := []scriptedStream[wailv1.SubscribeResponse]{{msgs: []*wailv1.SubscribeResponse{first}, code: connect.CodeUnavailable}}
	for range 10000 {
		subs = append(subs, scriptedStream[wailv1.SubscribeResponse]{code: connect.CodeUnavailable})
	}
	return subs
}

// TestConsumerStoppedByNextContext: a Next whose context ends while it
// waits closes the stream, which stops the consumer: the Next after it
// says so (ErrConsumerClosed, resume from Cursor), instead of a "canceled" that
// nobody asked for.
func TestConsumerStoppedByNextContext(t *testing.T) {
	t.Parallel()
	s := &scripted{subs: []scriptedStream[wailv1.SubscribeResponse]{{msgs: []*wailv1.SubscribeResponse{{}}, hold: true}}}
	c, err := client.NewConsumer(context.Background(), s.serve(t), client.ConsumerConfig{Table: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next until its deadline: %v", err)
	}
	if _, err := c.Next(context.Background()); !errors.Is(err, client.ErrConsumerClosed) || connect.CodeOf(err) == connect.CodeCanceled {
		t.Fatalf("the Next after: %v, want ErrConsumerClosed", err)
	}
	c.Close()
	if _, err := c.Next(context.Background()); !errors.Is(err, client.ErrConsumerClosed) {
		t.Fatalf("Next after Close: %v, want ErrConsumerClosed", err)
	}
}

// TestConsumerConnectionReset: a connection reset by the server (a
// process killed, a proxy or load balancer in between) is a dropped
// stream: connect reports it as canceled (it takes ECONNRESET for a
// client gone), which the consumer did not ask for: it reconnects.
func TestConsumerConnectionReset(t *testing.T) {
	t.Parallel()
	ev := func(v uint64) *wailv1.ChangeEvent {
		return &wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Version: v}
	}
	for _, group := range []bool{false, true} {
		s := &scripted{
			subs: []scriptedStream[wailv1.SubscribeResponse]{
				{msgs: []*wailv1.SubscribeResponse{{Event: ev(1), Cursor: "c1"}}, code: connect.CodeUnavailable},
				{msgs: []*wailv1.SubscribeResponse{{Event: ev(2), Cursor: "c2"}}, hold: true}},
			grps: []scriptedStream[wailv1.ConsumeResponse]{
				{msgs: []*wailv1.ConsumeResponse{{Event: ev(1), Epoch: 1, Next: 1}}, code: connect.CodeUnavailable},
				{msgs: []*wailv1.ConsumeResponse{{Event: ev(2), Epoch: 2, Next: 2}}, hold: true}},
		}
		mux := http.NewServeMux()
		mux.Handle(wailv1connect.NewEventServiceHandler(s))
		var requests atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if requests.Add(1) == 2 { // the first attempt to reconnect: reset
				resetConnection(t, w, r)
				return
			}
			mux.ServeHTTP(w, r)
		}))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var seen []error
		cfg := client.ConsumerConfig{Table: "t", Reconnect: client.Reconnect{MinWait: time.Millisecond, MaxWait: time.Millisecond,
			OnReconnect: func(err error, _ int) { seen = append(seen, err) }}}
		if group {
			cfg.Group, cfg.Member = "g", "m"
		}
		c, err := client.NewConsumer(ctx, wailv1connect.NewEventServiceClient(srv.Client(), srv.URL), cfg)
		if err != nil {
			t.Fatal(err)
		}
		for v := uint64(1); v <= 2; v++ {
			m, err := c.Next(ctx)
			if err != nil {
				t.Fatalf("group %v: event %d: %v (reconnections after %v)", group, v, err, seen)
			}
			if m.Event.Version != v {
				t.Fatalf("group %v: got version %d, want %d", group, m.Event.Version, v)
			}
		}
		if len(seen) != 2 || connect.CodeOf(seen[1]) != connect.CodeCanceled {
			t.Fatalf("group %v: reconnections after %v, want unavailable, then a reset (canceled)", group, seen)
		}
		c.Close()
		cancel()
		srv.Close()
	}
}

// resetConnection answers r by resetting its connection (RST, as a
// server that died): the request is read first, so the reset is the
// answer and not a refusal to take it.
func resetConnection(t *testing.T, w http.ResponseWriter, r *http.Request) {
	_, _ = io.ReadAll(r.Body)
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Error(err)
		return
	}
	_ = conn.(*net.TCPConn).SetLinger(0)
	_ = conn.Close()
}

// TestConsumerAckConnectionReset: an Ack whose connection the server
// resets (it restarts) fails as unavailable, as an Ack to a server that
// is down: connect's canceled would read as the caller's own context.
func TestConsumerAckConnectionReset(t *testing.T) {
	t.Parallel()
	ev := &wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Version: 1}
	s := &scripted{grps: []scriptedStream[wailv1.ConsumeResponse]{{msgs: []*wailv1.ConsumeResponse{{Event: ev, Epoch: 1, Next: 1}}, hold: true}}}
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewEventServiceHandler(s))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/Ack") {
			resetConnection(t, w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.NewConsumer(ctx, wailv1connect.NewEventServiceClient(srv.Client(), srv.URL), client.ConsumerConfig{Table: "t", Group: "g", Member: "m"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m, err := c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ack(ctx, m); connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("Ack on a reset connection: %v (%v), want unavailable", err, connect.CodeOf(err))
	}
}

// TestConsumerConfigMismatch: a setting of the other mode is refused,
// not ignored (a group member with UntilEnd would never end).
func TestConsumerConfigMismatch(t *testing.T) {
	t.Parallel()
	events := wailv1connect.NewEventServiceClient(http.DefaultClient, "http://127.0.0.1:1")
	for _, cfg := range []client.ConsumerConfig{
		{Table: "t", Group: "g", Member: "m", UntilEnd: true},
		{Table: "t", Group: "g", Member: "m", From: "beginning"},
		{Table: "t", Group: "g", Member: "m", MaxBatchEvents: 10},
		{Table: "t", Start: "snapshot"},
	} {
		c, err := client.NewConsumer(context.Background(), events, cfg)
		if err == nil {
			c.Close()
			t.Fatalf("%+v: accepted", cfg)
		}
	}
}

// TestConsumerBatchResume: with batches, the position moves only once
// the batch's last event was handed over (only it has a cursor), and a
// stream that drops after a batch resumes from that cursor, never from
// one past events not handed over yet.
func TestConsumerBatchResume(t *testing.T) {
	t.Parallel()
	ev := func(v uint64) *wailv1.StreamedEvent {
		return &wailv1.StreamedEvent{Event: &wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Version: v}, Offset: int64(v)}
	}
	s := &scripted{subs: []scriptedStream[wailv1.SubscribeResponse]{
		{msgs: []*wailv1.SubscribeResponse{{Events: []*wailv1.StreamedEvent{ev(1), ev(2)}, Cursor: "c2"},
			{Events: []*wailv1.StreamedEvent{ev(3), ev(4)}, Cursor: "c4"}}, code: connect.CodeUnavailable},
		{msgs: []*wailv1.SubscribeResponse{{Events: []*wailv1.StreamedEvent{ev(5)}, Cursor: "c5"}}, hold: true},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.NewConsumer(ctx, s.serve(t), client.ConsumerConfig{Table: "t", From: "beginning", MaxBatchEvents: 2,
		Reconnect: client.Reconnect{MinWait: time.Millisecond, MaxWait: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := []string{"", "c2", "c2", "c4", "c5"} // Cursor() after each event
	for i, w := range want {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("event %d: %v", i+1, err)
		}
		if m.Event.Version != uint64(i+1) {
			t.Fatalf("event %d: version %d", i+1, m.Event.Version)
		}
		if got := c.Cursor(); got != w {
			t.Fatalf("Cursor after event %d: %q, want %q", i+1, got, w)
		}
	}
	if got := s.opened(); len(got) != 2 || got[1] != "c4" {
		t.Fatalf("streams opened from %q, want [beginning c4]", got)
	}
}

// TestConsumerSnapshotNotStarted: a from "snapshot" subscription whose
// stream drops before its first event has built nothing: it takes the
// snapshot again instead of failing with ErrSnapshotInterrupted.
func TestConsumerSnapshotNotStarted(t *testing.T) {
	t.Parallel()
	row := &wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Version: 1}
	s := &scripted{subs: []scriptedStream[wailv1.SubscribeResponse]{
		{msgs: []*wailv1.SubscribeResponse{{}}, code: connect.CodeUnavailable}, // the stream's start, then a drop
		{msgs: []*wailv1.SubscribeResponse{{}, {Event: row, Snapshot: true}, {Cursor: "c1"}}, hold: true},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.NewConsumer(ctx, s.serve(t), client.ConsumerConfig{Table: "t", From: "snapshot",
		Reconnect: client.Reconnect{MinWait: time.Millisecond, MaxWait: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m, err := c.Next(ctx); err != nil || !m.Snapshot {
		t.Fatalf("the snapshot's row: %v, %v", m, err)
	}
	if got := s.opened(); len(got) != 2 || got[1] != "snapshot" {
		t.Fatalf("streams opened from %q, want [snapshot snapshot]", got)
	}
}

// hugeEvent serves Subscribe as a server that sends one event whose
// value is n bytes, written a chunk at a time (the server holds none of
// it), and then holds the stream; or, when sent < n, cuts the response
// after sent bytes of the value (a message whose length claims more than
// comes): the Connect protocol by hand.
func hugeEvent(t *testing.T, n, sent int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		head, err := proto.Marshal(&wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Version: 1})
		if err != nil {
			t.Error(err)
			return
		}
		head = protowire.AppendTag(head, 5, protowire.BytesType) // value
		head = protowire.AppendVarint(head, uint64(n))
		msg := protowire.AppendTag(nil, 1, protowire.BytesType) // SubscribeResponse.event
		msg = protowire.AppendVarint(msg, uint64(len(head)+n))
		msg = append(msg, head...)
		env := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)+n))
		w.Header().Set("Content-Type", "application/connect+proto")
		w.WriteHeader(http.StatusOK)
		if _, err := w.Write(append(env, msg...)); err != nil {
			return
		}
		chunk := bytes.Repeat([]byte("v"), 64<<10)
		for left := sent; left > 0; left -= len(chunk) {
			if _, err := w.Write(chunk[:min(left, len(chunk))]); err != nil {
				return // the client went away
			}
		}
		w.(http.Flusher).Flush()
		if sent == n {
			<-r.Context().Done()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestConsumerMaxReceiveBytes: a message from the server larger than
// Options.MaxReceiveBytes (by default DefaultMaxReceiveBytes) fails Next
// with resource_exhausted, read past and not kept, and the consumer does
// not reconnect for it; one within the bound is delivered.
func TestConsumerMaxReceiveBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		limit int // Options.MaxReceiveBytes
		value int // bytes of the event's value
		sent  int // of them (less: the response is cut; without a bound, connect reads them into memory until then)
		ok    bool
	}{
		{"within the bound", 4 << 10, 2 << 10, 2 << 10, true},
		{"over the bound", 4 << 10, 8 << 10, 8 << 10, false},
		{"over the default bound", 0, client.DefaultMaxReceiveBytes, 1 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := hugeEvent(t, tc.value, tc.sent)
			c, err := client.Dial(client.Options{Addr: srv.URL, MaxReceiveBytes: tc.limit})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			reconnects := 0
			cons, err := client.NewConsumer(ctx, c.Events, client.ConsumerConfig{Table: "t",
				Reconnect: client.Reconnect{MinWait: time.Millisecond, OnReconnect: func(error, int) { reconnects++ }}})
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			m, err := cons.Next(ctx)
			switch {
			case tc.ok && (err != nil || len(m.Event.GetValue()) != tc.value):
				t.Fatalf("an event of %d bytes, within the bound: %d bytes, %v", tc.value, len(m.Event.GetValue()), err)
			case !tc.ok && connect.CodeOf(err) != connect.CodeResourceExhausted:
				t.Fatalf("an event of %d bytes, over the bound: %d bytes, %v; want resource_exhausted", tc.value, len(m.Event.GetValue()), err)
			case !tc.ok && (!strings.Contains(err.Error(), "larger than configured max") || reconnects != 0):
				t.Fatalf("over the bound: %v after %d reconnections; want the bound named, no reconnection", err, reconnects)
			}
		})
	}
}

// TestConsumerStoppedMidBatch: a subscription closed, or called with a
// context that ended, while events of a batch (MaxBatchEvents) are still
// to hand out fails Next as it says (ErrConsumerClosed, the context's
// error), instead of handing out the rest of the batch.
func TestConsumerStoppedMidBatch(t *testing.T) {
	t.Parallel()
	ev := func(v uint64) *wailv1.StreamedEvent {
		return &wailv1.StreamedEvent{Event: &wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Version: v}, Offset: int64(v)}
	}
	batch := &wailv1.SubscribeResponse{Events: []*wailv1.StreamedEvent{ev(1), ev(2), ev(3)}, Cursor: "c3"}
	for _, tc := range []struct {
		name string
		stop func(c *client.Consumer) context.Context
		want error
	}{
		{name: "closed", want: client.ErrConsumerClosed, stop: func(c *client.Consumer) context.Context {
			c.Close()
			return context.Background()
		}},
		{name: "context ended", want: context.Canceled, stop: func(*client.Consumer) context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &scripted{subs: []scriptedStream[wailv1.SubscribeResponse]{{msgs: []*wailv1.SubscribeResponse{batch}, hold: true}}}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := client.NewConsumer(ctx, s.serve(t), client.ConsumerConfig{Table: "t", MaxBatchEvents: 3})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if m, err := c.Next(ctx); err != nil || m.Offset != 1 {
				t.Fatalf("the batch's first event: %v, %v", m, err)
			}
			if m, err := c.Next(tc.stop(c)); !errors.Is(err, tc.want) {
				t.Fatalf("Next %s: %v (offset %d), %v; want %v", tc.name, m.Event, m.Offset, err, tc.want)
			}
		})
	}
}
