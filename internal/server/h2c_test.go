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
)

// h2c is a hand-written HTTP/2 client on a connection of its own that
// keeps to the server's flow-control windows and takes no answer's data
// unless told to (its window for each stream is 0): it sends what it is
// told, as far as the server lets it, and records what the server sends.
type h2c struct {
	t    *testing.T
	url  string
	fr   *http2.Framer
	mu   sync.Mutex
	cond *sync.Cond
	// Under mu:
	connWin  int64
	initial  int64
	streamIn map[uint32]int64 // WINDOW_UPDATEs per stream
	sent     map[uint32]int64
	answered map[uint32]bool // streams the server ended
	status   map[uint32]string
	readErr  error
}

func newH2C(t *testing.T, url string) *h2c {
	t.Helper()
	conn := rawConn(t, url)
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	c := &h2c{t: t, url: url, fr: http2.NewFramer(conn, conn), connWin: 65535, initial: 65535,
		streamIn: map[uint32]int64{}, sent: map[uint32]int64{}, answered: map[uint32]bool{}, status: map[uint32]string{}}
	c.cond = sync.NewCond(&c.mu)
	go c.read()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		t.Fatal(err)
	}
	return c
}

// read records the server's frames: its windows, and the streams it
// answered.
func (c *h2c) read() {
	dec := hpack.NewDecoder(4096, nil)
	for {
		f, err := c.fr.ReadFrame()
		c.mu.Lock()
		if err != nil {
			c.readErr = err
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if v, ok := f.Value(http2.SettingInitialWindowSize); ok && !f.IsAck() {
				c.initial = int64(v)
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				c.connWin += int64(f.Increment)
			} else {
				c.streamIn[f.StreamID] += int64(f.Increment)
			}
		case *http2.HeadersFrame:
			if hf, err := dec.DecodeFull(f.HeaderBlockFragment()); err == nil {
				for _, h := range hf {
					if h.Name == ":status" || h.Name == "grpc-status" {
						c.status[f.StreamID] += h.Name + "=" + h.Value + " "
					}
				}
			}
			c.answered[f.StreamID] = c.answered[f.StreamID] || f.StreamEnded()
		case *http2.DataFrame:
			c.answered[f.StreamID] = c.answered[f.StreamID] || f.StreamEnded()
		case *http2.RSTStreamFrame:
			c.answered[f.StreamID] = true
			c.status[f.StreamID] += "RST_STREAM " + f.ErrCode.String()
		}
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

// wait is cond.Wait with a 50 ms tick; under mu.
func (c *h2c) wait() {
	go func() { time.Sleep(50 * time.Millisecond); c.mu.Lock(); c.cond.Broadcast(); c.mu.Unlock() }()
	c.cond.Wait()
}

// open starts a POST of path on stream id.
func (c *h2c) open(id uint32, path, ctype string) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", strings.TrimPrefix(c.url, "http://")},
		{":path", path}, {"content-type", ctype}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
		c.t.Fatal(err)
	}
}

// takeAnswer lets the server send up to n bytes of stream id's answer.
func (c *h2c) takeAnswer(id uint32, n uint32) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.fr.WriteWindowUpdate(id, n); err != nil {
		c.t.Fatal(err)
	}
}

// send sends data on stream id (end: the last of its body) as far as the
// windows let it, waiting at most wait for them to open each time, and
// returns what it could not send.
func (c *h2c) send(id uint32, data []byte, end bool, wait time.Duration) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(data) > 0 {
		deadline := time.Now().Add(wait)
		win := func() int64 { return min(c.connWin, c.initial+c.streamIn[id]-c.sent[id]) }
		for win() <= 0 && c.readErr == nil && time.Now().Before(deadline) {
			c.wait()
		}
		n := min(win(), 16<<10, int64(len(data)))
		if n <= 0 {
			return data
		}
		if err := c.fr.WriteData(id, end && n == int64(len(data)), data[:n]); err != nil {
			return data
		}
		c.connWin -= n
		c.sent[id] += n
		data = data[n:]
	}
	return nil
}

// window returns what is left of the connection's window.
func (c *h2c) window() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connWin
}

// sentOn returns the bytes sent on stream id.
func (c *h2c) sentOn(id uint32) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent[id]
}

// answer waits up to d for the server to end stream id, and returns
// whether it did and the status it gave.
func (c *h2c) answer(id uint32, d time.Duration) (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for deadline := time.Now().Add(d); !c.answered[id] && c.readErr == nil && time.Now().Before(deadline); {
		c.wait()
	}
	return c.answered[id], c.status[id]
}

// stalledWriteStream is the body of a write stream of table t that stops
// being read: more batches than api.write_stream_in_flight, whose answers
// a client with a window of 0 does not take, then a batch of n bytes.
func stalledWriteStream(n int) []byte {
	var data []byte
	for i := range 16 {
		msg, _ := proto.Marshal(&wailv1.WriteStreamRequest{Seq: uint64(i + 1),
			Mutations: []*wailv1.Mutation{{Table: "t", Key: []byte("k"), Value: []byte("v")}}})
		data = binary.BigEndian.AppendUint32(append(data, 0), uint32(len(msg)))
		data = append(data, msg...)
	}
	data = binary.BigEndian.AppendUint32(append(data, 0), uint32(n))
	return append(data, make([]byte, n)...)
}
