package embedded

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestOpenRemovesLeftovers: what a crash leaves in a partition directory
// besides its segments is removed by Open: the .idx of a segment whose .log
// retention had deleted (removeFiles deletes the .log first) and a
// temporary index file (writeIndexFile). The .idx files of the segments
// that remain are kept, and the partition reads on from its first
// remaining segment.
func TestOpenRemovesLeftovers(t *testing.T) {
	t.Parallel()
	fsys := vfs.NewMem()
	opts := Options{FS: fsys, SegmentBytes: 512}
	l := openLog(t, "/log", opts)
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	var want []intentlog.Record
	for i := range 30 {
		want = append(want, appendBatch(t, l, "r", 1+i%3)...)
	}
	noErr(t, l.Close())
	names := func() []string {
		t.Helper()
		ents, err := fsys.ReadDir(craftedDir)
		noErr(t, err)
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		slices.Sort(out)
		return out
	}
	var bases []int64
	for _, n := range names() {
		if filepath.Ext(n) == logExt {
			bases = append(bases, segmentBase(t, n))
		}
	}
	if len(bases) < 3 {
		t.Fatalf("%d segments (%v); the test wants at least 3", len(bases), names())
	}
	orphan := segmentPath(craftedDir, bases[0], idxExt)
	readFile(t, fsys, orphan) // a sealed segment's index exists
	noErr(t, fsys.Remove(segmentPath(craftedDir, bases[0], logExt)))
	noErr(t, fsys.SyncDir(craftedDir))
	tmp := segmentPath(craftedDir, bases[1], idxExt) + ".tmp"
	writeFile(t, fsys, tmp, []byte("a torn index"))
	before := names()

	l = openLog(t, "/log", opts)
	defer l.Close()
	for _, gone := range []string{orphan, tmp} {
		if _, err := vfs.ReadFile(fsys, gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s, left by the crash, still there after Open (%v); directory before Open: %v", gone, err, before)
		}
	}
	for _, b := range bases[1 : len(bases)-1] {
		readFile(t, fsys, segmentPath(craftedDir, b, idxExt)) // kept: its .log is there
	}
	start, end, err := l.Bounds(context.Background(), testTopic, 0)
	if err != nil || start != bases[1] || end != int64(len(want)) {
		t.Fatalf("Bounds = [%d, %d), %v; want [%d, %d)", start, end, err, bases[1], len(want))
	}
	sameRecords(t, "after Open", readAll(t, l, 0), want[start:])
}
