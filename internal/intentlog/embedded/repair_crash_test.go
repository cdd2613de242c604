package embedded

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/wail-cdc/wail/internal/vfs"
)

// TestRepairInterruptedByCrash: a repair that stops at any of its disk
// operations (a failing call, then a power loss) and is run again leaves
// the log an uninterrupted repair leaves: it opens, holds the same
// records, and a group's committed offsets are never past what it had.
func TestRepairInterruptedByCrash(t *testing.T) {
	flip := func(b []byte, at int) []byte { b = bytes.Clone(b); b[at] ^= 0x10; return b }
	cases := []struct {
		name     string
		segments [][]int
		damage   func(t *testing.T, fsys vfs.FS)
	}{
		{"damage in the last segment, valid batches after it", [][]int{{3, 3, 3}}, func(t *testing.T, fsys vfs.FS) {
			f := framesOf(t, fsys, seg(0))
			writeFile(t, fsys, seg(0), bytes.Join([][]byte{f[0], flip(f[1], 40), f[2]}, nil))
		}},
		{"damage in a sealed segment, valid batches after it", [][]int{{3, 3, 3}, {3}}, func(t *testing.T, fsys vfs.FS) {
			f := framesOf(t, fsys, seg(0))
			writeFile(t, fsys, seg(0), bytes.Join([][]byte{f[0], flip(f[1], 40), f[2]}, nil))
		}},
		{"torn tail", [][]int{{3, 3, 3}}, func(t *testing.T, fsys vfs.FS) {
			f := framesOf(t, fsys, seg(0))
			writeFile(t, fsys, seg(0), bytes.Join([][]byte{f[0], f[1], f[2][:10]}, nil))
		}},
		{"first batch damaged", [][]int{{3, 3, 3}, {3}}, func(t *testing.T, fsys vfs.FS) {
			f := framesOf(t, fsys, seg(0))
			writeFile(t, fsys, seg(0), bytes.Join([][]byte{flip(f[0], 40), f[1], f[2]}, nil))
		}},
		{"a segment file lost", [][]int{{3}, {3}, {3}}, func(t *testing.T, fsys vfs.FS) {
			noErr(t, fsys.Remove(seg(3)))
		}},
		{"damaged #lost file", [][]int{{3}, {3}, {3}}, func(t *testing.T, fsys vfs.FS) {
			noErr(t, fsys.Remove(seg(3)))
			noErr(t, fsys.SyncDir(craftedDir))
			if _, err := Repair("/log", Options{FS: fsys, Logger: testLogger(t)}); err != nil {
				t.Fatal(err)
			}
			writeFile(t, fsys, craftedDir+"/"+lostFile, []byte("junk"))
		}},
		{"damaged offsets file", [][]int{{3}, {3}}, func(t *testing.T, fsys vfs.FS) {
			writeFile(t, fsys, "/log/t/offsets/g", []byte("junk"))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setup := func() *vfs.MemFS {
				mem := vfs.NewMem()
				l, _, _ := craftLog(t, mem, Options{}, 0, tc.segments...)
				noErr(t, l.Commit(context.Background(), "g", testTopic, map[int32]int64{0: 2}))
				noErr(t, l.Close())
				tc.damage(t, mem)
				noErr(t, mem.SyncDir(craftedDir))
				return mem
			}
			// What an uninterrupted repair leaves.
			mem := setup()
			if _, err := Repair("/log", Options{FS: mem, Logger: testLogger(t)}); err != nil {
				t.Fatal(err)
			}
			want := state(t, mem)
			for k := 0; ; k++ {
				mem := setup()
				efs := vfs.NewErrorFS(mem)
				efs.Inject(vfs.Fault{Ops: vfs.OpMutate, After: k, Times: 1})
				// The error is not checked: a failing removal of a leftover
				// (listSegments) is not one.
				_, _ = Repair("/log", Options{FS: efs, Logger: testLogger(t)})
				if efs.Fired() == 0 {
					if k == 0 {
						t.Fatal("the repair changed nothing")
					}
					break
				}
				after := mem.Crash()
				if _, err := Repair("/log", Options{FS: after, Logger: testLogger(t)}); err != nil {
					t.Fatalf("k=%d: repair again after a crash: %v", k, err)
				}
				if got := state(t, after); got != want {
					t.Errorf("k=%d: after a crash and a repair again:\n%s\nwant\n%s", k, got, want)
				}
			}
		})
	}
}

// state opens the log and says what it holds: its records, its lost
// ranges and the group's committed offsets.
func state(t *testing.T, fsys vfs.FS) string {
	t.Helper()
	l, err := Open("/log", Options{FS: fsys, Logger: testLogger(t)})
	if err != nil {
		return "Open: " + err.Error()
	}
	defer l.Close()
	ctx := context.Background()
	var b strings.Builder
	start, end, err := l.Bounds(ctx, testTopic, 0)
	fmt.Fprintf(&b, "bounds [%d, %d) %v\n", start, end, err)
	for _, r := range readGaps(t, l, 0, end) {
		fmt.Fprintf(&b, "%d:%s ", r.Offset, r.Key)
	}
	lost, err := l.Lost(ctx, testTopic, 0)
	fmt.Fprintf(&b, "\nlost %v %v\n", lost, err)
	c, err := l.Committed(ctx, "g", testTopic)
	fmt.Fprintf(&b, "committed %v %v", c, err)
	return b.String()
}
