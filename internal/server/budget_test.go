package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"compress/gzip"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
)

// others keeps another client writing while an attack runs and reports
// how many of its writes succeeded and the first failure.
type others struct {
	stop   chan struct{}
	done   chan struct{}
	ok     atomic.Int64
	mu     sync.Mutex
	failed error
}

func serveOthers(t *testing.T, pc wailv1connect.ProducerServiceClient, table string) *others {
	t.Helper()
	o := &others{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(o.done)
		for i := 0; ; i++ {
			select {
			case <-o.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := pc.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: table, Key: fmt.Appendf(nil, "other-%d", i), Value: []byte("v")}))
			cancel()
			if err != nil {
				o.mu.Lock()
				if o.failed == nil {
					o.failed = err
				}
				o.mu.Unlock()
				return
			}
			o.ok.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return o
}

// check stops the other client and fails the test unless all its writes,
// at least one, succeeded.
func (o *others) check(t *testing.T) {
	t.Helper()
	for o.ok.Load() == 0 {
		select {
		case <-o.done:
		case <-time.After(10 * time.Millisecond):
			continue
		}
		break
	}
	close(o.stop)
	<-o.done
	if o.failed != nil || o.ok.Load() == 0 {
		t.Fatalf("another client was not served meanwhile: %d writes ok, error %v", o.ok.Load(), o.failed)
	}
}

func jsonPut(value []byte) []byte {
	return fmt.Appendf(nil, `{"table":"t","key":"aw==","value":"%s"}`, base64.StdEncoding.EncodeToString(value))
}

// TestRequestSizeCaps: each method has its own request cap, from limits
// for Put/Delete/Get and Write, from api.* for the rest; a request past it
// is resource_exhausted naming the setting, with or without a
// Content-Length, and a gzip bomb is refused without being inflated; other
// clients are served meanwhile.
func TestRequestSizeCaps(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) {
		cfg.Tables = []config.Table{{Name: "t"}}
		cfg.Limits.MaxKeyBytes, cfg.Limits.MaxValueBytes, cfg.Limits.MaxBatchMutations = 1<<10, 16<<10, 4
		cfg.API.MaxWriteRequestBytes = 64 << 10
		cfg.API.MaxAdminRequestBytes = 8 << 10
		cfg.SchemaRegistry.Enabled = false // its schemas need a larger admin cap
	})
	o := serveOthers(t, c.producer, "t")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(make([]byte, 16<<20)) // 16 KB, under the Put cap; inflates past it
	zw.Close()
	cases := []struct {
		name, path, contentType string
		body                    []byte
		chunked, gzip           bool
		code                    string
		says                    string
	}{
		{"Put over its cap", "/wail.v1.ProducerService/Put", "application/json", jsonPut(make([]byte, 30<<10)), false, false,
			"resource_exhausted", "limits.max_key_bytes + limits.max_value_bytes"},
		{"Put over its cap, chunked", "/wail.v1.ProducerService/Put", "application/json", jsonPut(make([]byte, 60<<10)), true, false,
			"resource_exhausted", "limits.max_key_bytes + limits.max_value_bytes"},
		{"Put over max_value_bytes, under the cap", "/wail.v1.ProducerService/Put", "application/json", jsonPut(make([]byte, 17<<10)), false, false,
			"invalid_argument", "limits.max_value_bytes"},
		{"Write over its cap", "/wail.v1.ProducerService/Write", "application/json", bytes.Repeat([]byte(" "), 70<<10), false, false,
			"resource_exhausted", "api.max_write_request_bytes"},
		{"CreateTable over the admin cap", "/wail.v1.AdminService/CreateTable", "application/json", bytes.Repeat([]byte(" "), 9<<10), true, false,
			"resource_exhausted", "api.max_admin_request_bytes"},
		{"gzip bomb", "/wail.v1.ProducerService/Put", "application/json", gz.Bytes(), false, true,
			"resource_exhausted", "not inflated further"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = bytes.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // no Content-Length
			}
			req, _ := http.NewRequest(http.MethodPost, c.url+tc.path, body)
			req.Header.Set("Content-Type", tc.contentType)
			if tc.gzip {
				req.Header.Set("Content-Encoding", "gzip")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(b), `"code":"`+tc.code+`"`) || !strings.Contains(string(b), tc.says) {
				t.Fatalf("status %d %s; want %s saying %q", resp.StatusCode, b, tc.code, tc.says)
			}
		})
	}
	// The same over gRPC (h2c) and the Connect protocol, from real clients
	// gzipping a value of zeros: small on the wire, past the cap inflated.
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	for name, pc := range map[string]wailv1connect.ProducerServiceClient{
		"grpc":    wailv1connect.NewProducerServiceClient(h2c, c.url, connect.WithGRPC(), connect.WithSendGzip()),
		"connect": wailv1connect.NewProducerServiceClient(http.DefaultClient, c.url, connect.WithSendGzip()),
	} {
		_, err := pc.Put(context.Background(), connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("z"), Value: make([]byte, 4<<20)}))
		if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "not inflated further") {
			t.Errorf("%s: a gzipped 4 MiB value: %v", name, err)
		}
	}
	// A binary Write of 4 mutations at the limits fits its cap.
	muts := make([]*wailv1.Mutation, 4)
	for i := range muts {
		muts[i] = &wailv1.Mutation{Table: "t", Key: fmt.Appendf(nil, "k%d", i), Value: make([]byte, 15<<10)}
	}
	if _, err := c.producer.Write(context.Background(), connect.NewRequest(&wailv1.WriteRequest{Mutations: muts})); err != nil {
		t.Fatalf("a Write within its cap: %v", err)
	}
	o.check(t)
}

// rawConn opens a TCP connection to the server of url.
func rawConn(t *testing.T, url string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestSlowClientsAreCut: a body trickled in, headers trickled in and a
// keep-alive connection left idle are all closed after their timeouts,
// while other clients are served. The trickles stop short of a complete
// request, so only the server's timeout can end them.
func TestSlowClientsAreCut(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) {
		cfg.Tables = []config.Table{{Name: "t"}}
		cfg.API.ReadTimeout, cfg.API.ReadHeaderTimeout, cfg.API.IdleTimeout = 500*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond
	})
	// The other client opens a connection per request: with an idle
	// timeout this short, a kept-alive one races the server's close (as
	// any HTTP client whose idle timeout is not below the server's).
	o := serveOthers(t, wailv1connect.NewProducerServiceClient(&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}, c.url), "t")
	cases := []struct {
		name  string
		first string // sent at once
		drip  string // then one byte every 100 ms
		says  string // in the answer, if any
	}{
		{"slow body", "POST /wail.v1.ProducerService/Put HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{",
			"   ", "api.read_timeout"},
		{"slow headers", "POST /wail.v1.ProducerService/Put HTTP/1.1\r\n", "X-S", ""},
		{"idle keep-alive", "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "", ""},
	}
	var wg sync.WaitGroup
	for _, tc := range cases {
		wg.Go(func() {
			conn := rawConn(t, c.url)
			if _, err := io.WriteString(conn, tc.first); err != nil {
				t.Error(err)
				return
			}
			for i := range len(tc.drip) {
				time.Sleep(100 * time.Millisecond)
				if _, err := conn.Write([]byte{tc.drip[i]}); err != nil {
					break // closed already (a slow test machine)
				}
			}
			conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			got, err := io.ReadAll(conn) // until the server closes
			if errors.Is(err, syscall.ECONNRESET) && tc.says == "" {
				err = nil // closed with a byte of ours unread
			}
			if err != nil {
				t.Errorf("%s: the server did not close the connection: %v", tc.name, err)
				return
			}
			if !strings.Contains(string(got), tc.says) {
				t.Errorf("%s: answer %q does not say %q", tc.name, got, tc.says)
			}
		})
	}
	wg.Wait()
	o.check(t)
}

// TestStreamsOutliveTheTimeouts: an event stream idle for longer than the
// read, write and idle timeouts still delivers, over HTTP/1.1 and HTTP/2.
func TestStreamsOutliveTheTimeouts(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) {
		cfg.Tables = []config.Table{{Name: "t"}}
		cfg.API.ReadTimeout, cfg.API.WriteTimeout, cfg.API.IdleTimeout = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	})
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	streams := map[string]*connect.ServerStreamForClient[wailv1.SubscribeResponse]{}
	for name, ec := range map[string]wailv1connect.EventServiceClient{
		"connect over HTTP/1.1": c.events,
		"gRPC over h2c":         wailv1connect.NewEventServiceClient(h2c, c.url, connect.WithGRPC()),
	} {
		s, err := ec.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "t", From: "latest"}))
		if err != nil {
			t.Fatal(err)
		}
		streams[name] = s
	}
	waitMetric(t, c.url, "wail_api_subscriptions", 2)
	time.Sleep(time.Second)
	put, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")}))
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range streams {
		if !s.Receive() || s.Msg().Event.Version != put.Msg.Result.Version {
			t.Errorf("%s: no event after an idle second: %v", name, s.Err())
		}
	}
}

// metric returns the value of a metric (name{label="value"} for one series; a bare name sums its series), or -1.
func metric(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sum, found := 0.0, false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		if f[0] == name || !strings.Contains(name, "{") && strings.HasPrefix(f[0], name+"{") {
			v, _ := strconv.ParseFloat(f[1], 64)
			sum, found = sum+v, true
		}
	}
	if !found {
		return -1
	}
	return sum
}

func waitMetric(t *testing.T, url, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := metric(t, url, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// subscribeRaw sends a Connect streaming Subscribe over a raw connection
// and never reads the answer.
func subscribeRaw(t *testing.T, url, table string) net.Conn {
	t.Helper()
	msg, _ := proto.Marshal(&wailv1.SubscribeRequest{Table: table, From: "beginning"})
	env := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(env[1:], uint32(len(msg)))
	env = append(env, msg...)
	conn := rawConn(t, url)
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetReadBuffer(4 << 10)
	}
	fmt.Fprintf(conn, "POST /wail.v1.EventService/Subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/connect+proto\r\nContent-Length: %d\r\n\r\n", len(env))
	conn.Write(env)
	return conn
}

// TestSubscriberThatNeverReads: a stream whose client stops reading is
// ended after api.write_timeout, so it cannot hold the server's memory;
// a reading subscriber gets every event meanwhile.
func TestSubscriberThatNeverReads(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) {
		cfg.Tables = []config.Table{{Name: "t", Partitions: 2}}
		cfg.API.WriteTimeout = 2 * time.Second // a reading client under -race on a busy machine takes each write well within
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	subscribeRaw(t, c.url, "t")
	good, err := c.events.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "t", From: "beginning"}))
	if err != nil {
		t.Fatal(err)
	}
	waitMetric(t, c.url, "wail_api_subscriptions", 2)
	// 16 MiB: more than the socket buffers hold (the client's is 4 KiB,
	// the server's grows to tcp_wmem's maximum, 4 MiB by default).
	const n = 32
	// The reading subscriber reads as the events come (events are not
	// gzipped: api.compress_events is off).
	got := make(chan error, 1)
	go func() {
		for i := range n {
			if !good.Receive() {
				got <- fmt.Errorf("the reading subscriber got %d of %d events: %v", i, n, good.Err())
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

// TestSubscriptionLimits: streams per client address and in total are
// capped with resource_exhausted naming the limit; a freed slot is taken
// again, and writes go on meanwhile.
func TestSubscriptionLimits(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) {
		cfg.Tables = []config.Table{{Name: "t"}}
		cfg.API.MaxSubscriptions, cfg.API.MaxSubscriptionsPerClient = 3, 2
	})
	o := serveOthers(t, c.producer, "t")
	from := func(ip string) wailv1connect.EventServiceClient {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return wailv1connect.NewEventServiceClient(&http.Client{Transport: &http.Transport{DialContext: d.DialContext}}, c.url)
	}
	open := func(ec wailv1connect.EventServiceClient) (context.CancelFunc, *connect.ServerStreamForClient[wailv1.SubscribeResponse]) {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		s, err := ec.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "t"}))
		if err != nil {
			t.Fatal(err)
		}
		return cancel, s
	}
	refused := func(ec wailv1connect.EventServiceClient, says string) {
		t.Helper()
		_, s := open(ec)
		if s.Receive() || connect.CodeOf(s.Err()) != connect.CodeResourceExhausted || !strings.Contains(s.Err().Error(), says) {
			t.Fatalf("stream not refused: %v; want resource_exhausted saying %s", s.Err(), says)
		}
	}
	a, b, d := from("127.0.0.1"), from("127.0.0.2"), from("127.0.0.3")
	closeFirst, _ := open(a)
	open(a)
	waitMetric(t, c.url, "wail_api_subscriptions", 2)
	refused(a, "api.max_subscriptions_per_client")
	open(b)
	waitMetric(t, c.url, "wail_api_subscriptions", 3)
	refused(d, "api.max_subscriptions")
	closeFirst()
	waitMetric(t, c.url, "wail_api_subscriptions", 2)
	open(d)
	waitMetric(t, c.url, "wail_api_subscriptions", 3)
	o.check(t)
}
