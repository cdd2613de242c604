package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"maps"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// offsetsEntries encodes an offsets file by hand, with a valid checksum:
// encodeOffsets sorts a map, which can hold neither duplicates nor an order.
func offsetsEntries(ents ...[2]int64) []byte {
	b := append([]byte(nil), offsetsMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ents)))
	for _, e := range ents {
		b = binary.BigEndian.AppendUint32(b, uint32(e[0]))
		b = binary.BigEndian.AppendUint64(b, uint64(e[1]))
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// TestRepairDamagedOffsets: a group's offsets file that Open refuses (its
// checksum fails, it is cut short, or it holds entries wail never writes)
// is repaired: its bytes are kept in a quarantine file, and a new file
// starts the group at each partition's first retained offset: never past
// what it had committed, so it reads again what it had read and skips
// nothing. A sound file of another group is left alone. All of it
// survives a power loss right after Repair returns; the log then opens,
// and a second repair finds nothing to do.
func TestRepairDamagedOffsets(t *testing.T) {
	t.Parallel()
	flip := func(at int) func([]byte) []byte {
		return func(b []byte) []byte { b = bytes.Clone(b); b[at] ^= 0x10; return b }
	}
	for _, tc := range []struct {
		name   string
		damage func(good []byte) []byte
		reason string
	}{
		{"checksum of an offset", flip(8 + 12 + 11), "crc mismatch"}, // partition 1's offset, low byte
		{"checksum itself", func(b []byte) []byte { return flip(len(b) - 1)(b) }, "crc mismatch"},
		{"cut short", func(b []byte) []byte { return b[:10] }, "bad offsets file header"},
		{"empty", func([]byte) []byte { return []byte{} }, "bad offsets file header"},
		{"wrong magic", func(b []byte) []byte { return append([]byte("WOF2"), b[4:]...) }, "bad offsets file header"},
		{"negative offset", func([]byte) []byte { return offsetsEntries([2]int64{0, 9}, [2]int64{1, -1}) }, "negative offset"},
		{"partitions descending", func([]byte) []byte { return offsetsEntries([2]int64{1, 9}, [2]int64{0, 9}) }, "not ascending"},
		{"impossible partition", func([]byte) []byte { return offsetsEntries([2]int64{0, 9}, [2]int64{maxPartitions, 9}) }, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			mem := vfs.NewMem()
			opts := Options{FS: mem, SegmentBytes: 1024, RetentionCheckInterval: -1}
			l := openLog(t, "/log", opts)
			// Partition 0 outgrows its retention (its first segments go),
			// partition 1 does not: starts > 0 and = 0.
			createTestTopic(t, l, 2, intentlog.TopicOptions{RetentionBytes: 3000})
			for i := range 100 {
				noErr(t, l.Append(ctx, testTopic, []*intentlog.Record{{Key: []byte(keyOn(0, 2, "k")), Value: fmt.Appendf(nil, "value %03d", i)}}))
			}
			for range 5 {
				noErr(t, l.Append(ctx, testTopic, []*intentlog.Record{{Key: []byte(keyOn(1, 2, "k")), Value: []byte("v")}}))
			}
			start0, end0, err := l.Bounds(ctx, testTopic, 0)
			noErr(t, err)
			if start0 == 0 || end0 != 100 {
				t.Fatalf("partition 0 bounds [%d, %d): want retention to have removed its first records", start0, end0)
			}
			committed := map[int32]int64{0: end0 - 3, 1: 4}
			noErr(t, l.Commit(ctx, "g", testTopic, committed))
			noErr(t, l.Commit(ctx, "sound", testTopic, map[int32]int64{0: end0, 1: 5}))
			noErr(t, l.Close())

			path := "/log/" + testTopic + "/offsets/g"
			soundPath := "/log/" + testTopic + "/offsets/sound"
			sound := readFile(t, mem, soundPath)
			damaged := tc.damage(readFile(t, mem, path))
			writeFile(t, mem, path, damaged)
			l, err = Open("/log", Options{FS: mem, Logger: testLogger(t)})
			if err == nil {
				_ = l.Close()
				t.Fatal("Open accepted the damaged offsets file")
			}
			if !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), path) ||
				!strings.Contains(err.Error(), tc.reason) || !strings.Contains(err.Error(), "wail log repair") {
				t.Fatalf("Open: %v\nwant ErrCorrupt naming %s, %q and the fix", err, path, tc.reason)
			}

			logs := &logBuffer{}
			rep, err := Repair("/log", Options{FS: mem, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			noErr(t, err)
			if len(rep.Lost) != 0 || len(rep.Offsets) != 1 || rep.OffsetsFiles != 2 {
				t.Fatalf("repair report %+v; want 2 offsets files checked, 1 replaced, nothing lost", rep)
			}
			got := rep.Offsets[0]
			want := OffsetsReset{Topic: testTopic, Group: "g", File: path, Quarantine: "/log/" + testTopic + "/offsets/#quarantine-g-1",
				Start: []int64{start0, 0}}
			if !strings.Contains(got.Reason, tc.reason) || strings.Contains(got.Reason, intentlog.ErrCorrupt.Error()) {
				t.Fatalf("reason %q: want %q, said once (without the error's prefix)", got.Reason, tc.reason)
			}
			got.Reason = ""
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("offsets repaired: %+v\nwant %+v", got, want)
			}
			if !strings.Contains(logs.String(), "repair replaced a damaged offsets file") || !strings.Contains(logs.String(), "group=g") {
				t.Fatalf("the reset was not logged:\n%s", logs)
			}

			after := mem.Crash()
			if b := readFile(t, after, want.Quarantine); !bytes.Equal(b, damaged) {
				t.Fatalf("quarantine after a power loss: %x, want the damaged bytes %x", b, damaged)
			}
			if b := readFile(t, after, soundPath); !bytes.Equal(b, sound) {
				t.Fatal("the sound offsets file of another group changed")
			}
			l = openLog(t, "/log", Options{FS: after, RetentionCheckInterval: -1})
			defer l.Close()
			for group, want := range map[string]map[int32]int64{"g": {0: start0, 1: 0}, "sound": {0: end0, 1: 5}} {
				got, err := l.Committed(ctx, group, testTopic)
				if err != nil || !maps.Equal(got, want) {
					t.Fatalf("committed offsets of %s after the repair and a power loss: %v, %v; want %v", group, got, err, want)
				}
			}
			for p, off := range rep.Offsets[0].Start {
				if off > committed[int32(p)] {
					t.Fatalf("partition %d starts again at %d, past the %d the group had committed", p, off, committed[int32(p)])
				}
			}
			// The group reads from there: the records it had read, then
			// those it had not.
			if recs := readFrom(t, l, 0, start0, end0); len(recs) != int(end0-start0) || recs[0].Offset != start0 {
				t.Fatalf("read partition 0 from %d: %d records", start0, len(recs))
			}
			if w := l.Warnings(); len(w) != 0 {
				t.Fatalf("Warnings() after the repair: %q", w)
			}
			noErr(t, l.Close())

			again, err := Repair("/log", Options{FS: after, Logger: testLogger(t)})
			if err != nil || len(again.Offsets) != 0 || len(again.Lost) != 0 {
				t.Fatalf("second repair: %+v, %v; want nothing to do", again, err)
			}
			// Damaged again, the file is repaired again; the first copy
			// of damaged bytes is kept.
			writeFile(t, after, path, []byte("junk"))
			third, err := Repair("/log", Options{FS: after, Logger: testLogger(t)})
			if err != nil || len(third.Offsets) != 1 || third.Offsets[0].Quarantine != "/log/"+testTopic+"/offsets/#quarantine-g-2" {
				t.Fatalf("repair of the file damaged again: %+v, %v; want it quarantined in #quarantine-g-2", third, err)
			}
			if b := readFile(t, after, want.Quarantine); !bytes.Equal(b, damaged) {
				t.Fatal("the first quarantine file changed")
			}
			if b := readFile(t, after, third.Offsets[0].Quarantine); string(b) != "junk" {
				t.Fatalf("second quarantine file: %q", b)
			}
		})
	}
}
