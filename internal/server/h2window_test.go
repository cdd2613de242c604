package server_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
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
// them for a while. The connection stays open until the test ends.
func pushUnread(t *testing.T, url string, max int) {
	conn := rawConn(t, url)
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Error(err)
		return
	}
	fr := http2.NewFramer(conn, conn)
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	connWin, streamWin := int64(65535), int64(65535)
	streamSet := false
	go func() { // the server's frames: its windows
		for {
			f, err := fr.ReadFrame()
			mu.Lock()
			if err != nil {
				connWin, streamWin = -1, -1
				cond.Broadcast()
				mu.Unlock()
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if v, ok := f.Value(http2.SettingInitialWindowSize); ok && !streamSet {
					streamWin += int64(v) - 65535
					streamSet = true
				}
			case *http2.WindowUpdateFrame:
				if f.StreamID == 0 {
					connWin += int64(f.Increment)
				} else {
					streamWin += int64(f.Increment)
				}
			}
			cond.Broadcast()
			mu.Unlock()
		}
	}()
	mu.Lock()
	defer mu.Unlock()
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		t.Error(err)
		return
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", strings.TrimPrefix(url, "http://")},
		{":path", wailv1connect.ProducerServiceWriteStreamProcedure}, {"content-type", "application/connect+proto"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
		t.Error(err)
		return
	}
	var data []byte
	for i := range 16 { // more than write_stream_in_flight (8)
		msg, _ := proto.Marshal(&wailv1.WriteStreamRequest{Seq: uint64(i + 1),
			Mutations: []*wailv1.Mutation{{Table: "t", Key: []byte("k"), Value: []byte("v")}}})
		data = binary.BigEndian.AppendUint32(append(data, 0), uint32(len(msg)))
		data = append(data, msg...)
	}
	// Then a batch that the stream will not read: max bytes of it.
	data = binary.BigEndian.AppendUint32(append(data, 0), uint32(max))
	data = append(data, make([]byte, max)...)
	for len(data) > 0 {
		deadline := time.Now().Add(500 * time.Millisecond)
		for min(connWin, streamWin) == 0 && time.Now().Before(deadline) {
			go func() { time.Sleep(50 * time.Millisecond); mu.Lock(); cond.Broadcast(); mu.Unlock() }()
			cond.Wait()
		}
		n := min(connWin, streamWin, 16<<10, int64(len(data)))
		if n <= 0 {
			return // closed, or no window for half a second: the server reads no more
		}
		if err := fr.WriteData(1, false, data[:n]); err != nil {
			return
		}
		connWin, streamWin = connWin-n, streamWin-n
		data = data[n:]
	}
}
