package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/durationpb"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
)

// halfCut forwards TCP to a server; cut closes the client side of every
// connection so far and keeps its server side open and silent (a load
// balancer that lost the client's connection, with the server not told
// yet), release closes those server sides.
type halfCut struct {
	ln      net.Listener
	mu      sync.Mutex
	pairs   [][2]net.Conn // client side, server side
	severed []net.Conn    // server sides of the cut connections
}

func newHalfCut(t *testing.T, addr string) *halfCut {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &halfCut{ln: ln}
	t.Cleanup(func() {
		ln.Close()
		h.cut(false)
		h.release()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			h.mu.Lock()
			h.pairs = append(h.pairs, [2]net.Conn{c, u})
			h.mu.Unlock()
			// What the server sends stops at the client side's close; the
			// server side is never closed by the copy (half-open).
			go func() { _, _ = io.Copy(c, u) }()
			go func() { _, _ = io.Copy(u, c) }()
		}
	}()
	return h
}

func (h *halfCut) addr() string { return h.ln.Addr().String() }

// cut closes the client sides of the connections so far, resetting them
// with rst (else a FIN); their server sides stay open.
func (h *halfCut) cut(rst bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.pairs {
		if tc, ok := p[0].(*net.TCPConn); ok && rst {
			_ = tc.SetLinger(0)
		}
		p[0].Close()
		h.severed = append(h.severed, p[1])
	}
	h.pairs = nil
}

// release closes the server sides of the cut connections: the server
// sees their streams end.
func (h *halfCut) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, u := range h.severed {
		u.Close()
	}
	h.severed = nil
}

// TestConsumerReconnectsPastStreamSlot: a consumer's connection is cut
// (behind a load balancer) while the server still counts its stream
// against api.max_subscriptions_per_client 1: its reconnection is refused
// resource_exhausted, retry later. Next waited and tried again (with the
// server's RetryInfo hint) until the old stream ended, instead of failing
// for good with the refusal.
func TestConsumerReconnectsPastStreamSlot(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  client.ConsumerConfig
	}{
		{"subscription", client.ConsumerConfig{Table: "t", From: "latest"}},
		{"group member", client.ConsumerConfig{Table: "t", Group: "g", Member: "m", Start: "latest"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // a server each: the other's streams are not counted
			srv := startRestartable(t, func(c *config.Config) { c.API.MaxSubscriptionsPerClient = 1 })
			defer func() { srv.stop() }()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			direct, err := client.Dial(client.Options{Addr: srv.addr})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := direct.Admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t", Partitions: 1})); err != nil {
				t.Fatal(err)
			}
			put := func(v string) {
				t.Helper()
				if _, err := direct.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte(v)})); err != nil {
					t.Fatal(err)
				}
			}
			link := newHalfCut(t, srv.addr)
			c, err := client.Dial(client.Options{Addr: link.addr(), H2C: true})
			if err != nil {
				t.Fatal(err)
			}
			refused := make(chan struct{})
			var once sync.Once
			cfg := tc.cfg
			cfg.Reconnect = client.Reconnect{MinWait: 10 * time.Millisecond, MaxWait: 100 * time.Millisecond,
				OnReconnect: func(err error, _ int) {
					if connect.CodeOf(err) == connect.CodeResourceExhausted {
						once.Do(func() { close(refused) })
					}
				}}
			cons, err := client.NewConsumer(ctx, c.Events, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			next := func() (client.Message, error) {
				m, err := cons.Next(ctx)
				if err == nil {
					err = cons.Ack(ctx, m)
				}
				return m, err
			}
			time.Sleep(100 * time.Millisecond) // the stream is up (a member's partitions granted)
			put("1")
			if m, err := next(); err != nil || string(m.Event.GetValue()) != "1" {
				t.Fatalf("first event: %v %v", m.Event, err)
			}

			link.cut(true) // the server still counts the stream
			type got struct {
				m   client.Message
				err error
			}
			done := make(chan got, 1)
			go func() {
				m, err := next()
				done <- got{m, err}
			}()
			select {
			case r := <-done:
				t.Fatalf("Next while the old stream is counted: %v, %v (want it to wait and retry)", r.m.Event, r.err)
			case <-refused:
			case <-ctx.Done():
				t.Fatal("no reconnection refused resource_exhausted")
			}
			time.Sleep(300 * time.Millisecond) // refused again, a few times
			link.release()                     // the old stream ends: its slot frees
			put("2")
			select {
			case r := <-done:
				if r.err != nil || string(r.m.Event.GetValue()) != "2" {
					t.Fatalf("after the old stream ended: %v, %v", r.m.Event, r.err)
				}
			case <-ctx.Done():
				t.Fatal("Next did not return")
			}
		})
	}
}

// refusing is an event service whose first subscription delivers an
// event and drops (unavailable), whose next refused ones are refused
// with refusal, and whose next one delivers an event and stays open.
type refusing struct {
	wailv1connect.UnimplementedEventServiceHandler
	refusal func() error
	refused int
	mu      sync.Mutex
	opens   []time.Time
}

func (s *refusing) Subscribe(ctx context.Context, _ *connect.Request[wailv1.SubscribeRequest], st *connect.ServerStream[wailv1.SubscribeResponse]) error {
	s.mu.Lock()
	s.opens = append(s.opens, time.Now())
	n := len(s.opens) - 1
	s.mu.Unlock()
	ev := func(k string) *wailv1.SubscribeResponse {
		return &wailv1.SubscribeResponse{Event: &wailv1.ChangeEvent{Table: "t", Key: []byte(k), Version: 1}, Cursor: k}
	}
	switch {
	case n == 0:
		if err := st.Send(ev("a")); err != nil {
			return err
		}
		return connect.NewError(connect.CodeUnavailable, errors.New("dropped"))
	case n <= s.refused:
		return s.refusal()
	}
	if err := st.Send(ev("b")); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func (s *refusing) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.opens...)
}

// TestConsumerRetryInfo: a reconnection refused resource_exhausted with
// a RetryInfo detail is tried again after at least the server's hint
// (at most Reconnect.MaxWait); one refused resource_exhausted without
// it (a message over MaxReceiveBytes, a snapshot busy) fails Next at
// once, as before.
func TestConsumerRetryInfo(t *testing.T) {
	t.Parallel()
	refusal := func(hint time.Duration) func() error {
		return func() error {
			err := connect.NewError(connect.CodeResourceExhausted, errors.New("no slot"))
			if hint >= 0 {
				d, derr := connect.NewErrorDetail(&errdetails.RetryInfo{RetryDelay: durationpb.New(hint)})
				if derr != nil {
					t.Error(derr)
				}
				err.AddDetail(d)
			}
			return err
		}
	}
	for _, tc := range []struct {
		name    string
		hint    time.Duration // negative: no RetryInfo
		maxWait time.Duration
		// minGap, maxGap bound the waits before the attempts after a
		// refusal; 0 opens: Next fails.
		minGap, maxGap time.Duration
		opens          int
	}{
		{"hint honoured", 150 * time.Millisecond, time.Second, 150 * time.Millisecond, time.Second, 4},
		{"hint above MaxWait", time.Hour, 30 * time.Millisecond, 0, 2 * time.Second, 4},
		{"no RetryInfo", -1, time.Second, 0, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &refusing{refusal: refusal(tc.hint), refused: 2}
			mux := http.NewServeMux()
			mux.Handle(wailv1connect.NewEventServiceHandler(s))
			srv := httptest.NewServer(mux)
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := client.NewConsumer(ctx, wailv1connect.NewEventServiceClient(srv.Client(), srv.URL), client.ConsumerConfig{Table: "t",
				Reconnect: client.Reconnect{MinWait: time.Millisecond, MaxWait: tc.maxWait}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Next(ctx); err != nil {
				t.Fatal(err)
			}
			m, err := c.Next(ctx)
			opens := s.times()
			if len(opens) != tc.opens {
				t.Fatalf("%d streams opened, want %d (Next: %v)", len(opens), tc.opens, err)
			}
			if tc.hint < 0 {
				if connect.CodeOf(err) != connect.CodeResourceExhausted {
					t.Fatalf("Next: %v, want resource_exhausted at once", err)
				}
				if _, ok := client.RetryDelay(err); ok {
					t.Fatalf("RetryDelay(%v) reports a hint", err)
				}
				return
			}
			if err != nil || string(m.Event.GetKey()) != "b" {
				t.Fatalf("Next after the refusals: %v, %v", m.Event, err)
			}
			for i := 2; i < len(opens); i++ {
				if gap := opens[i].Sub(opens[i-1]); gap < tc.minGap || gap > tc.maxGap {
					t.Errorf("attempt %d came %s after the refusal, want %s..%s", i, gap, tc.minGap, tc.maxGap)
				}
			}
		})
	}
}

// TestConsumerReconnectsAfterConnectionClosed: a connection closed
// under a stream with a FIN, not a reset (a load balancer's idle
// timeout, a proxy that restarts), cuts the stream in the middle of its
// body: connect reports internal, "incomplete envelope: unexpected EOF".
// Next reconnected as for any dropped stream, over HTTP/1.1 as over
// HTTP/2, instead of failing for good with internal.
func TestConsumerReconnectsAfterConnectionClosed(t *testing.T) {
	t.Parallel()
	srv := startRestartable(t, nil)
	defer func() { srv.stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	direct := dialTable(ctx, t, srv, 1)
	value := 0
	put := func() string {
		t.Helper()
		value++
		v := fmt.Sprint(value)
		if _, err := direct.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte(v)})); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, h2c := range []bool{false, true} {
		for _, tc := range []struct {
			name string
			cfg  client.ConsumerConfig
		}{
			{"subscription", client.ConsumerConfig{Table: "t", From: "latest"}},
			{"group member", client.ConsumerConfig{Table: "t", Group: fmt.Sprint("g", h2c), Member: "m", Start: "latest"}},
		} {
			t.Run(fmt.Sprintf("%s h2c %v", tc.name, h2c), func(t *testing.T) {
				link := newHalfCut(t, srv.addr)
				c, err := client.Dial(client.Options{Addr: link.addr(), H2C: h2c})
				if err != nil {
					t.Fatal(err)
				}
				var reconnects []error
				cfg := tc.cfg
				cfg.Reconnect = client.Reconnect{MinWait: 10 * time.Millisecond, MaxWait: 100 * time.Millisecond,
					OnReconnect: func(err error, _ int) { reconnects = append(reconnects, err) }}
				cons, err := client.NewConsumer(ctx, c.Events, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer cons.Close()
				next := func(want string) {
					t.Helper()
					m, err := cons.Next(ctx)
					if err == nil {
						err = cons.Ack(ctx, m)
					}
					if err != nil || string(m.Event.GetValue()) != want {
						t.Fatalf("Next: %v, %v; want the event of %s (reconnections: %v)", m.Event, err, want, reconnects)
					}
				}
				time.Sleep(100 * time.Millisecond) // the stream is up (a member's partitions granted)
				next(put())
				link.cut(false)
				link.release()
				time.Sleep(50 * time.Millisecond) // the consumer's connection is closed, and the server's
				next(put())
				if len(reconnects) == 0 {
					t.Fatal("no reconnection")
				}
			})
		}
	}
}
