package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// framesOf returns the batches of a segment file, byte for byte.
func framesOf(t *testing.T, fsys vfs.FS, path string) [][]byte {
	t.Helper()
	data := readFile(t, fsys, path)
	fr := frameReader{r: bytes.NewReader(data), limit: int64(len(data)), chunk: readChunk}
	var out [][]byte
	for {
		frame, _, err := fr.next()
		if err == io.EOF {
			return out
		}
		noErr(t, err)
		out = append(out, frame)
	}
}

// craftedBatch is a batch of n records at base, named like craftLog's.
func craftedBatch(base int64, n int) []byte {
	recs := make([]intentlog.Record, n)
	for i := range recs {
		off := base + int64(i)
		recs[i] = intentlog.Record{Key: fmt.Appendf(nil, "key-%d", off), Value: fmt.Appendf(nil, "value-%d", off),
			Timestamp: craftedTime}
	}
	return encodeBatch(nil, base, craftedTime.UnixMicro(), recs)
}

func seg(base int64) string { return segmentPath(craftedDir, base, logExt) }

// TestRepair: Repair removes exactly what is damaged, and nothing valid:
// each damaged region goes to a quarantine file, valid batches after it
// to a segment of their own, and the lost offsets are listed (in the
// report and in #lost) with the file, position and size of the damage.
// Everything it wrote survives a power loss right after it returns; the
// log then opens, reads around the gap and appends; a second repair finds
// nothing.
func TestRepair(t *testing.T) {
	flip := func(b []byte, at int) []byte { b = bytes.Clone(b); b[at] ^= 0x10; return b }
	cases := []struct {
		name     string
		segments [][]int
		// damage rewrites the crafted files; it returns the expected
		// loss and the bytes expected in quarantine.
		damage     func(t *testing.T, fsys vfs.FS) (Lost, []byte)
		openFails  bool // Open refuses the damage before the repair
		kept       []int64
		nextOffset int64
	}{
		{"torn tail", [][]int{{3, 3, 3}}, func(t *testing.T, fsys vfs.FS) (Lost, []byte) {
			f := framesOf(t, fsys, seg(0))
			pos := len(f[0]) + len(f[1])
			writeFile(t, fsys, seg(0), bytes.Join([][]byte{f[0], f[1], f[2][:10]}, nil))
			return Lost{From: 6, To: -1, Segment: seg(0), Position: int64(pos), Bytes: 10}, f[2][:10]
		}, false, offsets(0, 6), 6},
		{"damage with valid batches after it", [][]int{{3, 3, 3}}, func(t *testing.T, fsys vfs.FS) (Lost, []byte) {
			f := framesOf(t, fsys, seg(0))
			writeFile(t, fsys, seg(0), bytes.Join([][]byte{f[0], flip(f[1], 40), f[2]}, nil))
			return Lost{From: 3, To: 6, Segment: seg(0), Position: int64(len(f[0])), Bytes: int64(len(f[1]))}, flip(f[1], 40)
		}, true, append(offsets(0, 3), offsets(6, 9)...), 9},
		{"a whole batch whose offsets skip ahead", [][]int{{3}}, func(t *testing.T, fsys vfs.FS) (Lost, []byte) {
			f := framesOf(t, fsys, seg(0))
			writeFile(t, fsys, seg(0), append(bytes.Clone(f[0]), craftedBatch(6, 3)...))
			return Lost{From: 3, To: 6, Segment: seg(0), Position: int64(len(f[0]))}, nil
		}, true, append(offsets(0, 3), offsets(6, 9)...), 9},
		{"a whole batch whose offsets go back", [][]int{{3}}, func(t *testing.T, fsys vfs.FS) (Lost, []byte) {
			f := framesOf(t, fsys, seg(0))
			back := craftedBatch(2, 3)
			writeFile(t, fsys, seg(0), append(bytes.Clone(f[0]), back...))
			return Lost{From: 3, To: -1, Segment: seg(0), Position: int64(len(f[0])), Bytes: int64(len(back))}, back
		}, true, offsets(0, 3), 3},
		{"a segment whose first batch starts past its base", [][]int{{3}}, func(t *testing.T, fsys vfs.FS) (Lost, []byte) {
			writeFile(t, fsys, seg(0), append(craftedBatch(3, 3), craftedBatch(6, 3)...))
			return Lost{From: 0, To: 3, Segment: seg(0), Position: 0}, nil
		}, true, offsets(3, 9), 9},
		{"damage followed by a copy of the next segment's first batch", [][]int{{3, 3}, {3, 3}}, func(t *testing.T, fsys vfs.FS) (Lost, []byte) {
			f, next := framesOf(t, fsys, seg(0)), framesOf(t, fsys, seg(6))
			writeFile(t, fsys, seg(0), bytes.Join([][]byte{f[0], flip(f[1], 40), next[0]}, nil))
			return Lost{From: 3, To: 6, Segment: seg(0), Position: int64(len(f[0])), Bytes: int64(len(f[1]) + len(next[0]))},
				append(flip(f[1], 40), next[0]...)
		}, true, append(offsets(0, 3), offsets(6, 12)...), 12},
		// The damaged region is copied in readChunk pieces: exactly one
		// chunk, and one chunk and a byte.
		{"a zeroed tail of one read chunk", [][]int{{3, 3}}, func(t *testing.T, fsys vfs.FS) (Lost, []byte) {
			f := framesOf(t, fsys, seg(0))
			zeros := make([]byte, readChunk)
			writeFile(t, fsys, seg(0), bytes.Join([][]byte{f[0], f[1], zeros}, nil))
			return Lost{From: 6, To: -1, Segment: seg(0), Position: int64(len(f[0]) + len(f[1])), Bytes: readChunk}, zeros
		}, false, offsets(0, 6), 6},
		{"a zeroed tail of one read chunk and a byte", [][]int{{3}}, func(t *testing.T, fsys vfs.FS) (Lost, []byte) {
			f := framesOf(t, fsys, seg(0))
			zeros := make([]byte, readChunk+1)
			writeFile(t, fsys, seg(0), append(bytes.Clone(f[0]), zeros...))
			return Lost{From: 3, To: -1, Segment: seg(0), Position: int64(len(f[0])), Bytes: readChunk + 1}, zeros
		}, false, offsets(0, 3), 3},
		{"a segment file lost", [][]int{{3}, {3}, {3}}, func(t *testing.T, fsys vfs.FS) (Lost, []byte) {
			noErr(t, fsys.Remove(seg(3)))
			return Lost{From: 3, To: 6, Segment: seg(0), Position: -1}, nil
		}, true, append(offsets(0, 3), offsets(6, 9)...), 9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mem := vfs.NewMem()
			l, _, _ := craftLog(t, mem, Options{}, 0, tc.segments...)
			noErr(t, l.Close())
			want, quarantined := tc.damage(t, mem)
			want.Topic, want.Partition = testTopic, 0
			if tc.openFails {
				l, err := Open("/log", Options{FS: mem, Logger: testLogger(t)})
				if !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), "wail log repair") {
					if err == nil {
						_ = l.Close()
					}
					t.Fatalf("Open before the repair: %v; want ErrCorrupt naming the fix", err)
				}
			}
			logs := &logBuffer{}
			rep, err := Repair("/log", Options{FS: mem, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			noErr(t, err)
			if rep.Partitions != 1 || len(rep.Lost) != 1 {
				t.Fatalf("repair report %+v; want 1 partition, 1 loss", rep)
			}
			got := rep.Lost[0]
			if got.Reason == "" || strings.Contains(got.Reason, intentlog.ErrCorrupt.Error()) {
				t.Fatalf("reason %q: want it said once, without the error's prefix", got.Reason)
			}
			q, reason := got.Quarantine, got.Reason
			got.Quarantine, got.Reason = "", ""
			if got != want {
				t.Fatalf("lost %+v\nwant %+v", got, want)
			}
			if !strings.Contains(logs.String(), "repair removed offsets") {
				t.Fatalf("the loss was not logged:\n%s", logs)
			}

			after := mem.Crash()
			if len(quarantined) == 0 {
				if q != "" {
					t.Fatalf("quarantine file %s for no damaged bytes", q)
				}
			} else if b := readFile(t, after, q); !bytes.Equal(b, quarantined) {
				t.Fatalf("quarantine %s after a power loss: %d bytes, want the %d damaged ones", q, len(b), len(quarantined))
			}
			lost, err := readLost(after, craftedDir)
			if err != nil || len(lost) != 1 || lost[0].From != want.From || lost[0].To != want.To || lost[0].Reason != reason {
				t.Fatalf("#lost after a power loss: %+v, %v", lost, err)
			}
			l = openLog(t, "/log", Options{FS: after})
			defer l.Close()
			// Every kept record survived the power loss (checked first: a
			// reader would wait for missing ones).
			if _, end, err := l.Bounds(context.Background(), testTopic, 0); err != nil || end != tc.nextOffset {
				t.Fatalf("log end after the repair and a power loss: %d, %v; want %d", end, err, tc.nextOffset)
			}
			var keys []string
			for _, r := range readGaps(t, l, 0, tc.kept[len(tc.kept)-1]+1) {
				keys = append(keys, fmt.Sprintf("%d:%s", r.Offset, r.Key))
			}
			var wantKeys []string
			for _, off := range tc.kept {
				wantKeys = append(wantKeys, fmt.Sprintf("%d:key-%d", off, off))
			}
			if strings.Join(keys, " ") != strings.Join(wantKeys, " ") {
				t.Fatalf("read after the repair:\n%s\nwant\n%s", keys, wantKeys)
			}
			if more := appendBatch(t, l, "more", 2); more[0].Offset != tc.nextOffset {
				t.Fatalf("append after the repair at %d, want %d", more[0].Offset, tc.nextOffset)
			}
			noErr(t, l.Close())
			again, err := Repair("/log", Options{FS: after, Logger: testLogger(t)})
			if err != nil || len(again.Lost) != 0 {
				t.Fatalf("second repair: %+v, %v; want nothing lost", again, err)
			}
		})
	}
}

// offsets returns [from, to).
func offsets(from, to int64) []int64 {
	var out []int64
	for o := from; o < to; o++ {
		out = append(out, o)
	}
	return out
}

// TestRepairIOError: a storage error while checking a partition fails the
// repair with that error, naming the partition; it is never taken for an
// empty or sound partition.
func TestRepairIOError(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault vfs.Fault
	}{
		{"list the partition's segments", vfs.Fault{Ops: vfs.OpReadDir, Path: craftedDir}},
		{"read #lost", vfs.Fault{Ops: vfs.OpOpen, Path: lostFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			l, _, _ := craftLog(t, mem, Options{}, 0, []int{3})
			noErr(t, l.Close())
			efs := vfs.NewErrorFS(mem)
			efs.Inject(tc.fault)
			rep, err := Repair("/log", Options{FS: efs, Logger: testLogger(t)})
			if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), testTopic+"/0") || efs.Fired() == 0 {
				t.Fatalf("Repair with a failing %s: %+v, %v; want EIO naming %s/0", tc.name, rep, err, testTopic)
			}
		})
	}
}

// TestRepairBatchTooFarFromBase: a whole, valid batch whose offsets are too
// far from its segment's base for the index (a batch of another log, or
// garbage with a valid CRC) is damage: its offsets, and the ones skipped
// before it, are listed as lost, and no segment file is made for it (none
// for the empty run before it either).
func TestRepairBatchTooFarFromBase(t *testing.T) {
	mem := vfs.NewMem()
	l, _, _ := craftLog(t, mem, Options{}, 0, []int{3})
	noErr(t, l.Close())
	f := framesOf(t, mem, seg(0))
	const far = maxRelOffset + 10
	farBatch := craftedBatch(far, 3)
	writeFile(t, mem, seg(0), append(bytes.Clone(f[0]), farBatch...))

	rep, err := Repair("/log", Options{FS: mem, Logger: testLogger(t)})
	noErr(t, err)
	var got []string
	for _, l := range rep.Lost {
		got = append(got, fmt.Sprintf("[%d,%d) at %d, %d bytes", l.From, l.To, l.Position, l.Bytes))
	}
	pos := len(f[0])
	want := []string{fmt.Sprintf("[3,%d) at %d, 0 bytes", int64(far), pos), fmt.Sprintf("[%d,-1) at %d, %d bytes", int64(far), pos, len(farBatch))}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("lost %s\nwant %s", got, want)
	}
	bases, _, err := listSegments(mem, craftedDir)
	if err != nil || len(bases) != 1 || bases[0] != 0 {
		t.Fatalf("segments after the repair: %v, %v; want only the one at 0", bases, err)
	}
	if b := readFile(t, mem, seg(0)); !bytes.Equal(b, f[0]) {
		t.Fatalf("segment 0 after the repair: %d bytes, want its valid %d", len(b), len(f[0]))
	}
	l = openLog(t, "/log", Options{FS: mem})
	defer l.Close()
	if more := appendBatch(t, l, "more", 1); more[0].Offset != 3 {
		t.Fatalf("append after the repair at %d, want 3", more[0].Offset)
	}
}
