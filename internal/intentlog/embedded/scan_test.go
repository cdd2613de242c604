package embedded

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// fakeHeaders returns a segment: a valid batch, then a batch whose value
// holds n batch headers (base 1, one record) whose length fields reach the
// end of the segment and whose CRCs are wrong, with its own length field
// damaged beyond any batch's (so that the search for the next batch
// starts right after it), and the position of that damaged batch.
func fakeHeaders(n int) ([]byte, int64) {
	ts := time.UnixMicro(1_700_000_000_000_000)
	data := encodeBatch(nil, 0, ts.UnixMicro(), []intentlog.Record{{Key: []byte("a"), Value: []byte("b"), Timestamp: ts}})
	pos := int64(len(data))
	fake := bytes.Repeat([]byte{1}, n*batchHeaderLen)
	data = encodeBatch(data, 1, ts.UnixMicro(), []intentlog.Record{{Key: []byte("k"), Value: fake, Timestamp: ts}})
	start := bytes.Index(data[pos:], fake) + int(pos)
	for i := range n {
		h := data[start+i*batchHeaderLen:]
		h[0] = batchMagic
		binary.BigEndian.PutUint32(h[1:], uint32(len(data)-(start+i*batchHeaderLen)-5))
		binary.BigEndian.PutUint64(h[9:], 1)
		binary.BigEndian.PutUint32(h[17:], 1)
	}
	binary.BigEndian.PutUint32(data[pos+1:], math.MaxUint32)
	return data, pos
}

// TestFindBatchReadsLinear: looking for the batch after damage reads the
// data a bounded number of times, however many batch headers (with
// length fields reaching far, but wrong CRCs) the damaged region holds: a
// client's value may hold any bytes. It read each such header's whole
// claimed frame, quadratic in the region's size (minutes to open a
// damaged log).
func TestFindBatchReadsLinear(t *testing.T) {
	for _, n := range []int{1 << 10, 1 << 12} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data, pos := fakeHeaders(n)
			r := &countingReader{r: bytes.NewReader(data)}
			q, _, ok, err := resumeAt(r, pos, int64(len(data)), 1, math.MinInt64)
			if err != nil || ok {
				t.Fatalf("resumeAt found a batch at %d, %v", q, err)
			}
			if got, bound := r.bytes.Load(), 64*int64(len(data)); got > bound {
				t.Fatalf("read %d bytes of a %d-byte segment (%.0f times), want at most %d", got, len(data), float64(got)/float64(len(data)), bound)
			}
			// The same with a valid batch after the damaged one: found.
			ts := time.UnixMicro(1_700_000_000_000_000)
			data = encodeBatch(data, 2, ts.UnixMicro(), []intentlog.Record{{Key: []byte("c"), Value: []byte("d"), Timestamp: ts}})
			r = &countingReader{r: bytes.NewReader(data)}
			if _, h, ok, err := resumeAt(r, pos, int64(len(data)), 1, math.MinInt64); err != nil || !ok || h.base != 2 {
				t.Fatalf("resumeAt after the damage: %+v, %v, %v; want the batch at offset 2", h, ok, err)
			}
		})
	}
}

// TestCRCPrefixes: the CRC-32C of any range, from prefix sums and short
// reads, is the CRC of its bytes.
func TestCRCPrefixes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 5*crcStep+37)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, from := range []int64{0, 1, crcStep - 1, crcStep, 3*crcStep + 5} {
		c := newCRCPrefixes(bytes.NewReader(data), from, int64(len(data)))
		for range 500 {
			a := from + rng.Int64N(int64(len(data))-from+1)
			b := a + rng.Int64N(int64(len(data))-a+1)
			got, err := c.sum(a, b)
			if want := crc32.Checksum(data[a:b], castagnoli); err != nil || got != want {
				t.Fatalf("sum(%d, %d) from %d = %08x, %v; want %08x", a, b, from, got, err, want)
			}
		}
	}
	for _, n := range []int{0, 1, 7, 1000} {
		a, b := data[:n], data[n:]
		if got, want := crcCombine(crc32.Checksum(a, castagnoli), crc32.Checksum(b, castagnoli), int64(len(b))), crc32.Checksum(data, castagnoli); got != want {
			t.Errorf("crcCombine at %d = %08x, want %08x", n, got, want)
		}
	}
}

// TestFindBatchSameAsNaive: findBatch finds what checking every magic
// byte's batch in full finds, on damaged batches with batches in values.
func TestFindBatchSameAsNaive(t *testing.T) {
	naive := func(data []byte, from, minBase int64) (int64, bool) {
		for q := from; q < int64(len(data)); q++ {
			if data[q] != batchMagic {
				continue
			}
			if _, ok, _ := validBatchAt(bytes.NewReader(data), q, int64(len(data)), minBase); ok {
				return q, true
			}
		}
		return 0, false
	}
	rng := rand.New(rand.NewPCG(3, 4))
	frames, _ := testFrames(40, 3)
	ts := time.UnixMicro(1000)
	found := 0
	for i := range 300 {
		data := bytes.Clone(frames)
		// A value holding batches, some of them damaged.
		inner := bytes.Clone(frames[:rng.IntN(len(frames))])
		data = encodeBatch(data, 120, 1000, []intentlog.Record{{Key: []byte("v"), Value: inner, Timestamp: ts}})
		data = append(data, frames[:rng.IntN(len(frames))]...)
		for range 1 + rng.IntN(8) {
			data[rng.IntN(len(data))] ^= byte(1 + rng.IntN(255))
		}
		from, minBase := rng.Int64N(int64(len(data))), rng.Int64N(130)
		q, h, ok, err := findBatch(bytes.NewReader(data), from, int64(len(data)), minBase)
		wq, wok := naive(data, from, minBase)
		if err != nil || ok != wok || ok && (q != wq || h.base < minBase) {
			t.Fatalf("case %d: findBatch from %d (min base %d) = %d, %v, %v; naive %d, %v", i, from, minBase, q, ok, err, wq, wok)
		}
		if ok {
			found++
		}
	}
	if found < 50 || found > 250 {
		t.Fatalf("found a batch in %d cases of 300: the cases test little", found)
	}
}
