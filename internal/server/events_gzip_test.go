package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
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
