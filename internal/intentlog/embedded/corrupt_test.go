package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// batchPositions returns the position of every batch of a segment file.
func batchPositions(t *testing.T, path string) []int64 {
	t.Helper()
	f, err := os.Open(path)
	noErr(t, err)
	defer f.Close()
	fr := frameReader{r: f, limit: fileSize(t, path), chunk: readChunk}
	var out []int64
	for {
		_, pos, err := fr.next()
		if err != nil {
			return out
		}
		out = append(out, pos)
	}
}

func patch(t *testing.T, path string, at int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	noErr(t, err)
	noErr2[int](t)(f.WriteAt(b, at))
	noErr(t, f.Close())
}

// TestCorruptionIsNotTornTail damages chosen bytes of a log of 20 batches of
// 3 records (5 segments of 4 batches; the last one active) and checks
// that Open refuses to start, naming the file, position, offset and the
// fix, instead of dropping the valid batches after the damage; then that
// Repair removes exactly the damaged batch, records the lost offsets,
// quarantines the bytes, and that the repaired log opens, reads
// everything else (skipping the gap) and appends after it.
func TestCorruptionIsNotTornTail(t *testing.T) {
	const batches, per, perSeg = 20, 3, 4
	type target struct {
		seg, batch int // which segment, which of its batches
	}
	cases := []struct {
		name   string
		at     target
		damage func(t *testing.T, path string, pos int64)
		// openFails: Open refuses (else a reader fails at the damage).
		openFails bool
		lost      [2]int64 // offsets removed by Repair
	}{
		{"active: crc", target{4, 1}, flipByte(40), true, [2]int64{51, 54}},
		{"active: length field", target{4, 1}, setBytes(1, 0x7f, 0, 0, 0), true, [2]int64{51, 54}},
		{"active: zeroed page", target{4, 0}, setBytes(0, make([]byte, 64)...), true, [2]int64{48, 51}},
		{"active: bad magic", target{4, 2}, setBytes(0, 0x00), true, [2]int64{54, 57}},
		// The index of a sealed segment is verified from its last entry on;
		// damage before it is found by readers (then repaired) ...
		{"sealed: crc", target{1, 1}, flipByte(40), false, [2]int64{15, 18}},
		// ... and damage after it, or damage with the index gone, at Open.
		{"sealed: framing, index removed", target{2, 1}, removeIndexAnd(setBytes(1, 0x7f, 0, 0, 0)), true, [2]int64{27, 30}},
		{"sealed: last batch framing", target{2, 3}, setBytes(1, 0x7f, 0, 0, 0), true, [2]int64{33, 36}},
		// One run of damage over the length field and another header
		// field (or a record): the damaged length declares an end past
		// the valid batches, but the batch's records end where the next
		// batch starts.
		{"active: length and crc", target{4, 1}, setBytes(1, 0x7f, 0, 0, 0, 0, 0, 0, 0), true, [2]int64{51, 54}},
		{"active: length and base", target{4, 0}, setBytes(3, 0x7f, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), true, [2]int64{48, 51}},
		{"active: length and a record byte", target{4, 1}, func(t *testing.T, path string, pos int64) {
			setBytes(1, 0x7f)(t, path, pos)
			flipByte(40)(t, path, pos)
		}, true, [2]int64{51, 54}},
		{"sealed: length and crc, index removed", target{2, 1}, removeIndexAnd(setBytes(1, 0x7f, 0, 0, 0, 0, 0, 0, 0)), true, [2]int64{27, 30}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			const batchBytes = batchHeaderLen + per*23 // keys "bNN-i", values "value of bNN-i"
			opts := Options{SegmentBytes: perSeg * batchBytes, IndexIntervalBytes: 3 * batchBytes}
			l := openLog(t, dir, opts)
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			var want []intentlog.Record
			for i := range batches {
				want = append(want, appendBatch(t, l, fmt.Sprintf("b%02d", i), per)...)
			}
			noErr(t, l.Close())
			segs := segmentFiles(t, dir, 0, logExt)
			if len(segs) != batches/perSeg {
				t.Fatalf("%d segments, want %d", len(segs), batches/perSeg)
			}
			path := segs[tc.at.seg]
			pos := batchPositions(t, path)[tc.at.batch]
			off := int64((tc.at.seg*perSeg + tc.at.batch) * per)
			tc.damage(t, path, pos)

			l, err := Open(dir, Options{Logger: testLogger(t)})
			if tc.openFails {
				for _, s := range []string{path, fmt.Sprintf("position %d", pos), fmt.Sprintf("offset %d", off), "wail log repair"} {
					if err == nil || !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), s) {
						t.Fatalf("Open over damage: %v; want ErrCorrupt naming %q", err, s)
					}
				}
				if n := strings.Count(err.Error(), intentlog.ErrCorrupt.Error()); n != 1 {
					t.Fatalf("Open over damage: %v; want %q said once", err, intentlog.ErrCorrupt)
				}
			} else {
				noErr(t, err)
				r, err := l.NewReader(testTopic, 0, 0)
				noErr(t, err)
				for err == nil {
					_, err = r.Next(context.Background())
				}
				noErr(t, l.Close())
				for _, s := range []string{path, fmt.Sprintf("position %d", pos), "wail log repair"} {
					if !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), s) {
						t.Fatalf("reader over damage: %v; want ErrCorrupt naming %q", err, s)
					}
				}
			}
			rep, err := Repair(dir, Options{Logger: testLogger(t)})
			noErr(t, err)
			if len(rep.Lost) != 1 || rep.Lost[0].From != tc.lost[0] || rep.Lost[0].To != tc.lost[1] ||
				rep.Lost[0].Segment != path || rep.Lost[0].Position != pos {
				t.Fatalf("repair lost %+v; want offsets [%d, %d) of %s at %d", rep.Lost, tc.lost[0], tc.lost[1], path, pos)
			}
			q, err := os.ReadFile(rep.Lost[0].Quarantine)
			if err != nil || int64(len(q)) != rep.Lost[0].Bytes || len(q) == 0 {
				t.Fatalf("quarantine file %s: %d bytes, %v; want %d", rep.Lost[0].Quarantine, len(q), err, rep.Lost[0].Bytes)
			}
			again, err := Repair(dir, Options{Logger: testLogger(t)})
			if err != nil || len(again.Lost) != 0 || again.Segments < rep.Segments {
				t.Fatalf("second repair: %+v, %v; want nothing lost", again, err)
			}

			l = openLog(t, dir, opts)
			defer l.Close()
			kept := append(want[:tc.lost[0]:tc.lost[0]], want[tc.lost[1]:]...)
			got := readGaps(t, l, 0, int64(len(want)))
			sameRecords(t, "after repair", got, kept)
			more := appendBatch(t, l, "after", 2)
			if more[0].Offset != int64(len(want)) {
				t.Fatalf("append after repair at %d, want %d", more[0].Offset, len(want))
			}
		})
	}
}

// readGaps reads partition p from 0 to end, allowing gaps.
func readGaps(t *testing.T, l *Log, p int32, end int64) []intentlog.Record {
	t.Helper()
	r, err := l.NewReader(testTopic, p, 0)
	noErr(t, err)
	defer r.Close()
	var out []intentlog.Record
	for r.Position() < end {
		recs, err := r.Next(context.Background())
		noErr(t, err)
		out = append(out, recs...)
	}
	return out
}

func flipByte(rel int64) func(t *testing.T, path string, pos int64) {
	return func(t *testing.T, path string, pos int64) {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		noErr(t, err)
		b := make([]byte, 1)
		noErr2[int](t)(f.ReadAt(b, pos+rel))
		b[0] ^= 0x10
		noErr2[int](t)(f.WriteAt(b, pos+rel))
		noErr(t, f.Close())
	}
}

func setBytes(rel int64, b ...byte) func(t *testing.T, path string, pos int64) {
	return func(t *testing.T, path string, pos int64) { patch(t, path, pos+rel, b) }
}

func removeIndexAnd(d func(t *testing.T, path string, pos int64)) func(t *testing.T, path string, pos int64) {
	return func(t *testing.T, path string, pos int64) {
		noErr(t, os.Remove(strings.TrimSuffix(path, logExt)+idxExt))
		d(t, path, pos)
	}
}

func truncateFile(path string, size int64) error { return os.Truncate(path, size) }

// TestRecoverReadError: an I/O error while Open looks for valid data after
// a bad batch of the active segment fails Open; it is not taken for "no
// valid batch after it", which would truncate valid batches as a torn tail.
func TestRecoverReadError(t *testing.T) {
	for _, at := range []string{"the bad batch", "the bytes after it"} {
		t.Run(at, func(t *testing.T) {
			mem := vfs.NewMem()
			l, _, _ := craftLog(t, mem, Options{}, 0, []int{3, 3, 3})
			noErr(t, l.Close())
			path := segmentPath(craftedDir, 0, logExt)
			f := framesOf(t, mem, path)
			damaged := bytes.Join([][]byte{f[0], append(bytes.Clone(f[1][:40]), f[1][40]^0x10), f[1][41:], f[2]}, nil)
			writeFile(t, mem, path, damaged)
			pos := int64(len(f[0]))
			fails := func(off int64) bool { return off == pos }
			if at == "the bytes after it" {
				fails = func(off int64) bool { return off > pos }
			}
			var fired atomic.Int64
			fsys := &hookFS{FS: mem, hook: func(op vfs.Op, name string, off int64, _ int) error {
				if op == vfs.OpRead && name == path && fails(off) {
					fired.Add(1)
					return syscall.EIO
				}
				return nil
			}}
			if l, err := Open("/log", Options{FS: fsys, Logger: testLogger(t)}); !errors.Is(err, syscall.EIO) || fired.Load() == 0 {
				if err == nil {
					_ = l.Close()
				}
				t.Fatalf("Open with a read error at %s: %v; want EIO", at, err)
			}
			if b := readFile(t, mem, path); !bytes.Equal(b, damaged) {
				t.Fatalf("the segment changed from %d to %d bytes", len(damaged), len(b))
			}
		})
	}
}

// TestStripCorrupt: a reason that wraps ErrCorrupt loses its prefix, said
// once by the error around it; a reason with nothing after the prefix, or
// without it, is kept whole (a reason is never empty).
func TestStripCorrupt(t *testing.T) {
	prefix := intentlog.ErrCorrupt.Error() + ": "
	for _, c := range []struct {
		err  error
		want string
	}{
		{corrupt("crc mismatch"), "crc mismatch"},
		{fmt.Errorf("%w: x", intentlog.ErrCorrupt), "x"},
		{errors.New(prefix), prefix},
		{errors.New(strings.TrimSuffix(prefix, " ")), strings.TrimSuffix(prefix, " ")},
		{syscall.EIO, syscall.EIO.Error()},
	} {
		if got := stripCorrupt(c.err); got != c.want {
			t.Errorf("stripCorrupt(%q) = %q, want %q", c.err, got, c.want)
		}
	}
}

// TestTornTailHoldingABatch: a value is any bytes a client sent, so it may
// hold an encoded batch with a valid CRC. When a crash tears the batch
// holding it after that inner batch, Open truncates the torn tail as any
// other: the inner batch is not taken for a valid batch after damage,
// which would make Open refuse the log and `wail log repair` keep records
// no one appended.
func TestTornTailHoldingABatch(t *testing.T) {
	for _, base := range []int64{10, 11, 500} { // the inner batch's base: the torn batch's own, or later
		t.Run(fmt.Sprint(base), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l := openLog(t, dir, Options{})
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			want := appendBatch(t, l, "a", 5)
			want = append(want, appendBatch(t, l, "b", 5)...)
			inner := encodeBatch(nil, base, 1000, []intentlog.Record{
				{Key: []byte("forged"), Value: []byte("no one appended this"), Timestamp: time.UnixMicro(1000)}})
			value := append(append([]byte("prefix"), inner...), make([]byte, 200)...)
			noErr(t, l.Append(context.Background(), testTopic, []*intentlog.Record{{Key: []byte("k"), Value: value}}))
			noErr(t, l.Close())

			path := segmentFiles(t, dir, 0, logExt)[0]
			data, err := os.ReadFile(path)
			noErr(t, err)
			at := bytes.Index(data, inner)
			if at < 0 {
				t.Fatal("the inner batch is not in the segment")
			}
			noErr(t, truncateFile(path, int64(at+len(inner)+10)))

			logs := &logBuffer{}
			l, err = Open(dir, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
			if err != nil {
				t.Fatalf("Open refused a torn tail: %v", err)
			}
			defer l.Close()
			if !strings.Contains(logs.String(), "truncated the torn tail") {
				t.Errorf("no truncation logged:\n%s", logs)
			}
			sameRecords(t, "after recovery", readAll(t, l, 0), want)
			more := appendBatch(t, l, "c", 2)
			if more[0].Offset != 10 {
				t.Errorf("first append after recovery at offset %d, want 10", more[0].Offset)
			}
		})
	}
}

// TestResumeAfterBadHeader: after a bad batch at 0, resumeAt takes a
// valid batch for the next one when it starts at or past the end the bad
// batch's whole header declares, or where the bad batch ends when only its
// length field is corrected; not one inside it; and with a header that is
// not whole, any valid batch after it.
func TestResumeAfterBadHeader(t *testing.T) {
	rec := func(key string) []intentlog.Record {
		return []intentlog.Record{{Key: []byte(key), Value: []byte("v"), Timestamp: time.UnixMicro(1000)}}
	}
	first, second := encodeBatch(nil, 0, 1000, rec("a")), encodeBatch(nil, 1, 1000, rec("b"))
	whole := append(append([]byte(nil), first...), second...)
	crcBad := bytes.Clone(whole)
	crcBad[batchHeaderLen] ^= 1
	longer := bytes.Clone(whole)
	binary.BigEndian.PutUint32(longer[1:], uint32(len(first)+100)) // the length field alone is damaged
	longerFlipped := bytes.Clone(longer)
	longerFlipped[batchHeaderLen] ^= 1 // and a record byte too
	noMagic := bytes.Clone(longerFlipped)
	noMagic[0] = 0
	// A batch whose value holds a whole batch, torn after it.
	holder := encodeBatch(nil, 1, 1000, []intentlog.Record{{Key: []byte("k"), Value: append(bytes.Clone(second), make([]byte, 50)...),
		Timestamp: time.UnixMicro(1000)}})
	torn := holder[:len(holder)-20]
	innerAt := int64(bytes.Index(holder, second))
	tornNoMagic := bytes.Clone(torn)
	tornNoMagic[0] = 0
	at := int64(len(first))
	cases := []struct {
		name string
		data []byte
		at   int64 // -1: none found
	}{
		{"at the declared end", crcBad, at},
		{"length field too large, batch whole", longer, at},
		{"length field too large, a record damaged too", longerFlipped, at},
		{"no magic: nothing declared", noMagic, at},
		{"torn, a batch in its value", torn, -1},
		{"torn, no magic: the batch in its value counts", tornNoMagic, innerAt},
		{"header cut short", longer[:10], -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, h, ok, err := resumeAt(bytes.NewReader(tc.data), 0, int64(len(tc.data)), 1, 1)
			if err != nil || ok != (tc.at >= 0) || (ok && (q != tc.at || h.base != 1)) {
				t.Fatalf("resumeAt = %d (base %d), %v, %v; want %d", q, h.base, ok, err, tc.at)
			}
		})
	}
	if _, _, _, err := resumeAt(errReader{}, 0, 200, 1, 1); !errors.Is(err, syscall.EIO) {
		t.Fatalf("resumeAt over a failing reader: %v, want EIO", err)
	}
}

// TestResumeInTornBatchReadsOnce: a torn batch whose value is full of
// plausible batch headers (a magic byte and a length that fits, every 5
// bytes) is read once when resumeAt looks for a batch after it, not once
// per header inside it: a client's value cannot make Open's recovery take
// time quadratic in the batch's size.
func TestResumeInTornBatchReadsOnce(t *testing.T) {
	value := bytes.Repeat([]byte{batchMagic, 0, 0x0f, 0, 0}, 200_000) // 1 MB
	holder := encodeBatch(nil, 1, 1000, []intentlog.Record{{Key: []byte("k"), Value: value, Timestamp: time.UnixMicro(1000)}})
	torn := holder[:len(holder)-100]
	r := &countingReader{r: bytes.NewReader(torn)}
	if q, _, ok, err := resumeAt(r, 0, int64(len(torn)), 1, 1); ok || err != nil {
		t.Fatalf("resumeAt = %d, %v, %v; want nothing found", q, ok, err)
	}
	if n := r.bytes.Load(); n > 3*int64(len(torn)) {
		t.Fatalf("resumeAt read %d bytes of a %d-byte torn batch", n, len(torn))
	}
}
