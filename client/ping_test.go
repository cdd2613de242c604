package client

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// holeProxy forwards TCP connections to a server until blackhole: then
// the connections open so far carry nothing more either way (what comes
// is read and dropped, as on a route that lost its peer), while new ones
// are forwarded. hold instead keeps what the client sends on the
// connections open so far, for release to deliver late.
type holeProxy struct {
	ln       net.Listener
	accepted atomic.Int32
	mu       sync.Mutex
	conns    []*proxied
	wg       sync.WaitGroup
}

// proxied is one connection of a holeProxy.
type proxied struct {
	holed atomic.Bool
	up    net.Conn // to the server

	mu   sync.Mutex
	held bool
	kept []byte // sent by the client while held
}

// forward writes what the client sent to the server, unless the
// connection is black-holed (dropped) or held (kept).
func (c *proxied) forward(b []byte) error {
	if c.holed.Load() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held {
		c.kept = append(c.kept, b...)
		return nil
	}
	_, err := c.up.Write(b)
	return err
}

func newHoleProxy(t *testing.T, to string) *holeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &holeProxy{ln: ln}
	var open []net.Conn
	var openMu sync.Mutex
	h.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", to)
			if err != nil {
				_ = c.Close()
				continue
			}
			h.accepted.Add(1)
			pc := &proxied{up: up}
			h.mu.Lock()
			h.conns = append(h.conns, pc)
			h.mu.Unlock()
			openMu.Lock()
			open = append(open, c, up)
			openMu.Unlock()
			pipe := func(src net.Conn, forward func([]byte) error) {
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if n > 0 {
						if err := forward(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}
			h.wg.Go(func() { pipe(c, pc.forward) })
			h.wg.Go(func() {
				pipe(up, func(b []byte) error {
					if pc.holed.Load() {
						return nil
					}
					_, err := c.Write(b)
					return err
				})
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		openMu.Lock()
		for _, c := range open {
			_ = c.Close()
		}
		openMu.Unlock()
		h.wg.Wait()
	})
	return h
}

func (h *holeProxy) blackhole() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.holed.Store(true)
	}
}

// hold keeps what clients send on the connections open so far (the
// server's side stays open and carries what the server sends), until
// release.
func (h *holeProxy) hold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.mu.Lock()
		c.held = true
		c.mu.Unlock()
	}
}

// keptBytes returns what the held connections kept so far, one after
// the other.
func (h *holeProxy) keptBytes() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []byte
	for _, c := range h.conns {
		c.mu.Lock()
		out = append(out, c.kept...)
		c.mu.Unlock()
	}
	return out
}

// release delivers to the server, late, the first n bytes each held
// connection kept (what the client sent until then), and nothing more.
func (h *holeProxy) release(n int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.mu.Lock()
		kept := c.kept[:min(n, len(c.kept))]
		c.kept = nil
		c.mu.Unlock()
		if _, err := c.up.Write(kept); err != nil {
			return err
		}
	}
	return nil
}

// TestProducerDeadConnection: a connection that stops carrying anything
// (no FIN, no RST: a peer gone, a route black-holed) is found dead by
// HTTP/2 pings within PingInterval+PingTimeout, and the producer's
// stream is reopened on a new connection, instead of waiting for TCP to
// give up (about 15 minutes) while its writes fail at their delivery
// timeout.
func TestProducerDeadConnection(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewProducerServiceHandler(newScript()))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close) // after the proxy's connections are closed: a handler on a black-holed one never ends before
	proxy := newHoleProxy(t, srv.Listener.Addr().String())
	hc, err := Options{Addr: proxy.ln.Addr().String(), H2C: true, PingInterval: 200 * time.Millisecond, PingTimeout: 300 * time.Millisecond}.HTTPClient()
	if err != nil {
		t.Fatal(err)
	}
	defer hc.CloseIdleConnections()
	p := newProducer(wailv1connect.NewProducerServiceClient(hc, "http://"+proxy.ln.Addr().String()),
		ProducerConfig{Linger: time.Millisecond, RetryBackoff: 10 * time.Millisecond, DeliveryTimeout: 8 * time.Second}, 10*time.Millisecond)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.Close(ctx)
	}()
	ctx := context.Background()
	if _, err := p.Put(ctx, "t", []byte("k1"), nil); err != nil {
		t.Fatal(err)
	}
	proxy.blackhole()
	start := time.Now()
	if _, err := p.Put(ctx, "t", []byte("k2"), nil); err != nil {
		t.Fatalf("a write on a black-holed connection: %v after %s; want it written on a new connection", err, time.Since(start).Round(time.Millisecond))
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("a write on a black-holed connection took %s: the dead connection was found late", d)
	}
	if n := proxy.accepted.Load(); n < 2 {
		t.Fatalf("%d connections: want a new one after the black hole", n)
	}
}
