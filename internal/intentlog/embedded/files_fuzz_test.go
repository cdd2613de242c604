package embedded

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// FuzzReadMeta: a topic's meta file is read from disk at every Open:
// whatever it holds, reading it does not panic, what it takes has a
// partition count a topic can have, and what it takes written again reads
// back the same.
func FuzzReadMeta(f *testing.F) {
	for _, m := range []topicMeta{
		metaFor(1, intentlog.TopicOptions{}),
		metaFor(16, intentlog.TopicOptions{Retention: time.Hour, RetentionBytes: 1 << 30, Compact: true}),
		metaFor(3, intentlog.TopicOptions{Owner: "table t 1767225600000000"}),
	} {
		b, _ := json.Marshal(m)
		f.Add(b)
	}
	f.Add([]byte(`{"version":1,"partitions":0}`))
	f.Add([]byte(`{"version":1,"partitions":2,"owner":7}`))
	f.Add([]byte(`{"version":1,"partitions":2147483647,"retention_ns":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fsys := vfs.NewMem()
		if err := fsys.MkdirAll("/t", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := writeFileAtomic(fsys, "/t/"+metaFile, b, true); err != nil {
			t.Fatal(err)
		}
		m, err := readMeta(fsys, "/t")
		if err != nil {
			if !errors.Is(err, intentlog.ErrCorrupt) {
				t.Fatalf("a bad meta file fails without ErrCorrupt: %v", err)
			}
			return
		}
		if checkPartitions(m.Partitions) != nil {
			t.Fatalf("took %d partitions", m.Partitions)
		}
		if err := writeMeta(fsys, "/t", m, true); err != nil {
			t.Fatal(err)
		}
		again, err := readMeta(fsys, "/t")
		if err != nil || again != m {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, m)
		}
	})
}

// FuzzParseIndex: an index file is read from disk: whatever it holds,
// parsing it does not panic, and an index it takes is in order within
// the segment, and encodes to the same bytes.
func FuzzParseIndex(f *testing.F) {
	f.Add(encodeIndex([]indexEntry{{0, 0, 10}, {5, 100, 20}, {9, 4000, 15}}), int64(5000))
	f.Add(encodeIndex([]indexEntry{{0, 0, 10}}), int64(1))
	f.Add(encodeIndex([]indexEntry{{1, 0, 10}}), int64(100))
	f.Add([]byte{1, 2, 3}, int64(100))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		entries, err := parseIndex(b, size)
		if err != nil {
			return
		}
		for i, e := range entries {
			if int64(e.pos) >= size || (i > 0 && (e.rel <= entries[i-1].rel || e.pos <= entries[i-1].pos)) {
				t.Fatalf("took entry %d %+v (size %d)", i, e, size)
			}
		}
		if got := encodeIndex(entries); string(got) != string(b) {
			t.Fatalf("round trip changed the index")
		}
		if len(entries) > 0 {
			_ = lookupOffset(entries, binary.BigEndian.Uint32(b))
			_ = lookupTime(entries, entries[len(entries)-1].ts)
		}
	})
}

// FuzzReadLost: a partition's #lost file is read from disk: whatever it
// holds, reading it does not panic, and what it takes is written back to
// a file that reads the same.
func FuzzReadLost(f *testing.F) {
	for _, ls := range []lostRanges{
		{{Topic: "t", Partition: 0, From: 5, To: 9, Segment: "00000000000000000000.log", Position: 40, Bytes: 100, Reason: "crc"}},
		{{Topic: "t", Partition: 1, From: 5, To: -1, Quarantine: "q", Reason: "torn"}, {From: 1, To: 2}},
	} {
		b, _ := json.MarshalIndent(ls, "", "  ")
		f.Add(b)
	}
	f.Add([]byte(`null`))
	f.Add([]byte(`[null]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fsys := vfs.NewMem()
		if err := fsys.MkdirAll("/p", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := writeFileAtomic(fsys, "/p/"+lostFile, b, true); err != nil {
			t.Fatal(err)
		}
		ls, err := readLost(fsys, "/p")
		if err != nil {
			if !errors.Is(err, intentlog.ErrCorrupt) {
				t.Fatalf("a bad #lost file fails without ErrCorrupt: %v", err)
			}
			return
		}
		_ = ls.covers(0, 10)
		if err := writeLost(fsys, "/p", ls); err != nil {
			t.Fatal(err)
		}
		again, err := readLost(fsys, "/p")
		if err != nil || (len(ls) > 0 && !reflect.DeepEqual(again, ls)) {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, ls)
		}
	})
}
