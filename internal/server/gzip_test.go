package server

import (
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"testing"
)

// bomb returns gzip of n zero bytes (about n/1000 bytes).
func bomb(t testing.TB, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zero := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, len(zero))
		if _, err := zw.Write(zero[:k]); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestCappedGzipStopsAtTheCap reads a gzip bomb the way connect does (the
// cap plus one byte, then drain to learn the size): the drain fails at
// once, so only a sliver of the compressed body is ever inflated.
func TestCappedGzipStopsAtTheCap(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	body := bomb(t, 256<<20)
	src := &countingReader{r: bytes.NewReader(body)}
	d := &cappedGzip{limit: limit, setting: "limits.max_value_bytes"}
	if err := d.Reset(src); err != nil {
		t.Fatal(err)
	}
	var dst bytes.Buffer
	n, err := dst.ReadFrom(io.LimitReader(d, limit+1))
	if err != nil || n != limit+1 {
		t.Fatalf("first read: %d, %v", n, err)
	}
	drained, err := io.Copy(io.Discard, d)
	if err == nil || drained != 0 || !strings.Contains(err.Error(), "limits.max_value_bytes") {
		t.Fatalf("drain: %d bytes, %v; want an error at once naming the setting", drained, err)
	}
	if src.n > len(body)/16 {
		t.Fatalf("read %d of %d compressed bytes for a %d-byte cap", src.n, len(body), limit)
	}
	// Reset makes it usable again (connect pools decompressors).
	small := bomb(t, 10)
	if err := d.Reset(bytes.NewReader(small)); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(d); err != nil || len(b) != 10 {
		t.Fatalf("after reset: %d bytes, %v", len(b), err)
	}
}
