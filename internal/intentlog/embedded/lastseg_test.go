package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestOpenRefusesMissingLastSegment: the last segment files of a partition
// deleted (or lost by the disk) while wail was stopped leave the segment
// before them sealed: its .idx, written at the roll after the new
// segment's name was durable, says a later segment existed. Open refuses,
// naming the missing offsets and the .idx files to remove to accept the
// loss, instead of handing the lost offsets to new records. Removing them
// opens the log at the end of what is left. An .idx left below the first
// segment (retention deletes the .log first) is no loss.
func TestOpenRefusesMissingLastSegment(t *testing.T) {
	const per = 3
	const batchBytes = batchHeaderLen + per*23
	opts := Options{SegmentBytes: 2 * batchBytes}
	cases := []struct {
		name   string
		remove func(logs, idxs []string) []string // the files to delete
		refuse bool
	}{
		{"last log", func(logs, _ []string) []string { return logs[len(logs)-1:] }, true},
		{"last two logs", func(logs, _ []string) []string { return logs[len(logs)-2:] }, true},
		{"last two segments", func(logs, idxs []string) []string {
			return []string{logs[len(logs)-1], logs[len(logs)-2], idxs[len(idxs)-1]}
		}, true},
		{"every log", func(logs, _ []string) []string { return logs }, true},
		{"first log (retention leftover)", func(logs, _ []string) []string { return logs[:1] }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l := openLog(t, dir, opts)
			createTestTopic(t, l, 1, intentlog.TopicOptions{})
			for i := range 8 {
				appendBatch(t, l, fmt.Sprintf("b%d", i), per)
			}
			_, end0, err := l.Bounds(context.Background(), testTopic, 0)
			noErr(t, err)
			noErr(t, l.Close())
			logs, idxs := segmentFiles(t, dir, 0, logExt), segmentFiles(t, dir, 0, idxExt)
			if len(logs) < 4 || len(idxs) != len(logs)-1 {
				t.Fatalf("%d segments, %d indexes; want at least 4, all but the last sealed", len(logs), len(idxs))
			}
			for _, f := range tc.remove(logs, idxs) {
				noErr(t, os.Remove(f))
			}

			l, err = Open(dir, Options{SegmentBytes: opts.SegmentBytes, Logger: testLogger(t)})
			if !tc.refuse {
				noErr(t, err)
				defer l.Close()
				if _, end, _ := l.Bounds(context.Background(), testTopic, 0); end != end0 {
					t.Fatalf("end %d after an old segment went, want %d", end, end0)
				}
				return
			}
			if err == nil {
				_, end, _ := l.Bounds(context.Background(), testTopic, 0)
				_ = l.Close()
				t.Fatalf("Open accepted a partition whose last segment is missing: end %d (was %d): new records would take its offsets", end, end0)
			}
			if !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), "missing") {
				t.Fatalf("Open: %v; want ErrCorrupt saying a segment is missing", err)
			}
			// The fix it names: remove the listed .idx files.
			left, _ := filepath.Glob(filepath.Join(dir, testTopic, "0", "*"+idxExt))
			var named int
			for _, f := range left {
				if strings.Contains(err.Error(), f) {
					named++
					noErr(t, os.Remove(f))
				}
			}
			if named == 0 {
				t.Fatalf("Open: %v; names no .idx file to remove", err)
			}
			if first := segmentPath(filepath.Join(dir, testTopic, "0"), 0, logExt); strings.Contains(err.Error(), "touch "+first) {
				noErr(t, os.WriteFile(first, nil, 0o644)) // no segment left: the fix starts one at 0
			}
			l, err = Open(dir, Options{SegmentBytes: opts.SegmentBytes, Logger: testLogger(t)})
			noErr(t, err)
			defer l.Close()
			if _, end, _ := l.Bounds(context.Background(), testTopic, 0); end >= end0 {
				t.Fatalf("end %d once the loss is accepted, want below %d", end, end0)
			}
		})
	}
}

// TestOpenRefusesMissingOnlySegment: a partition whose every segment file
// (with no .idx to tell: a young partition has one segment) or whose
// directory is gone is a loss too: CreateTopic makes each partition's
// directory and first segment durable before it writes meta. Open refuses,
// instead of starting the partition again at offset 0 under offsets its
// groups and readers have seen; the error says how to accept the loss.
func TestOpenRefusesMissingOnlySegment(t *testing.T) {
	cases := []struct {
		name   string
		remove func(dir string) error
	}{
		{"only log", func(dir string) error { return os.Remove(segmentPath(dir, 0, logExt)) }},
		{"partition directory", os.RemoveAll},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l := openLog(t, dir, Options{})
			createTestTopic(t, l, 2, intentlog.TopicOptions{})
			for i := range 4 {
				_, err := tryAppend(l, fmt.Sprint("k", i))
				noErr(t, err)
			}
			noErr(t, l.Close())
			pdir := filepath.Join(dir, testTopic, "0")
			noErr(t, tc.remove(pdir))

			l, err := Open(dir, Options{Logger: testLogger(t)})
			if err == nil {
				_, end, _ := l.Bounds(context.Background(), testTopic, 0)
				_ = l.Close()
				t.Fatalf("Open accepted a partition without its segments (end %d): new records would take their offsets", end)
			}
			first := segmentPath(pdir, 0, logExt)
			if !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), "missing") ||
				!strings.Contains(err.Error(), first) {
				t.Fatalf("Open: %v; want ErrCorrupt saying the segments are missing, naming %s", err, first)
			}
			// The fix it names to accept the loss: an empty first segment.
			noErr(t, os.MkdirAll(pdir, 0o755))
			noErr(t, os.WriteFile(first, nil, 0o644))
			l, err = Open(dir, Options{Logger: testLogger(t)})
			noErr(t, err)
			defer l.Close()
			if start, end, _ := l.Bounds(context.Background(), testTopic, 0); start != 0 || end != 0 {
				t.Fatalf("bounds [%d, %d) once the loss is accepted, want [0, 0)", start, end)
			}
		})
	}
}
