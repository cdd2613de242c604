package server_test

import (
	"encoding/binary"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/config"
)

// heapBytes is the live heap after a collection.
func heapBytes() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestHTTP2FrameHeaderHoldsNoBuffer: an h2c client that sends the nine
// bytes of a frame header announcing a 1 MiB frame, and then nothing,
// does not make the server hold a buffer of that size (Go's HTTP/2 reads
// a frame into a buffer as large as the frame, allocated when its header
// arrives and kept by the connection, and takes frames of up to 1 MiB by
// default: api.max_connections such clients held 4 GiB for a few hundred
// kilobytes sent). The server takes frames of at most 16 KiB, the size
// every HTTP/2 peer must take; a larger one closes the connection.
// Not parallel: it measures the heap.
func TestHTTP2FrameHeaderHoldsNoBuffer(t *testing.T) {
	c := start(t, func(cfg *config.Config) { cfg.API.MaxConnections = 256 })
	const conns = 128
	before := heapBytes()
	var hdr [9]byte
	binary.BigEndian.PutUint32(hdr[:4], (1<<20-1)<<8) // length 1 MiB - 1, then type DATA (0)
	hdr[4] = 0                                        // flags
	binary.BigEndian.PutUint32(hdr[5:], 1)            // stream 1
	settings := []byte{0, 0, 0, 4, 0, 0, 0, 0, 0}     // an empty SETTINGS frame
	for range conns {
		conn := rawConn(t, c.url)
		msg := append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), settings...)
		msg = append(msg, hdr[:]...)
		msg = append(msg, 'x') // the payload has begun
		if _, err := conn.Write(msg); err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = io.Copy(io.Discard, conn) }() // the server's SETTINGS, and its GOAWAY if any
	}
	var held int64
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		held = heapBytes() - before
		if held >= conns<<20 {
			break
		}
	}
	if held > conns<<20/4 {
		t.Fatalf("%d connections that each sent a frame header announcing 1 MiB hold %d MiB of heap; want far less than %d MiB",
			conns, held>>20, conns)
	}
	t.Logf("%d connections hold %d KiB of heap", conns, held>>10)
}
