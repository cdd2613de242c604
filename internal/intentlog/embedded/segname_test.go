package embedded

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestStraySegmentNames: a partition directory is read from disk, and a
// file in it that only looks like a segment ("99.log", "+0.log", a copy
// an operator left) was taken for one: listSegments parsed any integer
// name, so "99.log" made Open fail saying offsets [3, 99) were missing
// (and `wail log repair` would have recorded them lost). Only the names
// segmentPath writes (20 digits) are segments now; other files are left
// alone, as other names were.
func TestStraySegmentNames(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	want := appendBatch(t, l, "a", 3)
	l.Close()
	pdir := filepath.Join(dir, testTopic, "0")
	strays := []string{"99.log", "+0.log", "0.idx", "000000000000000000000005.log", "-1.log"}
	for _, name := range strays {
		if err := os.WriteFile(filepath.Join(pdir, name), []byte("stray"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err = Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatalf("reopen with stray files: %v", err)
	}
	defer l.Close()
	want = append(want, appendBatch(t, l, "b", 1)...)
	got := readAll(t, l, 0)
	if len(got) != len(want) || got[3].Offset != 3 {
		t.Fatalf("read %d records (last offset %d), want %d ending at 3", len(got), got[len(got)-1].Offset, len(want))
	}
	for _, name := range strays {
		if _, err := os.Stat(filepath.Join(pdir, name)); err != nil {
			t.Errorf("stray file %s: %v", name, err)
		}
	}
}

// FuzzSegmentName: a partition directory's file names are read from
// disk: a name taken as a segment's file is exactly the one segmentPath
// gives its base.
func FuzzSegmentName(f *testing.F) {
	for _, s := range []string{"00000000000000000000.log", "00000000000000000042.idx", "99.log", "+5.log", "-1.log",
		"09223372036854775807.log", "99999999999999999999.log", "x.log", ".log", "00000000000000000000.tmp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		base, ext, ok := segmentName(name)
		if !ok {
			return
		}
		if base < 0 || (ext != logExt && ext != idxExt) || filepath.Base(segmentPath("d", base, ext)) != name {
			t.Fatalf("%q taken as base %d, ext %q", name, base, ext)
		}
	})
}
