package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestShutdownWithStreamsOpen: a Subscribe client that stops reading
// while events stream to it (the server's socket buffer full), or a
// console tail left open in a browser, neither holds up a shutdown nor
// fails it: streams are cut at once (a subscriber resumes from its
// cursor). (They held it for half of shutdown_timeout, took that time
// from the resolver's drain, and Run returned "stop serving: context
// deadline exceeded ... cut: 1 requests in flight", so `wail serve`
// exited 1 on SIGTERM.)
func TestShutdownWithStreamsOpen(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		open func(t *testing.T, conn net.Conn)
	}{
		{"a subscriber that never reads", func(t *testing.T, conn net.Conn) {
			msg, err := proto.Marshal(&wailv1.SubscribeRequest{Table: "t", From: "beginning"})
			if err != nil {
				t.Fatal(err)
			}
			var body bytes.Buffer
			body.WriteByte(0)
			_ = binary.Write(&body, binary.BigEndian, uint32(len(msg)))
			body.Write(msg)
			if _, err := fmt.Fprintf(conn, "POST /wail.v1.EventService/Subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/connect+proto\r\nContent-Length: %d\r\n\r\n%s", body.Len(), body.Bytes()); err != nil {
				t.Fatal(err)
			}
		}},
		{"a console tail", func(t *testing.T, conn net.Conn) {
			if _, err := fmt.Fprint(conn, "GET /console/api/tail?table=t HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			shutdownWithStream(t, tc.open)
		})
	}
}

func shutdownWithStream(t *testing.T, open func(t *testing.T, conn net.Conn)) {
	cfg := testConfig(t)
	cfg.ShutdownTimeout = 2 * time.Second
	r := runServer(t, cfg, seams{})
	ctx := context.Background()
	value := strings.Repeat("v", 100<<10)
	const writes = 200
	for i := range writes {
		if _, err := r.put(ctx, fmt.Sprintf("k%d", i), value); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	open(t, conn)
	time.Sleep(time.Second) // the stream runs (and a subscriber's socket fills)
	start := time.Now()
	r.stop()
	select {
	case err := <-r.done:
		r.done <- err
		if err != nil {
			t.Errorf("shutdown with a stream open: %v", err)
		}
		if took := time.Since(start); took > cfg.ShutdownTimeout/4 {
			t.Errorf("shutdown took %v with a stream open (shutdown_timeout %v)", took, cfg.ShutdownTimeout)
		}
	case <-time.After(cfg.ShutdownTimeout + time.Second):
		t.Fatalf("shutdown did not end within shutdown_timeout (%v)", cfg.ShutdownTimeout)
	}
}
