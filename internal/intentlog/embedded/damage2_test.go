package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// forgedLog writes batches "a" (offsets 0..4), a batch of one record whose
// value holds an encoded batch with base 5 (offset 5), and, with after,
// batch "c" (offsets 6..10); it returns the segment path and the position
// of the holder batch.
func forgedLog(t *testing.T, dir string, after bool) (string, int64) {
	t.Helper()
	l := openLog(t, dir, Options{})
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	appendBatch(t, l, "a", 5)
	inner := encodeBatch(nil, 5, 1000, []intentlog.Record{
		{Key: []byte("forged"), Value: []byte("no one appended this"), Timestamp: time.UnixMicro(1000)}})
	// The value does not end in zero bytes: only the record's header
	// count (0) does, as in every record without headers.
	noErr(t, l.Append(context.Background(), testTopic, []*intentlog.Record{{Key: []byte("k"), Value: append(inner, "tail"...)}}))
	if after {
		appendBatch(t, l, "c", 5)
	}
	noErr(t, l.Close())
	path := segmentFiles(t, dir, 0, logExt)[0]
	return path, batchPositions(t, path)[1]
}

func noForged(t *testing.T, dir string, end int64) {
	t.Helper()
	rep, err := Repair(dir, Options{Logger: testLogger(t)})
	noErr(t, err)
	t.Logf("repair lost: %+v", rep.Lost)
	l := openLog(t, dir, Options{})
	defer l.Close()
	_, last, err := l.Bounds(context.Background(), testTopic, 0)
	noErr(t, err)
	for _, r := range readGaps(t, l, 0, min(end, last)) {
		if bytes.Equal(r.Key, []byte("forged")) {
			t.Errorf("after repair, offset %d holds the record forged in a value: %q", r.Offset, r.Value)
		}
	}
}

// TestRepairForgedAfterBaseDamage: the holder batch is whole, only its
// base offset or record count damaged at rest. Every record without
// headers ends in a 0 byte (its header count): the batch's trailing zeros
// are not taken for a crash's, the walk reaches the declared end, and the
// search begins there: Repair does not keep the batch in the value.
func TestRepairForgedAfterBaseDamage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rel   int64
		b     byte
		after bool
	}{
		{"base", 16, 0xff, true},
		{"count", 20, 0xff, true},
		{"base, last batch", 16, 0xff, false},
		{"count, last batch", 20, 0xff, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, pos := forgedLog(t, dir, tc.after)
			setBytes(tc.rel, tc.b)(t, path, pos)
			if !tc.after {
				// Open would truncate it (TestLastBatchHeaderDamaged).
				noForged(t, dir, 6)
				return
			}
			if l, err := Open(dir, Options{Logger: testLogger(t)}); err == nil {
				l.Close()
				t.Fatal("Open accepted damage")
			}
			noForged(t, dir, 11)
		})
	}
}

// TestRepairForgedLastBatchRecordDamage: as TestRepairForgedAfterRecordDamage,
// but the damaged holder batch is the last of its segment: no batch
// starts at its declared end, and badBatch falls back to a search from
// pos+1, which finds the batch in the value.
func TestRepairForgedLastBatchRecordDamage(t *testing.T) {
	for _, tc := range []struct {
		name string
		rel  int64
		b    byte
	}{
		{"delta byte", batchHeaderLen, 0x01},
		{"key length", batchHeaderLen + 1, 0x03},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, pos := forgedLog(t, dir, false)
			setBytes(tc.rel, tc.b)(t, path, pos)
			if l, err := Open(dir, Options{Logger: testLogger(t)}); err == nil {
				l.Close()
				t.Fatal("Open accepted damage")
			}
			noForged(t, dir, 6)
		})
	}
}

// TestResumeAfterBaseDamageReadsOnce: as
// TestResumeAfterRecordDamageReadsOnce, but the damage is in the base
// offset of the whole batch: resumeAt should read it about once.
func TestResumeAfterBaseDamageReadsOnce(t *testing.T) {
	value := bytes.Repeat([]byte{batchMagic, 0, 0, 0x3f, 0}, 20_000) // 100 kB, headers declaring ~16 kB
	data := encodeBatch(nil, 0, 1000, []intentlog.Record{{Key: []byte("k"), Value: value, Timestamp: time.UnixMicro(1000)}})
	data = encodeBatch(data, 1, 1000, []intentlog.Record{{Key: []byte("next"), Timestamp: time.UnixMicro(1000)}})
	data[16] ^= 0x40 // the base offset
	r := &countingReader{r: bytes.NewReader(data)}
	start := time.Now()
	q, h, ok, err := resumeAt(r, 0, int64(len(data)), 0, 1)
	if err != nil || !ok || h.base != 1 {
		t.Fatalf("resumeAt = %d, %+v, %v, %v; want the batch at base 1", q, h, ok, err)
	}
	if n := r.bytes.Load(); n > 3*int64(len(data)) {
		t.Fatalf("resumeAt read %d bytes (%d calls, %v) of a %d-byte segment", n, r.calls.Load(), time.Since(start), len(data))
	}
}

// TestLastBatchHeaderDamaged: the last batch of the active segment is
// whole, its base offset or record count damaged at rest, its records
// intact. A torn write keeps the header as the writer wrote it (and a
// header cut by the crash is followed by nothing but zeros), so this is
// not a torn tail: Open must refuse, not truncate acknowledged records.
func TestLastBatchHeaderDamaged(t *testing.T) {
	data, at := testFrames(3, 3)
	p := at[2]
	for name, damage := range map[string]func([]byte){
		"base":  func(d []byte) { d[p+16] ^= 0x01 },
		"count": func(d []byte) { binary.BigEndian.PutUint32(d[p+17:], 0) },
	} {
		d := bytes.Clone(data)
		damage(d)
		if trunc, pos := recoverBytes(t, d); trunc {
			t.Errorf("%s: the whole last batch at %d (header damaged, records intact) truncated as a torn tail", name, pos)
		}
	}
}

// TestZeroFilledTornSweep: a torn prefix of a batch whose values end
// in zeros and hold encoded batches, the rest of the file (to the batch's
// full length, and beyond) zeros: always truncated at the torn batch.
func TestZeroFilledTornSweep(t *testing.T) {
	inner := encodeBatch(nil, 3, 7, []intentlog.Record{{Key: []byte("x"), Value: make([]byte, 9), Timestamp: time.UnixMicro(7)}})
	seg := encodeBatch(nil, 0, 7, []intentlog.Record{{Key: []byte("a"), Value: []byte("b"), Timestamp: time.UnixMicro(7)}})
	pos := int64(len(seg))
	seg = encodeBatch(seg, 1, 7, []intentlog.Record{
		{Key: []byte("k"), Value: append(append(bytes.Clone(inner), 1, 2), make([]byte, 40)...), Timestamp: time.UnixMicro(7)},
		{Key: make([]byte, 3), Value: append(make([]byte, 8), inner...), Timestamp: time.UnixMicro(7),
			Headers: []intentlog.Header{{Key: "h", Value: make([]byte, 5)}}},
		{Key: nil, Value: []byte{}, Timestamp: time.UnixMicro(7)},
	})
	bad := 0
	for _, extra := range []int{0, 1, 7, 5000} {
		for cut := pos + 1; cut < int64(len(seg)); cut++ {
			d := append(bytes.Clone(seg), make([]byte, extra)...)
			clear(d[cut:])
			if bytes.Equal(d[:len(seg)], seg) {
				continue // the zeros were the batch's own: it is whole
			}
			trunc, at := recoverBytes(t, d)
			if !trunc || at != pos {
				if bad++; bad < 10 {
					t.Errorf("extra %d, zeros from %d: truncate %v at %d, want a torn tail at %d", extra, cut, trunc, at, pos)
				}
			}
		}
	}
	_ = math.MaxInt64
}

// TestRepairForgedAfterLengthBitFlip: the holder's value is packed with
// 64-byte encoded batches (base 5, the holder's own offset), laid out so
// that each one starts 64*j bytes (j >= 2) before the holder's end. One bit
// of the holder's length field flipped from 1 to 0 (bits 7..12) puts its
// declared end on one of them; Repair keeps it.
func TestRepairForgedAfterLengthBitFlip(t *testing.T) {
	inner := encodeBatch(nil, 5, 1000, []intentlog.Record{
		{Key: []byte("forged"), Value: bytes.Repeat([]byte("F"), 25), Timestamp: time.UnixMicro(1000)}})
	if len(inner) != 64 {
		t.Fatalf("inner batch of %d bytes", len(inner))
	}
	value := append(bytes.Repeat(inner, 80), bytes.Repeat([]byte("p"), 63)...)
	tried := 0
	for k := 7; k <= 12; k++ {
		dir := t.TempDir()
		l := openLog(t, dir, Options{})
		createTestTopic(t, l, 1, intentlog.TopicOptions{})
		appendBatch(t, l, "a", 5)
		noErr(t, l.Append(context.Background(), testTopic, []*intentlog.Record{{Key: []byte("k"), Value: value}}))
		appendBatch(t, l, "c", 5)
		noErr(t, l.Close())
		path := segmentFiles(t, dir, 0, logExt)[0]
		pos := batchPositions(t, path)[1]
		size := batchPositions(t, path)[2] - pos
		n := uint32(size - 5)
		if n&(1<<k) == 0 {
			continue
		}
		tried++
		var lb [4]byte
		binary.BigEndian.PutUint32(lb[:], n^(1<<k))
		setBytes(1, lb[:]...)(t, path, pos)
		if l, err := Open(dir, Options{Logger: testLogger(t)}); err == nil {
			l.Close()
			t.Fatal("Open accepted damage")
		}
		t.Run("bit "+string(rune('0'+k/10))+string(rune('0'+k%10)), func(t *testing.T) { noForged(t, dir, 11) })
	}
	if tried == 0 {
		t.Fatal("no bit to flip")
	}
}

// FuzzZeroFilledTorn: a batch (a client's value, which may hold
// batches and zeros) torn anywhere after its header, the rest zeros to its
// full length and extra bytes beyond: Open truncates it.
func FuzzZeroFilledTorn(f *testing.F) {
	for _, b := range seedBatches() {
		f.Add(b, uint16(len(b)), uint8(0))
		f.Add(append(append(bytes.Clone(b), make([]byte, 20)...), b...), uint16(len(b)+3), uint8(7))
	}
	f.Fuzz(func(t *testing.T, value []byte, cut uint16, extra uint8) {
		ts := time.UnixMicro(1_700_000_000_000_000)
		data := encodeBatch(nil, 0, ts.UnixMicro(), []intentlog.Record{{Key: []byte("a"), Value: []byte("b"), Timestamp: ts}})
		pos := int64(len(data))
		data = encodeBatch(data, 1, ts.UnixMicro(), []intentlog.Record{{Key: []byte("k"), Value: value, Timestamp: ts},
			{Key: []byte("k2"), Value: value, Timestamp: ts}})
		end := pos + batchHeaderLen + int64(cut)%(int64(len(data))-pos-batchHeaderLen)
		d := append(bytes.Clone(data), make([]byte, extra)...)
		clear(d[end:])
		if bytes.Equal(d[:len(data)], data) {
			return
		}
		if trunc, at := recoverBytes(t, d); !trunc || at != pos {
			t.Fatalf("zeros from %d of [%d, %d) +%d: truncate %v at %d", end, pos, len(data), extra, trunc, at)
		}
	})
}
