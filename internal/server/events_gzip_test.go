package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/config"
)

// TestCompressEvents: a Subscribe message of 8 KiB goes out gzipped to a
// client that accepts gzip only with api.compress_events on. The test
// speaks the Connect streaming protocol by hand to see each message's
// compression flag.
func TestCompressEvents(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		compress       bool
		wantCompressed bool
	}{{false, false}, {true, true}} {
		c := start(t, func(cfg *config.Config) { cfg.API.CompressEvents = tc.compress })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := c.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t", Partitions: 1})); err != nil {
			t.Fatal(err)
		}
		if _, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: bytes.Repeat([]byte("a"), 8<<10)})); err != nil {
			t.Fatal(err)
		}
		body, _ := proto.Marshal(&wailv1.SubscribeRequest{Table: "t", From: "beginning", MaxBatchEvents: 100})
		env := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(body)))
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/wail.v1.EventService/Subscribe", bytes.NewReader(append(env, body...)))
		req.Header.Set("Content-Type", "application/connect+proto")
		req.Header.Set("Connect-Accept-Encoding", "gzip")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		head := make([]byte, 5)
		if _, err := io.ReadFull(resp.Body, head); err != nil {
			t.Fatalf("compress_events=%v: no message: %v", tc.compress, err)
		}
		resp.Body.Close()
		if compressed := head[0]&1 == 1; compressed != tc.wantCompressed {
			t.Fatalf("compress_events=%v: message compressed=%v (flags %#x, %d bytes), want %v",
				tc.compress, compressed, head[0], binary.BigEndian.Uint32(head[1:]), tc.wantCompressed)
		}
	}
}

// TestCompressWriteAnswers: the answer to a Write of 500 mutations (over
// 4 KiB) goes out gzipped to a client that accepts gzip only with
// api.compress_write_answers on. A unary Connect answer says so in its
// Content-Encoding.
func TestCompressWriteAnswers(t *testing.T) {
	t.Parallel()
	for _, compress := range []bool{false, true} {
		c := start(t, func(cfg *config.Config) { cfg.API.CompressWriteAnswers = compress })
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := c.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t", Partitions: 1})); err != nil {
			t.Fatal(err)
		}
		w := &wailv1.WriteRequest{}
		for i := range 500 {
			w.Mutations = append(w.Mutations, &wailv1.Mutation{Table: "t", Key: fmt.Appendf(nil, "key-%04d", i), Value: []byte("v")})
		}
		body, _ := proto.Marshal(w)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/wail.v1.ProducerService/Write", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/proto")
		req.Header.Set("Accept-Encoding", "gzip")
		tr := &http.Transport{DisableCompression: true} // see the encoding as sent
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("compress_write_answers=%v: status %d", compress, resp.StatusCode)
		}
		if gz := resp.Header.Get("Content-Encoding") == "gzip"; gz != compress {
			t.Fatalf("compress_write_answers=%v: answer of %d bytes gzipped=%v (Content-Encoding %q)",
				compress, n, gz, resp.Header.Get("Content-Encoding"))
		}
		if !compress && n < 4<<10 {
			t.Fatalf("the answer is %d bytes, under the 4 KiB below which nothing is compressed: the test proves nothing", n)
		}
		// Get is another method of the same service: still gzipped.
		if _, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("big"), Value: bytes.Repeat([]byte("a"), 8<<10)})); err != nil {
			t.Fatal(err)
		}
		body, _ = proto.Marshal(&wailv1.GetRequest{Table: "t", Key: []byte("big")})
		req, _ = http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/wail.v1.ProducerService/Get", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/proto")
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err = (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("compress_write_answers=%v: Get of 8 KiB: status %d, Content-Encoding %q, want gzip",
				compress, resp.StatusCode, resp.Header.Get("Content-Encoding"))
		}
	}
}
