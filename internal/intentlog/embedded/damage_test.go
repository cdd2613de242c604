package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/wail-cdc/wail/internal/vfs"
	"log/slog"
	"math"
	"os"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestRepairForgedAfterRecordDamage: a batch has one damaged byte, in its
// first record (the timestamp delta, or the key length) or its magic byte;
// its value holds an encoded batch with the damaged batch's base offset.
// Open refuses; Repair does not keep the forged batch: the damaged batch's
// declared end, where the next valid batch starts, shows that the bytes
// before it are the damaged batch's records.
func TestRepairForgedAfterRecordDamage(t *testing.T) {
	for _, tc := range []struct {
		name string
		rel  int64
		b    byte
	}{
		{"delta byte", batchHeaderLen, 0x01},
		{"key length", batchHeaderLen + 1, 0x03}, // -2
		{"magic byte", 0, 0x00},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, Options{})
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			appendBatch(t, l, "a", 5)
			inner := encodeBatch(nil, 5, 1000, []intentlog.Record{
				{Key: []byte("forged"), Value: []byte("no one appended this"), Timestamp: time.UnixMicro(1000)}})
			noErr(t, l.Append(context.Background(), testTopic, []*intentlog.Record{{Key: []byte("k"), Value: append(inner, 0, 0, 0)}}))
			appendBatch(t, l, "c", 5)
			noErr(t, l.Close())
			path := segmentFiles(t, dir, 0, logExt)[0]
			setBytes(tc.rel, tc.b)(t, path, batchPositions(t, path)[1])

			if l, err := Open(dir, Options{Logger: testLogger(t)}); err == nil {
				l.Close()
				t.Fatal("Open accepted damage")
			}
			rep, err := Repair(dir, Options{Logger: testLogger(t)})
			noErr(t, err)
			t.Logf("repair lost: %+v", rep.Lost)
			l = openLog(t, dir, Options{})
			defer l.Close()
			for _, r := range readGaps(t, l, 0, 11) {
				if bytes.Equal(r.Key, []byte("forged")) {
					t.Errorf("after repair, offset %d holds the record forged in a value: %q", r.Offset, r.Value)
				}
			}
		})
	}
}

// TestResumeAfterRecordDamageReadsOnce: a batch whose value is full of
// plausible batch headers, damaged in one record byte (its header whole),
// followed by a valid batch: resumeAt reads the bad batch about once, not
// once per header in its value.
func TestResumeAfterRecordDamageReadsOnce(t *testing.T) {
	value := bytes.Repeat([]byte{batchMagic, 0, 0, 0x3f, 0}, 20_000) // 100 kB, headers declaring ~16 kB
	data := encodeBatch(nil, 0, 1000, []intentlog.Record{{Key: []byte("k"), Value: value, Timestamp: time.UnixMicro(1000)}})
	data = encodeBatch(data, 1, 1000, []intentlog.Record{{Key: []byte("next"), Timestamp: time.UnixMicro(1000)}})
	data[batchHeaderLen] = 1 // the first record's timestamp delta
	r := &countingReader{r: bytes.NewReader(data)}
	start := time.Now()
	q, h, ok, err := resumeAt(r, 0, int64(len(data)), 1, math.MinInt64)
	if err != nil || !ok || h.base != 1 {
		t.Fatalf("resumeAt = %d, %+v, %v, %v; want the batch at base 1", q, h, ok, err)
	}
	if n := r.bytes.Load(); n > 3*int64(len(data)) {
		t.Fatalf("resumeAt read %d bytes (%d calls, %v) of a %d-byte segment", n, r.calls.Load(), time.Since(start), len(data))
	}
}

// recoverBytes runs segment.recover (what Open does to the active
// segment) on data: it reports whether Open truncated at the bad batch
// (true) or refused (false), and the bad batch's position (-1: data is
// sound).
func recoverBytes(t testing.TB, data []byte) (truncate bool, pos int64) {
	t.Helper()
	mem := vfs.NewMem()
	noErr(t, mem.MkdirAll("/d", 0o755))
	path := "/d/" + fmt.Sprintf("%020d%s", 0, logExt)
	writeFile(t, mem, path, data)
	f, err := mem.OpenFile(path, os.O_RDWR, 0)
	noErr(t, err)
	defer f.Close()
	s := newSegment("/d", 0)
	err = s.recover(f, math.MaxInt64, slog.New(slog.DiscardHandler))
	if err != nil && !errors.Is(err, intentlog.ErrCorrupt) {
		t.Fatal(err)
	}
	sc := &scan{base: 0, interval: math.MaxInt64, next: 0, maxTS: math.MinInt64}
	if sc.run(bytes.NewReader(data), int64(len(data)), true) == nil {
		return false, -1
	}
	if err == nil && s.size == int64(len(data)) {
		t.Fatalf("recover accepted a bad batch at %d without truncating", sc.pos)
	}
	return err == nil, sc.pos
}

// TestLengthAndRecordLength: one run of damaged bytes from a batch's
// length field (now larger than the file) through its first record's key
// length (now larger than the file): the walk reaches the file end inside
// the "key", which a torn write would leave too; but a torn write keeps
// the header as the writer wrote it (its base and count), and three valid
// batches follow: Open refuses, it does not truncate them.
func TestLengthAndRecordLength(t *testing.T) {
	data, at := testFrames(5, 3)
	d := bytes.Clone(data)
	p := at[1]
	for i := p + 1; i < p+33; i++ {
		d[i] = byte(i*37 + 11) // garbage
	}
	binary.BigEndian.PutUint32(d[p+1:], 1<<20)
	d[p+29] = 0                                     // the walk needs a 0 delta here
	copy(d[p+30:], binary.AppendVarint(nil, 40000)) // key length
	if trunc, pos := recoverBytes(t, d); trunc {
		t.Errorf("damage at %d truncated as a torn tail: %d acknowledged batches after it dropped", pos, len(at)-2)
	}
}

// TestLastBatchWholeDamagedFraming: the last batch of the active
// segment is whole (its CRC matches its bytes), only its magic byte or its
// length field damaged at rest: a torn write cannot leave a whole batch,
// so Open must refuse, not truncate an acknowledged batch.
func TestLastBatchWholeDamagedFraming(t *testing.T) {
	data, at := testFrames(3, 3)
	p := at[2]
	for name, damage := range map[string]func([]byte){
		"magic":          func(d []byte) { d[p] = 0x00 },
		"length larger":  func(d []byte) { binary.BigEndian.PutUint32(d[p+1:], binary.BigEndian.Uint32(d[p+1:])+0x10000) },
		"length smaller": func(d []byte) { binary.BigEndian.PutUint32(d[p+1:], binary.BigEndian.Uint32(d[p+1:])-0x10) },
	} {
		d := bytes.Clone(data)
		damage(d)
		fixed := bytes.Clone(d[p:])
		fixed[0] = batchMagic
		binary.BigEndian.PutUint32(fixed[1:], uint32(len(fixed)-5))
		if _, _, err := verifyBatch(fixed); err != nil {
			t.Fatalf("%s: the batch with its framing corrected is not whole: %v", name, err)
		}
		if trunc, pos := recoverBytes(t, d); trunc {
			t.Errorf("%s: the whole last batch at %d (CRC matching) truncated as a torn tail", name, pos)
		}
	}
}

// TestZeroFilledTailHoldingABatch: the last batch was cut by a crash
// and the file system filled its unwritten end with zeros (ext4), from the
// start of its second record: a torn tail. Its first record's value holds
// an encoded batch. The zeros walk as 4-byte empty records, but 14 zero
// bytes leave 2 at the end: the batch's data ends where its zeros start,
// cut there, and Open truncates the torn tail.
func TestZeroFilledTailHoldingABatch(t *testing.T) {
	data, _ := testFrames(2, 3)
	pos := int64(len(data))
	inner := encodeBatch(nil, 6, 1000, []intentlog.Record{{Key: []byte("forged"), Timestamp: time.UnixMicro(1000)}})
	data = encodeBatch(data, 6, 1000, []intentlog.Record{
		{Key: []byte("k"), Value: append(bytes.Clone(inner), "pad"...), Timestamp: time.UnixMicro(1000)},
		{Key: []byte("kkkkkkkkkk"), Timestamp: time.UnixMicro(1000)}, // 14 bytes
	})
	second := int64(len(data)) - 14
	for _, zeroFrom := range []int64{second, second + 1, second + 2, second + 3, second + 4} {
		d := bytes.Clone(data)
		clear(d[zeroFrom:])
		trunc, at := recoverBytes(t, d)
		if at != pos || !trunc {
			t.Errorf("zeros from %d: a zero-filled torn tail refused (bad batch at %d, truncate %v)", zeroFrom, at, trunc)
		}
	}
}
