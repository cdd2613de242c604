package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// countingConn counts the bytes the client reads off a connection.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// countReads makes hc's transport count the bytes it reads off its
// connections into n.
func countReads(t *testing.T, hc *http.Client, n *atomic.Int64) {
	t.Helper()
	rt := hc.Transport
	for {
		u, ok := rt.(interface{ unwrap() http.RoundTripper })
		if !ok {
			break
		}
		rt = u.unwrap()
	}
	tr, ok := rt.(*http.Transport)
	if !ok {
		t.Fatalf("the client's transport is a %T", hc.Transport)
	}
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, n: n}, nil
	}
}

// hugeDeclared serves every request as a server whose answer declares a
// message of 1 GiB: for a stream (enveloped) its 5-byte prefix, for a
// unary call its bytes with no envelope; it sends 8 MiB of it at once,
// then trickles the rest, 1 KiB each 10 ms, for as long as the client
// reads, and counts what it wrote into served.
func hugeDeclared(t *testing.T, h2c bool, served *atomic.Int64) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		streaming := strings.HasPrefix(r.Header.Get("Content-Type"), "application/connect+")
		if streaming {
			w.Header().Set("Content-Type", "application/connect+proto")
		} else {
			w.Header().Set("Content-Type", "application/proto")
		}
		w.WriteHeader(http.StatusOK)
		if streaming {
			if _, err := w.Write(binary.BigEndian.AppendUint32([]byte{0}, 1<<30)); err != nil {
				return
			}
		}
		chunk := bytes.Repeat([]byte{0}, 64<<10)
		for sent := 0; sent < 8<<20; sent += len(chunk) {
			n, err := w.Write(chunk)
			served.Add(int64(n))
			if err != nil {
				return
			}
		}
		for {
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			n, err := w.Write(chunk[:1<<10])
			served.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	if h2c {
		srv.Config.Protocols = new(http.Protocols)
		srv.Config.Protocols.SetUnencryptedHTTP2(true)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// TestMaxReceiveBytesNotDrained: an answer whose message declares more
// than Options.MaxReceiveBytes fails its call or stream at once,
// resource_exhausted naming the bound, without the client reading the
// declared bytes (connect reads them all and throws them away: a server
// that trickles them held the call for as long as it liked, and made the
// client read up to 4 GiB).
func TestMaxReceiveBytesNotDrained(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	for _, tc := range []struct {
		name  string
		h2c   bool
		unary bool
		// connectMax: a connect.WithReadMaxBytes in ConnectOptions above
		// the bound, so that connect reads the message and the transport
		// fails the read: the call must still fail resource_exhausted.
		connectMax bool
	}{
		{name: "stream"},
		{name: "unary", unary: true},
		{name: "stream over h2c", h2c: true},
		{name: "stream, connect's own bound higher", connectMax: true},
		{name: "unary, connect's own bound higher", unary: true, connectMax: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var served, read atomic.Int64
			srv := hugeDeclared(t, tc.h2c, &served)
			o := Options{Addr: srv.URL, MaxReceiveBytes: limit, H2C: tc.h2c}
			if tc.connectMax {
				o.ConnectOptions = []connect.ClientOption{connect.WithReadMaxBytes(2 << 30)}
			}
			hc, err := o.HTTPClient()
			if err != nil {
				t.Fatal(err)
			}
			countReads(t, hc, &read)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if tc.unary {
				_, err = wailv1connect.NewAdminServiceClient(hc, srv.URL, o.connectOptions()...).
					ListTables(ctx, connect.NewRequest(&wailv1.ListTablesRequest{}))
			} else {
				var s *connect.ServerStreamForClient[wailv1.SubscribeResponse]
				s, err = wailv1connect.NewEventServiceClient(hc, srv.URL, o.connectOptions()...).
					Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "t"}))
				if err == nil {
					for s.Receive() {
					}
					err = s.Err()
					_ = s.Close()
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("the call was still reading after 10 s (%d bytes read, %d served): %v", read.Load(), served.Load(), err)
			}
			if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "MaxReceiveBytes") {
				t.Fatalf("a message declaring 1 GiB, over MaxReceiveBytes (%d): %v; want resource_exhausted naming MaxReceiveBytes", limit, err)
			}
			// Over HTTP/2 the transport reads frames as they come, up to
			// the stream's flow-control window, whatever the call reads;
			// over HTTP/1.1 it reads what the call asks for (4 KiB at a
			// time at least).
			bound := int64(limit + 64<<10)
			if tc.h2c {
				bound = 8 << 20 // what the server sends before it trickles
			}
			if n := read.Load(); n > bound {
				t.Fatalf("the client read %d bytes off the connection (the server served %d) for a message over a bound of %d", n, served.Load(), limit)
			}
			t.Logf("read %d bytes, served %d", read.Load(), served.Load())
		})
	}
}

// TestHTTPClientClosesIdleConnections: the HTTP client's
// CloseIdleConnections reaches the transport through the wrappers (the
// bound on messages, the bearer token), so a caller can make the next
// request dial again (as after a certificate rotation).
func TestHTTPClientClosesIdleConnections(t *testing.T) {
	t.Parallel()
	var dialed atomic.Int32
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewAdminServiceHandler(wailv1connect.UnimplementedAdminServiceHandler{}))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dialed.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	for _, o := range []Options{{Addr: srv.URL}, {Addr: srv.URL, Token: "secret"}} {
		dialed.Store(0)
		c, err := Dial(o)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			_, err := c.Admin.ListTables(context.Background(), connect.NewRequest(&wailv1.ListTablesRequest{}))
			if connect.CodeOf(err) != connect.CodeUnimplemented {
				t.Fatal(err)
			}
			c.HTTP.CloseIdleConnections()
		}
		if n := dialed.Load(); n != 2 {
			t.Fatalf("token %q: %d connections for two calls with CloseIdleConnections between; want 2", o.Token, n)
		}
	}
}

// TestBoundedBodyNoBound: a bound as large as an int may be (a caller's
// way to say "no bound") reads an answer whole, without overflowing the
// bound's arithmetic.
func TestBoundedBodyNoBound(t *testing.T) {
	for _, limit := range []int64{math.MaxInt64, math.MaxInt64 - 1} {
		b := &boundedBody{body: io.NopCloser(strings.NewReader("an answer")), limit: limit}
		got, err := io.ReadAll(b)
		if err != nil || string(got) != "an answer" {
			t.Fatalf("limit %d: %q, %v", limit, got, err)
		}
	}
}
