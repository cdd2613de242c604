package server_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/encoding/protowire"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
)

// zeros are the bodies stallBody sends: one buffer for all (each its
// own would put the clients' bytes in the heap the test measures).
var zeros = make([]byte, 4<<20)

// stallBody sends the headers of a Write with a body of n bytes (at most
// 4 MiB) over conn, then n-1 bytes of it, and stops: the server waits for
// the last byte until api.read_timeout.
func stallBody(conn net.Conn, host string, n int) {
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/proto\r\nContent-Length: %d\r\n\r\n",
		wailv1connect.ProducerServiceWriteProcedure, host, n)
	if _, err := conn.Write([]byte(head)); err != nil {
		return
	}
	_, _ = conn.Write(zeros[:n-1]) // fails once a refused request's connection closes
}

// refusedInFlight checks that err is resource_exhausted naming
// api.max_request_bytes_in_flight, with a RetryInfo detail.
func refusedInFlight(t *testing.T, what string, err error) {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeResourceExhausted || !strings.Contains(ce.Message(), "api.max_request_bytes_in_flight") {
		t.Fatalf("%s with the bodies in flight at the cap: %v; want resource_exhausted naming api.max_request_bytes_in_flight", what, err)
	}
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if _, ok := v.(*errdetails.RetryInfo); ok {
				return
			}
		}
	}
	t.Errorf("%s: no RetryInfo detail in %v", what, ce)
}

// TestRequestBodiesInFlightBounded: clients that send most of a large
// Write body and then stall (each holding what it sent until
// api.read_timeout) make the server hold at most
// api.max_request_bytes_in_flight of them over all connections; past it
// a request gets resource_exhausted naming the setting, with a RetryInfo
// detail, whether its body's length is known (connect) or not (gRPC);
// once the stalled clients go, requests are served again. Without the
// cap, 48 clients held 48 bodies (the clients' bandwidth times
// api.read_timeout, over api.max_connections times
// api.max_streams_per_connection calls). Not parallel: it measures the
// heap.
func TestRequestBodiesInFlightBounded(t *testing.T) {
	const body, clients, budget = 2 << 20, 48, 8 << 20
	c := start(t, func(cfg *config.Config) {
		cfg.Tables = []config.Table{{Name: "t"}}
		cfg.API.MaxWriteRequestBytes = body + 1<<10
		cfg.API.MaxRequestBytesInFlight = budget
		cfg.API.ReadTimeout = time.Minute // the stalled bodies stay for the test
	})
	host := strings.TrimPrefix(c.url, "http://")
	before := heapBytes()
	// The first ones fill the budget but for the last byte of each: the
	// others are refused, and so is every request after them.
	const fill = budget / body
	conns := make([]net.Conn, clients)
	for i := range conns {
		for deadline := time.Now().Add(10 * time.Second); i == fill && metric(t, c.url, "wail_api_request_bytes_in_flight") < fill*(body-1); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("wail_api_request_bytes_in_flight never reached the %d bodies that fill the budget", fill)
			}
		}
		conns[i] = rawConn(t, c.url)
		go stallBody(conns[i], host, body)
	}
	var held int64
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		held = heapBytes() - before
		if held >= clients*body {
			break
		}
	}
	t.Logf("%d stalled bodies of %d MiB hold %d MiB of heap", clients, body>>20, held>>20)
	if held > 3*budget {
		t.Fatalf("%d clients that stalled their %d MiB bodies hold %d MiB of heap; want at most about api.max_request_bytes_in_flight (%d MiB)",
			clients, body>>20, held>>20, budget>>20)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	write := func(pc wailv1connect.ProducerServiceClient) error {
		_, err := pc.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: []*wailv1.Mutation{
			{Table: "t", Key: []byte("k"), Value: []byte("v")}}}))
		return err
	}
	grpc := wailv1connect.NewProducerServiceClient(h2cClient(t), c.url, connect.WithGRPC())
	refusedInFlight(t, "a connect Write (length known)", write(c.producer))
	refusedInFlight(t, "a gRPC Write (length unknown)", write(grpc))

	for _, conn := range conns {
		conn.Close()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err := write(grpc)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a Write after the stalled clients went: %v", err)
		}
	}
}

// TestWriteStreamBatchesGiveBackTheirBytes: a write stream's batch holds
// its bytes against api.max_request_bytes_in_flight only until it is
// answered, so a stream carries more than the budget over its life; a
// batch that does not fit ends the stream with resource_exhausted naming
// the setting; and every byte is given back once the calls end.
func TestWriteStreamBatchesGiveBackTheirBytes(t *testing.T) {
	t.Parallel()
	const request, budget = 2 << 20, 3 << 20
	c := start(t, func(cfg *config.Config) {
		cfg.API.MaxWriteRequestBytes = request
		cfg.API.MaxRequestBytesInFlight = budget
		cfg.API.ReadTimeout = time.Minute
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hc := h2cClient(t)
	if _, err := wailv1connect.NewAdminServiceClient(hc, c.url).CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t", Partitions: 1})); err != nil {
		t.Fatal(err)
	}
	pc := wailv1connect.NewProducerServiceClient(hc, c.url)
	batch := func(seq uint64, size int) *wailv1.WriteStreamRequest {
		return &wailv1.WriteStreamRequest{Seq: seq, Mutations: []*wailv1.Mutation{
			{Table: "t", Key: fmt.Appendf(nil, "k-%d", seq), Value: make([]byte, size)}}}
	}
	s := pc.WriteStream(ctx)
	for seq := uint64(1); seq <= 8; seq++ { // 4 MiB in all
		if err := s.Send(batch(seq, 512<<10)); err != nil {
			t.Fatal(err)
		}
		if a, err := s.Receive(); err != nil || a.Error != nil {
			t.Fatalf("batch %d of a stream over more than the budget: %v %v", seq, a, err)
		}
	}
	_ = s.CloseRequest()
	_ = s.CloseResponse()

	// A stalled Write holds 2 MiB: a 1.5 MiB batch does not fit.
	stalled := rawConn(t, c.url)
	go stallBody(stalled, strings.TrimPrefix(c.url, "http://"), request)
	for deadline := time.Now().Add(10 * time.Second); metric(t, c.url, "wail_api_request_bytes_in_flight") < request-1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stalled body was never held")
		}
	}
	s = pc.WriteStream(ctx)
	_ = s.Send(batch(1, 1536<<10)) // fails if the refusal came first: Receive tells it
	_, err := s.Receive()
	refusedInFlight(t, "a write stream's batch", err)
	_ = s.CloseResponse()
	stalled.Close()
	for deadline := time.Now().Add(10 * time.Second); metric(t, c.url, "wail_api_request_bytes_in_flight") != 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("wail_api_request_bytes_in_flight is %v once every call ended", metric(t, c.url, "wail_api_request_bytes_in_flight"))
		}
	}
}

// TestEventStreamsHoldNoBudget: a Subscribe stream lives on after its
// request arrived, for as long as its client reads; its body is given
// back to api.max_request_bytes_in_flight once read (what the stream
// holds, api.max_subscriptions bounds), or streams left open, with
// large requests, would take the budget from every other call for good.
func TestEventStreamsHoldNoBudget(t *testing.T) {
	t.Parallel()
	const budget = 3 << 20
	c := start(t, func(cfg *config.Config) {
		cfg.Tables = []config.Table{{Name: "t"}}
		cfg.API.MaxWriteRequestBytes = 2 << 20
		cfg.API.MaxRequestBytesInFlight = budget
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const streams = 8 // of 512 KiB each: more than the budget
	for range streams {
		req := &wailv1.SubscribeRequest{Table: "t", From: "latest"}
		req.ProtoReflect().SetUnknown(protowire.AppendBytes(protowire.AppendTag(nil, 1000, protowire.BytesType), make([]byte, 512<<10)))
		s, err := c.events.Subscribe(ctx, connect.NewRequest(req))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
	}
	for deadline := time.Now().Add(10 * time.Second); metric(t, c.url, "wail_api_subscriptions") < streams; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("wail_api_subscriptions = %v, want %d", metric(t, c.url, "wail_api_subscriptions"), streams)
		}
	}
	if _, err := c.producer.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: []*wailv1.Mutation{
		{Table: "t", Key: []byte("k"), Value: make([]byte, 1<<20)}}})); err != nil {
		t.Fatalf("a 1 MiB Write with %d event streams open: %v", streams, err)
	}
	if got := metric(t, c.url, "wail_api_request_bytes_in_flight"); got != 0 {
		t.Errorf("wail_api_request_bytes_in_flight = %v with only event streams open, want 0", got)
	}
}

// TestAnnouncedBodiesTakeNoBudget: requests that announce large bodies
// and send none of them take nothing of api.max_request_bytes_in_flight:
// a Write goes through while they wait.
func TestAnnouncedBodiesTakeNoBudget(t *testing.T) {
	t.Parallel()
	const body = 2 << 20
	c := start(t, func(cfg *config.Config) {
		cfg.Tables = []config.Table{{Name: "t"}}
		cfg.API.MaxWriteRequestBytes = body + 1<<10
		cfg.API.MaxRequestBytesInFlight = 2 * body
		cfg.API.ReadTimeout = time.Minute
	})
	host := strings.TrimPrefix(c.url, "http://")
	for range 16 {
		conn := rawConn(t, c.url)
		if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/proto\r\nContent-Length: %d\r\n\r\n",
			wailv1connect.ProducerServiceWriteProcedure, host, body); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.producer.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: []*wailv1.Mutation{
		{Table: "t", Key: []byte("k"), Value: make([]byte, 1<<20)}}})); err != nil {
		t.Fatalf("a Write while 16 requests announce 2 MiB bodies: %v", err)
	}
}

// TestWriteStreamWaitsForItsOwnBatches: a producer pipelines its
// batches (client.Producer: up to 8 unanswered), each holding its bytes
// until answered; a batch that finds api.max_request_bytes_in_flight
// full of the stream's own batches waits for them instead of ending the
// stream. Refused, a producer of large batches on an idle server lost
// its stream again and again when the budget held fewer than its batches
// in flight (any budget from the largest request up passes validation).
func TestWriteStreamWaitsForItsOwnBatches(t *testing.T) {
	t.Parallel()
	const request, budget, batches = 2 << 20, 5 << 19, 8 // 2.5 MiB: two 1 MiB batches, not three
	c := start(t, func(cfg *config.Config) {
		cfg.API.MaxWriteRequestBytes = request
		cfg.API.MaxRequestBytesInFlight = budget
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hc := h2cClient(t)
	if _, err := wailv1connect.NewAdminServiceClient(hc, c.url).CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t", Partitions: 1})); err != nil {
		t.Fatal(err)
	}
	s := wailv1connect.NewProducerServiceClient(hc, c.url).WriteStream(ctx)
	sent := make(chan error, 1)
	go func() {
		for seq := uint64(1); seq <= batches; seq++ {
			// 1 MiB of many mutations: a batch takes a while to write
			muts := make([]*wailv1.Mutation, 1000)
			for i := range muts {
				muts[i] = &wailv1.Mutation{Table: "t", Key: fmt.Appendf(nil, "k-%d-%d", seq, i), Value: make([]byte, 1<<10)}
			}
			if err := s.Send(&wailv1.WriteStreamRequest{Seq: seq, Mutations: muts}); err != nil {
				sent <- err
				return
			}
		}
		sent <- s.CloseRequest()
	}()
	for seq := uint64(1); seq <= batches; seq++ {
		a, err := s.Receive()
		if err != nil || a.Error != nil {
			t.Fatalf("answer %d of %d pipelined 1 MiB batches under a %d KiB budget, on an idle server: %v %v", seq, batches, budget>>10, a, err)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	_ = s.CloseResponse()
}

// TestRegistryBodyRefusedByBudgetIsRetried: the schema registry answers a
// body refused by api.max_request_bytes_in_flight 429, which Confluent's
// clients retry, with the setting named; it answered 422 "Invalid
// schema", which they take as the schema's fault and give up on.
func TestRegistryBodyRefusedByBudgetIsRetried(t *testing.T) {
	t.Parallel()
	const body = 2 << 20
	c := start(t, func(cfg *config.Config) {
		cfg.API.MaxWriteRequestBytes = body
		cfg.API.MaxRequestBytesInFlight = body + 5
		cfg.API.ReadTimeout = time.Minute
	})
	stalled := rawConn(t, c.url)
	go stallBody(stalled, strings.TrimPrefix(c.url, "http://"), body)
	for deadline := time.Now().Add(10 * time.Second); metric(t, c.url, "wail_api_request_bytes_in_flight") < body-1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stalled body was never held")
		}
	}
	for _, path := range []string{"/subjects/s-value/versions", "/config/s-value", "/mode/s-value"} {
		method := http.MethodPost
		if path != "/subjects/s-value/versions" {
			method = http.MethodPut
		}
		req, err := http.NewRequest(method, c.url+config.SchemaRegistryPath+path,
			strings.NewReader(`{"schema": "syntax = \"proto3\"; message M { string a = 1; }", "schemaType": "PROTOBUF", "compatibility": "NONE", "mode": "READWRITE"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(answer), "api.max_request_bytes_in_flight") {
			t.Errorf("%s %s with the budget full: %d %s; want 429 naming api.max_request_bytes_in_flight", method, path, resp.StatusCode, answer)
		}
	}
}

// TestWriteStreamStalledBatchGivesBackItsBytes: a write stream has no
// read deadline (its body is its batches, for as long as it lives), but a
// batch that has begun to arrive must arrive within api.read_timeout, as
// any body: 3 streams that each sent most of a 2 MiB batch and stalled
// held api.max_request_bytes_in_flight for as long as their connection
// lived, and every call that sent a body was refused meanwhile.
func TestWriteStreamStalledBatchGivesBackItsBytes(t *testing.T) {
	t.Parallel()
	const request, budget = 2 << 20, 6 << 20
	c := start(t, func(cfg *config.Config) {
		cfg.Tables = []config.Table{{Name: "t"}}
		cfg.API.MaxWriteRequestBytes = request
		cfg.API.MaxRequestBytesInFlight = budget
		// 3 s: the three batches must be seen held at once; with 1 s the
		// first was given back before the third had arrived at load 10 (CI)
		cfg.API.ReadTimeout = 3 * time.Second
	})
	hc := h2cClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	for range 3 {
		pw := rawWriteStream(ctx, t, hc, c.url, request-1<<10)
		go func() { _, _ = pw.Write(zeros[:request-2<<10]) }() // and the rest never
	}
	for deadline := time.Now().Add(10 * time.Second); metric(t, c.url, "wail_api_request_bytes_in_flight") < budget-8<<10; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled batches were never held: %v", metric(t, c.url, "wail_api_request_bytes_in_flight"))
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, err := c.producer.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: []*wailv1.Mutation{
			{Table: "t", Key: []byte("k"), Value: make([]byte, 64<<10)}}}))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a Write 10 s after 3 write streams stalled their batches (api.read_timeout 3 s): %v; %v bytes held",
				err, metric(t, c.url, "wail_api_request_bytes_in_flight"))
		}
	}
}

// TestWriteStreamOversizedBatchTakesNoMoreThanItsCap: a write stream's
// batch announced past its cap (connect reads it through to discard it)
// is cut once it passes the cap, as a Write's body is: it took the whole
// of api.max_request_bytes_in_flight while the client sent it (here a
// 1 MiB Write was refused for as long as the client stalled, up to
// api.read_timeout).
func TestWriteStreamOversizedBatchTakesNoMoreThanItsCap(t *testing.T) {
	t.Parallel()
	const request, budget = 2 << 20, 6 << 20
	c := start(t, func(cfg *config.Config) {
		cfg.Tables = []config.Table{{Name: "t"}}
		cfg.API.MaxWriteRequestBytes = request
		cfg.API.MaxRequestBytesInFlight = budget
		cfg.API.ReadTimeout = time.Minute
	})
	hc := h2cClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pw := rawWriteStream(ctx, t, hc, c.url, 64<<20)
	go func() { // 5.5 MiB of it, then nothing
		_, _ = pw.Write(zeros)
		_, _ = pw.Write(zeros[:3<<19])
	}()
	time.Sleep(time.Second) // the server has read what it takes of it
	_, err := c.producer.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: []*wailv1.Mutation{
		{Table: "t", Key: []byte("k"), Value: make([]byte, 1<<20)}}}))
	if err != nil {
		t.Fatalf("a 1 MiB Write while a write stream sends a 64 MiB batch (cap %d MiB, budget %d MiB): %v; %v bytes held",
			request>>20, budget>>20, err, metric(t, c.url, "wail_api_request_bytes_in_flight"))
	}
}

// rawWriteStream opens a WriteStream whose request body the test writes
// by hand, and writes the envelope of a first batch announced as n bytes:
// what follows is the test's (pw; closed at the end of the test).
func rawWriteStream(ctx context.Context, t *testing.T, hc *http.Client, url string, n uint32) *io.PipeWriter {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { _ = pw.Close() })
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+wailv1connect.ProducerServiceWriteStreamProcedure, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/connect+proto")
	go func() {
		if resp, err := hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	envelope := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(envelope[1:], n)
	if _, err := pw.Write(envelope); err != nil {
		t.Fatal(err)
	}
	return pw
}
