package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
)

// closedSoon reports whether the server closes conn (without it having
// sent anything) within d.
func closedSoon(conn net.Conn, d time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.ReadAll(conn)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestConnectionLimit: connections that never send (slowloris) hold at
// most api.max_connections; past it a client is told resource_exhausted
// naming the setting (HTTP/1.1 and gRPC over h2c), with a RetryInfo
// detail, while /healthz and /metrics still answer; the connections that
// are told are closed within seconds, and past 64 of them a connection is
// closed at once; a connection that closes frees its place.
func TestConnectionLimit(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) {
		cfg.Tables = []config.Table{{Name: "t"}}
		cfg.API.MaxConnections = 4
		cfg.API.ReadHeaderTimeout = time.Minute // the silent connections stay for the test
	})
	idle := make([]net.Conn, 4)
	for i := range idle {
		idle[i] = rawConn(t, c.url)
	}
	waitMetric(t, c.url, "wail_api_connections", 4) // /metrics answers on a refused connection
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	put := func(pc wailv1connect.ProducerServiceClient) error {
		_, err := pc.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")}))
		return err
	}
	for name, pc := range map[string]wailv1connect.ProducerServiceClient{
		"connect over HTTP/1.1": c.producer,
		"gRPC over h2c":         wailv1connect.NewProducerServiceClient(h2cClient(t), c.url, connect.WithGRPC()),
	} {
		err := put(pc)
		var ce *connect.Error
		if !errors.As(err, &ce) || ce.Code() != connect.CodeResourceExhausted || !strings.Contains(ce.Message(), "api.max_connections") {
			t.Fatalf("%s: a write past api.max_connections: %v; want resource_exhausted naming api.max_connections", name, err)
		}
		retry := false
		for _, d := range ce.Details() {
			if v, err := d.Value(); err == nil {
				_, retry = v.(*errdetails.RetryInfo)
			}
		}
		if !retry {
			t.Errorf("%s: no RetryInfo detail in %v", name, ce)
		}
	}
	resp, err := http.Get(c.url + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz past api.max_connections: %v %v", resp, err)
	}
	resp.Body.Close()
	if got := metric(t, c.url, "wail_api_connections_refused_total"); got < 2 {
		t.Errorf("wail_api_connections_refused_total = %v, want at least 2", got)
	}

	// A refused connection that sends nothing is closed within seconds,
	// not after read_header_timeout; past 64 of them, at once. The
	// refused connections above end by refuseWindow at the latest (the
	// h2c one stays until then after its GOAWAY): one ending between the
	// 64 and the next would free a refused place for it (1 run in 10).
	time.Sleep(3 * time.Second) // refuseWindow (2s) and a margin
	refused := make([]net.Conn, 64)
	for i := range refused {
		refused[i] = rawConn(t, c.url)
	}
	time.Sleep(500 * time.Millisecond) // all accepted
	if over := rawConn(t, c.url); !closedSoon(over, time.Second) {
		t.Error("a connection past api.max_connections and 64 refused ones was not closed at once")
	}
	if !closedSoon(refused[0], 5*time.Second) {
		t.Error("a refused connection that sends nothing was not closed within 2s")
	}

	// (Not waiting for wail_api_connections to drop: the connection that
	// reads /metrics would take the freed place.)
	idle[0].Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := put(wailv1connect.NewProducerServiceClient(&http.Client{Transport: &http.Transport{}}, c.url))
		if err == nil {
			break
		}
		if connect.CodeOf(err) != connect.CodeResourceExhausted || time.Now().After(deadline) {
			t.Fatalf("a write once a connection closed: %v", err)
		}
	}
}

// TestHTTP2StreamsPerConnection: the server tells HTTP/2 clients
// api.max_streams_per_connection in its SETTINGS (Go's default is 250).
func TestHTTP2StreamsPerConnection(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) { cfg.API.MaxStreamsPerConnection = 7 })
	conn := rawConn(t, c.url)
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// The client preface and an empty SETTINGS frame.
	if _, err := io.WriteString(conn, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"); err != nil {
		t.Fatal(err)
	}
	var head [9]byte
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		t.Fatal(err)
	}
	n := int(head[0])<<16 | int(head[1])<<8 | int(head[2])
	if head[3] != 4 { // SETTINGS
		t.Fatalf("first frame of type %d, want SETTINGS", head[3])
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(conn, payload); err != nil {
		t.Fatal(err)
	}
	got := -1
	for i := 0; i+6 <= len(payload); i += 6 {
		if binary.BigEndian.Uint16(payload[i:]) == 3 { // SETTINGS_MAX_CONCURRENT_STREAMS
			got = int(binary.BigEndian.Uint32(payload[i+2:]))
		}
	}
	if got != 7 {
		t.Fatalf("MAX_CONCURRENT_STREAMS %d, want 7 (api.max_streams_per_connection)", got)
	}
}

// TestHeaderSizeCap: headers past api.max_header_bytes are refused with
// 431 (Go's default would take 1 MiB of them per connection).
func TestHeaderSizeCap(t *testing.T) {
	t.Parallel()
	c := start(t, nil) // the default, 64 KiB
	for name, hc := range map[string]*http.Client{"HTTP/1.1": {Transport: &http.Transport{}}, "h2c": h2cClient(t)} {
		req, _ := http.NewRequest(http.MethodGet, c.url+"/healthz", nil)
		req.Header.Set("X-Big", strings.Repeat("x", 100<<10))
		resp, err := hc.Do(req)
		if err != nil {
			// HTTP/2: the client knew the limit from the server's
			// SETTINGS, or sent them before it did and the server
			// refused to decode them (Go's HPACK decoder stops at the
			// limit).
			if name == "h2c" && (strings.Contains(err.Error(), "header list larger than peer's advertised limit") ||
				strings.Contains(err.Error(), "COMPRESSION_ERROR")) {
				continue
			}
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%s: 100 KiB of headers answered %d, want 431", name, resp.StatusCode)
		}
	}
}

// TestConnectionLimitTLS: past api.max_connections, a client over TLS
// (the handshake done within the refused connection's seconds) is told
// resource_exhausted naming the setting too, not a failed handshake.
func TestConnectionLimitTLS(t *testing.T) {
	t.Parallel()
	s := startSecured(t, func(c *config.Config) {
		c.API.MaxConnections = 3
		c.API.ReadHeaderTimeout = time.Minute
	})
	for range 3 {
		rawConn(t, "http://"+s.addr)
	}
	time.Sleep(100 * time.Millisecond) // accepted
	cl := s.dial(t, client.Options{Token: s.tokens["produce"]})
	_, err := cl.Producer.Put(context.Background(), connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")}))
	if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "api.max_connections") {
		t.Fatalf("a write over TLS past api.max_connections: %v; want resource_exhausted naming api.max_connections", err)
	}
}

// TestHTTP2SubscriberThatNeverReads: over HTTP/2, a Subscribe stream its
// client never reads (its flow-control window spent) is ended after
// api.write_timeout, while a stream on the same connection that reads
// gets every event and writes go on: a stalled stream holds neither the
// connection, nor the resolver, nor the server's memory past its window.
func TestHTTP2SubscriberThatNeverReads(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) {
		cfg.Tables = []config.Table{{Name: "t", Partitions: 2}}
		cfg.API.WriteTimeout = 2 * time.Second
	})
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p,
		HTTP2: &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 64 << 20}}
	t.Cleanup(tr.CloseIdleConnections)
	var conns atomic.Int32
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conns.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	ec := wailv1connect.NewEventServiceClient(&http.Client{Transport: tr}, c.url, connect.WithGRPC())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stalled, err := ec.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "t", From: "beginning"}))
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	good, err := ec.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "t", From: "beginning"}))
	if err != nil {
		t.Fatal(err)
	}
	waitMetric(t, c.url, "wail_api_subscriptions", 2)
	if n := conns.Load(); n != 1 {
		t.Fatalf("the two streams took %d connections, want one", n)
	}
	const n = 32 // 16 MiB, far past the stalled stream's 64 KiB window
	got := make(chan error, 1)
	go func() {
		for i := range n {
			if !good.Receive() {
				got <- fmt.Errorf("the reading stream got %d of %d events: %v", i, n, good.Err())
				return
			}
		}
		got <- nil
	}()
	value := bytes.Repeat([]byte("x"), 512<<10)
	for i := range n {
		if _, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: fmt.Appendf(nil, "k%d", i), Value: value})); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	waitMetric(t, c.url, "wail_api_subscriptions", 1)
}
