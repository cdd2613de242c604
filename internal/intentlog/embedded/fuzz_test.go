package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

func seedBatches() [][]byte {
	ts := time.UnixMicro(1_700_000_000_000_000)
	sets := [][]intentlog.Record{
		{{Key: []byte("k"), Value: []byte("v"), Timestamp: ts}},
		{{Timestamp: ts}, {Key: []byte{}, Value: []byte{}, Timestamp: ts.Add(time.Millisecond)}},
		{{Key: []byte("h"), Value: []byte("x"), Timestamp: ts.Add(-time.Second), Headers: []intentlog.Header{
			{Key: "a", Value: []byte("1")}, {Key: "", Value: nil}, {Key: "e", Value: []byte{}}}}},
		{{Key: bytes.Repeat([]byte("k"), 300), Value: bytes.Repeat([]byte{0xff}, 1000), Timestamp: ts}},
	}
	var out [][]byte
	for i, recs := range sets {
		out = append(out, encodeBatch(nil, int64(i)*1000, ts.UnixMicro(), recs))
	}
	return out
}

func FuzzDecodeBatch(f *testing.F) {
	for _, b := range seedBatches() {
		f.Add(b)
		for _, n := range []int{0, 1, 5, batchHeaderLen - 1, batchHeaderLen, len(b) / 2, len(b) - 1} {
			f.Add(b[:n])
		}
		flipped := bytes.Clone(b)
		flipped[len(b)-3] ^= 1
		f.Add(flipped)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
		// Fix the CRC so that the fuzzer also reaches the record decoder.
		if len(b) >= batchHeaderLen {
			fixed := bytes.Clone(b)
			binary.BigEndian.PutUint32(fixed[5:], crc32.Checksum(fixed[9:], castagnoli))
			checkDecode(t, fixed)
		}
	})
}

// checkDecode: decoding never panics, fails only with ErrCorrupt, and what
// it accepts re-encodes to the same bytes; verifyBatch and frameReader
// agree with it.
func checkDecode(t *testing.T, b []byte) {
	h, recs, err := decodeBatch(nil, b)
	vh, _, verr := verifyBatch(b)
	if (err == nil) != (verr == nil) {
		t.Fatalf("decodeBatch: %v; verifyBatch: %v", err, verr)
	}
	if err != nil {
		if !errors.Is(err, intentlog.ErrCorrupt) || !errors.Is(verr, intentlog.ErrCorrupt) {
			t.Fatalf("errors do not wrap ErrCorrupt: %v; %v", err, verr)
		}
		return
	}
	if vh != h || len(recs) != h.count {
		t.Fatalf("headers differ: %+v vs %+v, %d records", h, vh, len(recs))
	}
	if re := encodeBatch(nil, h.base, h.firstTS, recs); !bytes.Equal(re, b) {
		t.Fatalf("re-encoding differs:\n got %x\nwant %x", re, b)
	}
	for i := range recs { // Append sizes its buffers with recordLen
		delta := recs[i].Timestamp.UnixMicro() - h.firstTS
		if got, want := recordLen(delta, &recs[i]), len(appendRecord(nil, delta, &recs[i])); got != want {
			t.Fatalf("recordLen of record %d = %d, appendRecord wrote %d", i, got, want)
		}
	}
	fr := frameReader{r: bytes.NewReader(b), limit: int64(len(b)), chunk: 7}
	frame, _, err := fr.next()
	if err != nil || !bytes.Equal(frame, b) {
		t.Fatalf("frameReader: %v", err)
	}
	if _, _, err := fr.next(); err != io.EOF {
		t.Fatalf("frameReader after the only frame: %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	b := seedBatches()[0]
	// A non-minimal varint (0 as 0x80 0x00) with a valid CRC is corrupt.
	nonMinimal := append(bytes.Clone(b[:batchHeaderLen]), 0x80, 0x00)
	nonMinimal = append(nonMinimal, b[batchHeaderLen+1:]...)
	binary.BigEndian.PutUint32(nonMinimal[1:], uint32(len(nonMinimal)-5))
	binary.BigEndian.PutUint32(nonMinimal[5:], crc32.Checksum(nonMinimal[9:], castagnoli))
	if _, _, err := decodeBatch(nil, nonMinimal); !errors.Is(err, intentlog.ErrCorrupt) {
		t.Errorf("non-minimal varint: %v, want ErrCorrupt", err)
	}
	for name, mut := range map[string]func([]byte){
		"magic":  func(b []byte) { b[0] = 0 },
		"crc":    func(b []byte) { b[6] ^= 1 },
		"length": func(b []byte) { b[4]++ },
		"body":   func(b []byte) { b[len(b)-1] ^= 1 },
	} {
		c := bytes.Clone(b)
		mut(c)
		if _, _, err := decodeBatch(nil, c); !errors.Is(err, intentlog.ErrCorrupt) {
			t.Errorf("%s damaged: %v, want ErrCorrupt", name, err)
		}
	}
}

// FuzzTornTail: a batch torn anywhere after its header, whatever its
// value holds (a client chose it: an encoded batch, many of them, bytes
// that look like framing), is a torn tail: resumeAt finds no batch after
// it. And whatever bytes follow a bad batch, resumeAt does not panic and
// only ever returns a whole, valid batch.
func FuzzTornTail(f *testing.F) {
	for _, b := range seedBatches() {
		f.Add(b, uint16(len(b)))
		f.Add(append(append([]byte("x"), b...), b...), uint16(2*len(b)))
	}
	f.Fuzz(func(t *testing.T, value []byte, cut uint16) {
		ts := time.UnixMicro(1_700_000_000_000_000)
		data := encodeBatch(nil, 0, ts.UnixMicro(), []intentlog.Record{{Key: []byte("a"), Value: []byte("b"), Timestamp: ts}})
		pos := int64(len(data))
		data = encodeBatch(data, 1, ts.UnixMicro(), []intentlog.Record{{Key: []byte("k"), Value: value, Timestamp: ts}})
		end := pos + batchHeaderLen + int64(cut)%(int64(len(data))-pos-batchHeaderLen)
		torn := data[:end]
		if q, h, ok, err := resumeAt(bytes.NewReader(torn), pos, end, 1, math.MinInt64); err != nil || ok {
			t.Fatalf("a batch torn at %d of [%d, %d) is taken for damage: a batch (base %d) at %d, %v", end, pos, len(data), h.base, q, err)
		}
		// Bytes after a bad batch: any value, framing damage at pos.
		bad := bytes.Clone(data)
		bad[pos+9] ^= 1
		bad = append(bad, value...)
		q, _, ok, err := resumeAt(bytes.NewReader(bad), pos, int64(len(bad)), 1, math.MinInt64)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if _, valid, err := validBatchAt(bytes.NewReader(bad), q, int64(len(bad)), 1); err != nil || !valid || q <= pos {
				t.Fatalf("resumeAt returned %d, not a valid batch after %d", q, pos)
			}
		}
	})
}

// FuzzDecodeOffsets: decoding a committed-offsets file never panics,
// fails only with ErrCorrupt, and what it accepts (partitions in range,
// ascending, offsets not negative) re-encodes to the same bytes.
func FuzzDecodeOffsets(f *testing.F) {
	entries := func(pairs ...int64) []byte { // partition, offset, ... with a valid CRC
		b := binary.BigEndian.AppendUint32([]byte(offsetsMagic), uint32(len(pairs)/2))
		for i := 0; i+1 < len(pairs); i += 2 {
			b = binary.BigEndian.AppendUint32(b, uint32(pairs[i]))
			b = binary.BigEndian.AppendUint64(b, uint64(pairs[i+1]))
		}
		return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	}
	for _, m := range []map[int32]int64{{}, {0: 0}, {0: 5, 3: 9, 1: 7}, {maxPartitions - 1: math.MaxInt64}} {
		b := encodeOffsets(m)
		f.Add(b)
		f.Add(b[:len(b)-1])
	}
	f.Add(entries(-1, 0))
	f.Add(entries(math.MinInt32, 0))
	f.Add(entries(maxPartitions, 0))
	f.Add(entries(0, -1))
	f.Add(entries(0, 1, 0, 2))
	f.Add(entries(1, 1, 0, 1))
	f.Add([]byte(offsetsMagic + "\xff\xff\xff\xff\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkOffsets(t, b)
		// Fix the CRC so that the fuzzer also reaches the entries.
		if len(b) >= 12 {
			fixed := bytes.Clone(b)
			binary.BigEndian.PutUint32(fixed[len(b)-4:], crc32.Checksum(fixed[:len(b)-4], castagnoli))
			checkOffsets(t, fixed)
		}
	})
}

func checkOffsets(t *testing.T, b []byte) {
	offs, err := decodeOffsets(b)
	if err != nil {
		if !errors.Is(err, intentlog.ErrCorrupt) {
			t.Fatalf("error does not wrap ErrCorrupt: %v", err)
		}
		return
	}
	for p, off := range offs {
		if p < 0 || p >= maxPartitions || off < 0 {
			t.Fatalf("accepted partition %d offset %d", p, off)
		}
	}
	if re := encodeOffsets(offs); !bytes.Equal(re, b) {
		t.Fatalf("re-encoding differs:\n got %x\nwant %x", re, b)
	}
}
