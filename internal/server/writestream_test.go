package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// h2cClient is an HTTP/2 client without TLS whose streams take at most
// 64 KiB of response ahead of the reader.
func h2cClient(t *testing.T) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: &p,
		HTTP2: &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 64 << 10}}}
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

// TestWriteStreamServer: a write stream outlives api.read_timeout (its
// body is its batches), and a client that sends without ever reading its
// answers loses the stream after api.write_timeout, with the server
// holding at most api.write_stream_in_flight batches of it meanwhile.
func TestWriteStreamServer(t *testing.T) {
	t.Parallel()
	url := servertest.Start(t, func(cfg *config.Config) {
		cfg.API.ReadTimeout, cfg.API.WriteTimeout = 100*time.Millisecond, 300*time.Millisecond
		cfg.API.WriteStreamInFlight = 8 // the least
	})
	hc := h2cClient(t)
	c := wailv1connect.NewProducerServiceClient(hc, url)
	admin := wailv1connect.NewAdminServiceClient(hc, url)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t", Partitions: 1})); err != nil {
		t.Fatal(err)
	}
	batch := func(seq uint64, n int) *wailv1.WriteStreamRequest {
		req := &wailv1.WriteStreamRequest{Seq: seq}
		for i := range n {
			req.Mutations = append(req.Mutations, &wailv1.Mutation{Table: "t", Key: fmt.Appendf(nil, "k-%d-%d", seq, i), Value: []byte("v")})
		}
		return req
	}

	s := c.WriteStream(ctx)
	for seq := uint64(1); seq <= 3; seq++ {
		if err := s.Send(batch(seq, 2)); err != nil {
			t.Fatal(err)
		}
		a, err := s.Receive()
		if err != nil || a.Error != nil || len(a.Results) != 2 || !a.Results[0].Stored {
			t.Fatalf("batch %d: %v %v", seq, a, err)
		}
		time.Sleep(150 * time.Millisecond) // past api.read_timeout between batches
	}
	_ = s.CloseRequest()
	_ = s.CloseResponse()

	// Never read: answers of 2,000 results fill the flow-control window,
	// then the server stops reading and the pending send times out.
	deaf := c.WriteStream(ctx)
	sent := 0
	failed := make(chan error, 1)
	go func() {
		for seq := uint64(1); ; seq++ {
			if err := deaf.Send(batch(seq, 2000)); err != nil {
				failed <- err
				return
			}
			sent++
		}
	}()
	select {
	case err := <-failed:
		t.Logf("the client's send failed after %d batches: %v", sent, err)
	case <-ctx.Done():
		t.Fatal("a client that never reads kept its stream")
	}
	deadline := time.Now().Add(30 * time.Second)
	for metric(t, url, "wail_api_write_streams") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("wail_api_write_streams is %v after the deaf stream failed", metric(t, url, "wail_api_write_streams"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = deaf.CloseResponse()
}
