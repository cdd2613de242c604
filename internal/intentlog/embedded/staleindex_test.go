package embedded

import (
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/logbuf"
	"github.com/wail-cdc/wail/internal/vfs"
)

// checkIndexes checks that every index entry of every segment of the test
// topic points at the batch it names: a batch header at its position with
// its base offset and first timestamp.
func checkIndexes(t testing.TB, l *Log, what string) {
	t.Helper()
	l.mu.RLock()
	tp := l.topics[testTopic]
	l.mu.RUnlock()
	if tp == nil {
		return // a crash before the topic's creation finished
	}
	for _, p := range tp.parts {
		p.mu.Lock()
		type seg struct {
			path  string
			base  int64
			index []indexEntry
		}
		var segs []seg
		for _, s := range p.segs {
			segs = append(segs, seg{s.logPath, s.base, s.index})
		}
		p.mu.Unlock()
		for _, s := range segs {
			f, err := l.fs.OpenFile(s.path, os.O_RDONLY, 0)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			for i, e := range s.index {
				var hdr [batchHeaderLen]byte
				_, err := f.ReadAt(hdr[:], int64(e.pos))
				base, ts := int64(binary.BigEndian.Uint64(hdr[9:])), int64(binary.BigEndian.Uint64(hdr[21:]))
				if err != nil || hdr[0] != batchMagic || base != s.base+int64(e.rel) || ts != e.ts {
					_ = f.Close()
					t.Fatalf("%s: %s index entry %d (offset %d, position %d, ts %d) points at offset %d ts %d (%v)",
						what, s.path, i, s.base+int64(e.rel), e.pos, e.ts, base, ts, err)
				}
			}
			_ = f.Close()
		}
	}
}

// TestStaleIndexEntry: the .idx of a sealed segment is not fsync'd, and
// Open checks only its order, bounds and last entry. An entry in the
// middle that is wrong (what a filesystem that shows stale blocks of an
// unsynced file after a power loss, or bit rot, leaves) must neither fail
// a read of sound data with ErrCorrupt (which `wail log repair` does not
// clear: the .log is sound) nor make OffsetForTime skip records.
func TestStaleIndexEntry(t *testing.T) {
	cases := []struct {
		name  string
		spoil func(e []indexEntry) // entries of the first sealed segment
		check func(t *testing.T, l *Log, base int64, e []indexEntry, want []intentlog.Record)
	}{
		{"position inside a batch", func(e []indexEntry) { e[2].pos++ },
			func(t *testing.T, l *Log, base int64, e []indexEntry, want []intentlog.Record) {
				from := base + int64(e[2].rel)
				r, err := l.NewReader(testTopic, 0, from)
				noErr(t, err)
				defer r.Close()
				recs, err := r.Next(context.Background())
				if err != nil || len(recs) == 0 || recs[0].Offset != from || string(recs[0].Key) != string(want[from].Key) {
					t.Fatalf("read from %d: %d records, %v; want records from %d (key %s)", from, len(recs), err, from, want[from].Key)
				}
			}},
		{"timestamp of the batch before", func(e []indexEntry) { e[2].ts = e[1].ts },
			func(t *testing.T, l *Log, base int64, e []indexEntry, want []intentlog.Record) {
				// The first record of the batch after the one entry 1 names.
				off := base + int64(e[1].rel) + 2
				if off >= base+int64(e[2].rel) {
					t.Fatalf("entries 1 and 2 index adjacent batches; the test needs one between")
				}
				got, err := l.OffsetForTime(context.Background(), testTopic, 0, want[off].Timestamp)
				if err != nil || got != off {
					t.Fatalf("OffsetForTime(%v) = %d, %v; want %d", want[off].Timestamp, got, err, off)
				}
			}},
	}
	for _, tc := range cases {
		for _, writeFails := range []bool{false, true} {
			name := tc.name
			if writeFails {
				name += ", rebuilt index not written"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				clock := &fakeClock{}
				clock.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
				dir := t.TempDir()
				opts := Options{SegmentBytes: 4 << 10, IndexIntervalBytes: 128, Now: clock.Now, RetentionCheckInterval: -1}
				l := openLog(t, dir, opts)
				createTestTopic(t, l, 1, intentlog.TopicOptions{})
				var want []intentlog.Record
				for i := range 120 {
					clock.Advance(time.Second)
					want = append(want, appendBatch(t, l, string(rune('a'+i%26))+time.Duration(i).String(), 2)...)
				}
				noErr(t, l.Close())
				idx := segmentFiles(t, dir, 0, idxExt)
				if len(idx) == 0 {
					t.Fatal("no sealed segment")
				}
				b, err := os.ReadFile(idx[0])
				noErr(t, err)
				entries, err := parseIndex(b, 1<<30)
				noErr(t, err)
				if len(entries) < 4 {
					t.Fatalf("%d index entries, want 4 or more", len(entries))
				}
				good := append([]indexEntry(nil), entries...)
				tc.spoil(entries)
				noErr(t, os.WriteFile(idx[0], encodeIndex(entries), 0o644))

				efs := vfs.NewErrorFS(vfs.Default)
				if writeFails {
					efs.Inject(vfs.Fault{Ops: vfs.OpOpen, Path: "*" + idxExt + ".tmp"})
				}
				var logs logbuf.Buffer
				l = openLog(t, dir, Options{FS: efs, SegmentBytes: opts.SegmentBytes, IndexIntervalBytes: opts.IndexIntervalBytes,
					Now: clock.Now, RetentionCheckInterval: -1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				defer l.Close()
				tc.check(t, l, 0, good, want)
				sameRecords(t, "read back", readAll(t, l, 0), want)
				checkIndexes(t, l, "after the read")
				// The rebuilt index is written over the stale one, or, when
				// that fails, a warning says the stale one stays.
				b, err = os.ReadFile(idx[0])
				noErr(t, err)
				onDisk, err := parseIndex(b, 1<<30)
				noErr(t, err)
				warned := strings.Contains(logs.String(), "cannot write a rebuilt index")
				rebuilt := strings.Count(logs.String(), "rebuilt a segment index")
				if wantDisk := map[bool][]indexEntry{false: good, true: entries}[writeFails]; !slices.Equal(onDisk, wantDisk) || warned != writeFails || rebuilt != 1 {
					t.Fatalf("after the rebuild (write fails: %v): %s holds %v, want %v; warned %v; rebuild said %d times, want once; logs:\n%s",
						writeFails, idx[0], onDisk, wantDisk, warned, rebuilt, logs.String())
				}
			})
		}
	}
}
