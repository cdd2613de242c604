package cassandra

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// faultProxy forwards TCP connections to one node, and can stall them
// (every byte held, both ways, on the connections open and on those
// accepted meanwhile: a frozen coordinator, or a network path that
// black-holes), let them go on (the held bytes arrive late), or reset
// them (RST on both sides: a node dying). A store reaches the node through
// it by Options.dialer (routeTo).
type faultProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	gate    *sync.Cond
	stalled bool
	conns   []*net.TCPConn
}

func newFaultProxy(t testing.TB, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, target: target}
	p.gate = sync.NewCond(&p.mu)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.Resume()
		p.Reset()
	})
	return p
}

func (p *faultProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		a, b := c.(*net.TCPConn), up.(*net.TCPConn)
		p.mu.Lock()
		p.conns = append(p.conns, a, b)
		p.mu.Unlock()
		go p.pipe(a, b)
		go p.pipe(b, a)
	}
}

// pipe copies src to dst, holding each chunk while the proxy is stalled.
func (p *faultProxy) pipe(src, dst *net.TCPConn) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.stalled {
				p.gate.Wait()
			}
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				_ = dst.CloseWrite()
				return
			}
			_ = src.Close()
			_ = dst.Close()
			return
		}
	}
}

// Stall holds every byte from now on, both ways, until Resume.
func (p *faultProxy) Stall() {
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
}

// Resume forwards what was held, and what comes next.
func (p *faultProxy) Resume() {
	p.mu.Lock()
	p.stalled = false
	p.gate.Broadcast()
	p.mu.Unlock()
}

// Reset closes every connection with a RST, both sides.
func (p *faultProxy) Reset() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.SetLinger(0)
		_ = c.Close()
	}
}

// routeTo is a dialer that sends the connections to address from through
// the proxy p.
func routeTo(from string, p *faultProxy) routeDialer {
	return routeDialer{from: from, to: p.ln.Addr().String()}
}

type routeDialer struct{ from, to string }

func (d routeDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if addr == d.from {
		addr = d.to
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}
