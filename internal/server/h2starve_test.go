package server_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
)

// TestStalledStreamLeavesConnectionWindow: Go's HTTP/2 server gives the
// connection's window back only as handlers read, so what one call's
// client sent and its handler has not read yet holds that much of the
// connection's window. A write stream that stopped reading (its batches
// wait for answers the client does not take) fills its own window; were
// that the connection's whole window, no other call on the connection
// (clients multiplex their calls on one connection) could send a byte of
// its body until the stream read again, or api.read_timeout. A unary
// Write on the same connection completes.
func TestStalledStreamLeavesConnectionWindow(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) {
		cfg.API.ReceiveWindowBytes = 64 << 10
		cfg.Tables = []config.Table{{Name: "t", Partitions: 1}}
	})
	h := newH2C(t, c.url)

	// Stream 1: a write stream whose answers cannot go out; past
	// write_stream_in_flight batches it stops reading.
	h.open(1, wailv1connect.ProducerServiceWriteStreamProcedure, "application/connect+proto")
	if left := h.send(1, stalledWriteStream(1<<20), false, 500*time.Millisecond); len(left) == 0 {
		t.Fatal("the stalled write stream sent all of its 1 MiB batch: the server read it")
	}
	stalled := h.sentOn(1)

	// Stream 3: a unary Write on the same connection, its answer welcome.
	h.open(3, wailv1connect.ProducerServiceWriteProcedure, "application/proto")
	h.takeAnswer(3, 1<<20)
	body, _ := proto.Marshal(&wailv1.WriteRequest{Mutations: []*wailv1.Mutation{{Table: "t", Key: []byte("k2"), Value: make([]byte, 16<<10)}}})
	if left := h.window(); left < int64(len(body)) {
		t.Fatalf("a write stream stalled unread (%d bytes sent on it) left %d bytes of the connection's window: "+
			"a unary Write on the connection sends its %d body bytes at that much a round trip", stalled, left, len(body))
	}
	if left := h.send(3, body, true, 3*time.Second); len(left) > 0 {
		t.Fatalf("a unary Write on the connection of a write stream stalled unread (%d bytes sent on it) could send %d of its %d body bytes in 3 s: "+
			"the stalled stream holds the connection's whole window (%d left)", stalled, len(body)-len(left), len(body), h.window())
	}
	if ok, status := h.answer(3, 10*time.Second); !ok || !strings.Contains(status, ":status=200") {
		t.Fatalf("unary Write on the connection of a stalled write stream: answered %v, %q; want 200", ok, status)
	}
}
