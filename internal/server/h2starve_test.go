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
	conn := rawConn(t, c.url)
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	var (
		connWin  = int64(65535)
		initial  = int64(65535)
		streamIn = map[uint32]int64{} // WINDOW_UPDATEs per stream
		answered = map[uint32]bool{}  // streams the server ended
		status   = map[uint32]string{}
		readErr  error
	)
	go func() { // the server's frames
		dec := hpack.NewDecoder(4096, nil)
		for {
			f, err := fr.ReadFrame()
			mu.Lock()
			if err != nil {
				readErr = err
				cond.Broadcast()
				mu.Unlock()
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if v, ok := f.Value(http2.SettingInitialWindowSize); ok && !f.IsAck() {
					initial = int64(v)
				}
			case *http2.WindowUpdateFrame:
				if f.StreamID == 0 {
					connWin += int64(f.Increment)
				} else {
					streamIn[f.StreamID] += int64(f.Increment)
				}
			case *http2.HeadersFrame:
				if hf, err := dec.DecodeFull(f.HeaderBlockFragment()); err == nil {
					for _, h := range hf {
						if h.Name == ":status" || h.Name == "grpc-status" {
							status[f.StreamID] += h.Name + "=" + h.Value + " "
						}
					}
				}
				answered[f.StreamID] = answered[f.StreamID] || f.StreamEnded()
			case *http2.DataFrame:
				answered[f.StreamID] = answered[f.StreamID] || f.StreamEnded()
			case *http2.RSTStreamFrame:
				answered[f.StreamID] = true
				status[f.StreamID] += "RST_STREAM " + f.ErrCode.String()
			}
			cond.Broadcast()
			mu.Unlock()
		}
	}()
	wake := func() { // cond.Wait with a 50 ms tick
		go func() { time.Sleep(50 * time.Millisecond); mu.Lock(); cond.Broadcast(); mu.Unlock() }()
		cond.Wait()
	}
	mu.Lock()
	defer mu.Unlock()
	// The client takes no answer unless it says so: its window for each
	// stream is 0.
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		t.Fatal(err)
	}
	headers := func(id uint32, path, ctype string) {
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", strings.TrimPrefix(c.url, "http://")},
			{":path", path}, {"content-type", ctype}} {
			_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
	}
	sent := map[uint32]int64{}
	// send sends data on stream id as far as the windows let it within
	// wait, and returns what it could not send.
	send := func(id uint32, data []byte, end bool, wait time.Duration) []byte {
		for len(data) > 0 {
			deadline := time.Now().Add(wait)
			win := func() int64 { return min(connWin, initial+streamIn[id]-sent[id]) }
			for win() <= 0 && readErr == nil && time.Now().Before(deadline) {
				wake()
			}
			n := min(win(), 16<<10, int64(len(data)))
			if n <= 0 {
				return data
			}
			if err := fr.WriteData(id, end && n == int64(len(data)), data[:n]); err != nil {
				t.Fatal(err)
			}
			connWin -= n
			sent[id] += n
			data = data[n:]
		}
		return nil
	}

	// Stream 1: a write stream whose answers cannot go out; past
	// write_stream_in_flight batches it stops reading.
	headers(1, wailv1connect.ProducerServiceWriteStreamProcedure, "application/connect+proto")
	var data []byte
	for i := range 16 {
		msg, _ := proto.Marshal(&wailv1.WriteStreamRequest{Seq: uint64(i + 1),
			Mutations: []*wailv1.Mutation{{Table: "t", Key: []byte("k"), Value: []byte("v")}}})
		data = binary.BigEndian.AppendUint32(append(data, 0), uint32(len(msg)))
		data = append(data, msg...)
	}
	data = binary.BigEndian.AppendUint32(append(data, 0), 1<<20)
	data = append(data, make([]byte, 1<<20)...)
	if left := send(1, data, false, 500*time.Millisecond); len(left) == 0 {
		t.Fatal("the stalled write stream sent all of its 1 MiB batch: the server read it")
	}
	stalled := sent[1]

	// Stream 3: a unary Write on the same connection, its answer welcome.
	headers(3, wailv1connect.ProducerServiceWriteProcedure, "application/proto")
	if err := fr.WriteWindowUpdate(3, 1<<20); err != nil {
		t.Fatal(err)
	}
	body, _ := proto.Marshal(&wailv1.WriteRequest{Mutations: []*wailv1.Mutation{{Table: "t", Key: []byte("k2"), Value: make([]byte, 16<<10)}}})
	if connWin < int64(len(body)) {
		t.Fatalf("a write stream stalled unread (%d bytes sent on it) left %d bytes of the connection's window: "+
			"a unary Write on the connection sends its %d body bytes at that much a round trip", stalled, connWin, len(body))
	}
	if left := send(3, body, true, 3*time.Second); len(left) > 0 {
		t.Fatalf("a unary Write on the connection of a write stream stalled unread (%d bytes sent on it) could send %d of its %d body bytes in 3 s: "+
			"the stalled stream holds the connection's whole window (%d left)", stalled, len(body)-len(left), len(body), connWin)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !answered[3] && readErr == nil && time.Now().Before(deadline) {
		wake()
	}
	if !answered[3] || !strings.Contains(status[3], ":status=200") {
		t.Fatalf("unary Write on the connection of a stalled write stream: answered %v, %q, read error %v; want 200", answered[3], status[3], readErr)
	}
}
