package embedded

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
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
