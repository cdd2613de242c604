package sqltest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections to a server and can be made to stop
// forwarding (Stall): a host that stops answering, as behind a network
// partition or a hung server, while the server itself stays up. It is
// closed when the test ends.
type Proxy struct {
	l      net.Listener
	target string

	mu      sync.Mutex
	stalled bool
	resumed chan struct{} // closed by Resume (nil while forwarding)
	conns   []net.Conn

	forwarded atomic.Int64 // bytes written to either side
	wg        sync.WaitGroup
}

// NewProxy starts a proxy to target (host:port) on 127.0.0.1.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{l: l, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Forwarded is how many bytes the proxy has passed on so far.
func (p *Proxy) Forwarded() int64 { return p.forwarded.Load() }

// Stall stops forwarding: connections are still accepted and what either
// side sends is read, but nothing reaches the other side until Resume.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stalled {
		p.stalled, p.resumed = true, make(chan struct{})
	}
}

// Resume forwards again, what was held first.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled {
		p.stalled = false
		close(p.resumed)
	}
}

// gate waits while the proxy is stalled; false: the proxy is closing.
func (p *Proxy) gate(closing <-chan struct{}) bool {
	p.mu.Lock()
	ch := p.resumed
	stalled := p.stalled
	p.mu.Unlock()
	if !stalled {
		return true
	}
	select {
	case <-ch:
		return true
	case <-closing:
		return false
	}
}

func (p *Proxy) accept() {
	closing := make(chan struct{})
	defer close(closing)
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Go(func() { p.pump(s, c, closing) })
		p.wg.Go(func() { p.pump(c, s, closing) })
	}
}

// pump copies from src to dst, holding what it read while stalled; it
// closes both when either side ends.
func (p *Proxy) pump(dst, src net.Conn, closing <-chan struct{}) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.gate(closing) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			p.forwarded.Add(int64(n))
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) close() {
	_ = p.l.Close()
	p.Resume()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
