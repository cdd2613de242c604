package server_test

import (
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
)

// TestUnreadRequestDataBounded: an h2c client opens a write stream, sends
// its batches and reads no answer (its window for them is 0), so the
// stream stops reading once api.write_stream_in_flight batches wait for
// their answers; the client goes on sending as far as the server's
// flow-control windows let it. What it sends then sits unread in the
// server's memory, outside the request-body budget: up to the
// connection's receive window (Go's default, 1 MiB: api.max_connections
// such clients held 4 GiB). The window is api.receive_window_bytes.
// Not parallel: it measures the heap.
func TestUnreadRequestDataBounded(t *testing.T) {
	const conns, window = 32, 64 << 10
	c := start(t, func(cfg *config.Config) {
		cfg.API.MaxConnections = 256
		cfg.API.ReceiveWindowBytes = window
		cfg.Tables = []config.Table{{Name: "t", Partitions: 1}}
	})
	before := heapBytes()
	var sent sync.WaitGroup
	for range conns {
		sent.Add(1)
		go func() {
			defer sent.Done()
			pushUnread(t, c.url, 1<<20)
		}()
	}
	sent.Wait()
	held := heapBytes() - before
	if held > conns*window*4 {
		t.Fatalf("%d connections that each pushed what the server's windows let them past a stalled write stream hold %d KiB of heap; "+
			"want at most about their receive windows (%d KiB each)", conns, held>>10, window>>10)
	}
	t.Logf("%d connections hold %d KiB of heap", conns, held>>10)
}

// pushUnread opens a write stream on a connection of its own whose
// answers the server cannot send (the client's window is 0), sends
// write_stream_in_flight batches and then up to max bytes more, as far as
// the server's windows allow, and returns once the server stopped opening
// them for half a second. The connection stays open until the test ends.
func pushUnread(t *testing.T, url string, max int) {
	h := newH2C(t, url)
	h.open(1, wailv1connect.ProducerServiceWriteStreamProcedure, "application/connect+proto")
	h.send(1, stalledWriteStream(max), false, 500*time.Millisecond)
}
