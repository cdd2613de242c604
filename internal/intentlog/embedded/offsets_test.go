package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestOffsetsFile: the offsets file round-trips any map (also an empty
// one) and rejects damage.
func TestOffsetsFile(t *testing.T) {
	for _, m := range []map[int32]int64{{}, {0: 0}, {0: 5, 3: 9, 1: 7}} {
		got, err := decodeOffsets(encodeOffsets(m))
		if err != nil || !maps.Equal(got, m) {
			t.Errorf("round trip of %v: %v, %v", m, got, err)
		}
	}
	good := encodeOffsets(map[int32]int64{0: 5, 1: 7})
	resum := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
		return b
	}
	wrongCount := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(wrongCount[4:], 3)
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{
		"short":       {good[:11], "bad offsets file header"},
		"magic":       {append([]byte("WOF2"), good[4:]...), "bad offsets file header"},
		"crc":         {append(append([]byte(nil), good[:len(good)-1]...), good[len(good)-1]^1), "crc mismatch"},
		"wrong count": {resum(wrongCount), "offsets file length 36 for 3 entries"},
	} {
		if _, err := decodeOffsets(c.b); !errors.Is(err, intentlog.ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrCorrupt saying %q", name, err, c.want)
		}
	}
}

// TestCommitRange: offsets from 0 up are accepted for the topic's
// partitions, anything else is refused.
func TestCommitRange(t *testing.T) {
	l := openLog(t, "/log", Options{FS: vfs.NewMem()})
	defer l.Close()
	createTestTopic(t, l, 2, intentlog.TopicOptions{})
	ctx := context.Background()
	noErr(t, l.Commit(ctx, "g", testTopic, map[int32]int64{0: 0, 1: 0}))
	for _, bad := range []map[int32]int64{{0: -1}, {-1: 0}, {2: 0}} {
		if err := l.Commit(ctx, "g", testTopic, bad); err == nil || !strings.Contains(err.Error(), "out of range for 2 partitions") {
			t.Errorf("Commit(%v): %v", bad, err)
		}
	}
	if got, err := l.Committed(ctx, "g", testTopic); err != nil || !maps.Equal(got, map[int32]int64{0: 0, 1: 0}) {
		t.Fatalf("Committed = %v, %v", got, err)
	}
}

// TestCommitStorageErrors: a commit whose file operations fail returns
// ErrNoSpace (full disk) or ErrStorage and changes nothing, neither what
// Committed returns nor, but for a failed directory fsync (the new file is
// in place then), what a reopen finds; no temporary file is left behind;
// the next commit works.
func TestCommitStorageErrors(t *testing.T) {
	cases := []struct {
		name    string
		fault   vfs.Fault
		noSpace bool
	}{
		{"open", vfs.Fault{Ops: vfs.OpOpen, Path: "#g.tmp", Err: syscall.ENOSPC}, true},
		{"write", vfs.Fault{Ops: vfs.OpWrite, Path: "#g.tmp", Err: syscall.ENOSPC}, true},
		{"fsync", vfs.Fault{Ops: vfs.OpSync, Path: "#g.tmp"}, false},
		{"close", vfs.Fault{Ops: vfs.OpClose, Path: "#g.tmp"}, false},
		{"rename", vfs.Fault{Ops: vfs.OpRename, Path: "#g.tmp"}, false},
		{"directory fsync", vfs.Fault{Ops: vfs.OpSyncDir, Path: "/log/t/offsets"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			efs := vfs.NewErrorFS(vfs.NewMem())
			opts := Options{FS: efs}
			l := openLog(t, "/log", opts)
			createTestTopic(t, l, 2, intentlog.TopicOptions{})
			ctx := context.Background()
			noErr(t, l.Append(ctx, testTopic, manyRecords("r", 40)))
			for p := range int32(2) {
				if _, end, _ := l.Bounds(ctx, testTopic, p); end < 2 {
					t.Fatalf("partition %d holds %d records; the test commits offsets up to 2", p, end)
				}
			}
			before, after := map[int32]int64{0: 1}, map[int32]int64{0: 2, 1: 1}
			noErr(t, l.Commit(ctx, "g", testTopic, before))
			efs.Inject(tc.fault)
			err := l.Commit(ctx, "g", testTopic, after)
			if !errors.Is(err, intentlog.ErrStorage) || errors.Is(err, intentlog.ErrNoSpace) != tc.noSpace || efs.Fired() == 0 {
				t.Fatalf("Commit with a failing %s: %v (fault fired %d times); want ErrStorage, ErrNoSpace: %v",
					tc.name, err, efs.Fired(), tc.noSpace)
			}
			efs.Clear()
			committed := func(want map[int32]int64) {
				t.Helper()
				if got, err := l.Committed(ctx, "g", testTopic); err != nil || !maps.Equal(got, want) {
					t.Fatalf("Committed = %v, %v; want %v", got, err, want)
				}
			}
			committed(before)
			ents, err := efs.ReadDir("/log/t/offsets")
			noErr(t, err)
			if len(ents) != 1 || ents[0].Name() != "g" {
				t.Fatalf("offsets directory holds %v, want only g", ents)
			}
			noErr(t, l.Close())
			l = openLog(t, "/log", opts)
			defer l.Close()
			if tc.fault.Ops != vfs.OpSyncDir {
				committed(before)
			}
			noErr(t, l.Commit(ctx, "g", testTopic, after))
			noErr(t, l.Close())
			l = openLog(t, "/log", opts)
			committed(after)
		})
	}
}

// TestClampOffsets: at Open, a group's committed offset beyond its
// partition's end is lowered to the end, in every group, durably and with a
// warning each; an offset at the end is left alone, and so is an offset of
// a partition the topic does not have.
func TestClampOffsets(t *testing.T) {
	fsys := vfs.NewMem()
	l := openLog(t, "/log", Options{FS: fsys})
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	appendBatch(t, l, "a", 5)
	noErr(t, l.Close())
	groups := map[string]map[int32]int64{
		"at-end":    {0: 5},
		"beyond":    {0: 9},
		"beyond-2":  {0: 7, 1: 99},
		"zero-only": {0: 0},
	}
	for g, offs := range groups {
		writeFile(t, fsys, "/log/t/offsets/"+g, encodeOffsets(offs))
	}
	writeFile(t, fsys, "/log/t/offsets/#x.tmp", []byte("not a group"))
	noErr(t, fsys.MkdirAll("/log/t/offsets/dir", 0o755))

	want := map[string]map[int32]int64{"at-end": {0: 5}, "beyond": {0: 5}, "beyond-2": {0: 5, 1: 99}, "zero-only": {0: 0}}
	check := func(l *Log) {
		t.Helper()
		for g, w := range want {
			if got, err := l.Committed(context.Background(), g, testTopic); err != nil || !maps.Equal(got, w) {
				t.Fatalf("group %s: Committed = %v, %v; want %v", g, got, err, w)
			}
			if got, err := decodeOffsets(readFile(t, fsys, "/log/t/offsets/"+g)); err != nil || !maps.Equal(got, w) {
				t.Fatalf("group %s: file holds %v, %v; want %v", g, got, err, w)
			}
		}
	}
	l = openLog(t, "/log", Options{FS: fsys})
	w := l.Warnings()
	if len(w) != 2 || !strings.Contains(strings.Join(w, "\n"), "group beyond committed offset 9 of t/0 beyond the log end 5") ||
		!strings.Contains(strings.Join(w, "\n"), "group beyond-2 committed offset 7 of t/0 beyond the log end 5") {
		t.Fatalf("Warnings() = %q; want one for each group beyond the end", w)
	}
	check(l)
	noErr(t, l.Close())
	l = openLog(t, "/log", Options{FS: fsys})
	defer l.Close()
	if w := l.Warnings(); len(w) != 0 {
		t.Fatalf("Warnings() at the next Open = %q", w)
	}
	check(l)
}

// TestCommitsMerge: while one commit of a group writes its file (held in
// the write by a hook, as a slow fsync would), Committed and the commits
// of another group do not wait for it, and the commits of the same group
// that arrive meanwhile are written together, in one more write, with one
// result: all succeed, or all fail (and change nothing) when that write
// fails.
func TestCommitsMerge(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail=%v", fail), func(t *testing.T) {
			const nparts = 8
			efs := vfs.NewErrorFS(vfs.NewMem())
			l := openLog(t, "/log", Options{FS: efs})
			defer l.Close()
			createTestTopic(t, l, nparts, intentlog.TopicOptions{})
			ctx := context.Background()
			noErr(t, l.Append(ctx, testTopic, manyRecords("r", 200)))

			var writes sync.Map // group -> *atomic.Int32
			release := make(chan struct{})
			var held atomic.Bool
			l.testHookOffsetsWrite = func(group string) {
				n, _ := writes.LoadOrStore(group, new(atomic.Int32))
				if n.(*atomic.Int32).Add(1) == 1 && group == "g" {
					held.Store(true)
					<-release
				}
			}
			first := make(chan error, 1)
			go func() { first <- l.Commit(ctx, "g", testTopic, map[int32]int64{0: 1}) }()
			waitFor(t, "the first commit in its write", held.Load)

			// Not held up by the write in progress.
			if got, err := l.Committed(ctx, "g", testTopic); err != nil || len(got) != 0 {
				t.Fatalf("Committed during the first write = %v, %v; want nothing yet", got, err)
			}
			noErr(t, l.Commit(ctx, "other", testTopic, map[int32]int64{1: 1}))

			errs := make(chan error, nparts-1)
			for p := int32(1); p < nparts; p++ {
				go func() { errs <- l.Commit(ctx, "g", testTopic, map[int32]int64{p: 1}) }()
			}
			waitFor(t, "the other commits queued", func() bool {
				tp, _ := l.lookup(testTopic)
				tp.offMu.Lock()
				defer tp.offMu.Unlock()
				return len(tp.commits["g"].waiters) == nparts-1
			})
			if fail { // the first write passes, the merged one fails
				efs.Inject(vfs.Fault{Ops: vfs.OpSync, Path: "#g.tmp", After: 1})
			}
			close(release)
			err := <-first
			for range nparts - 1 {
				e := <-errs
				if fail != (e != nil) || (fail && !errors.Is(e, intentlog.ErrStorage)) {
					t.Errorf("merged commit: %v, want failure %v", e, fail)
				}
			}
			efs.Clear()
			if n, _ := writes.Load("g"); n.(*atomic.Int32).Load() != 2 {
				t.Errorf("%d writes of g's offsets for %d commits, want 2 (the first, then the rest merged)", n.(*atomic.Int32).Load(), nparts)
			}
			noErr(t, err)
			want := map[int32]int64{0: 1}
			if !fail {
				for p := range int32(nparts) {
					want[p] = 1
				}
			}
			if got, err := l.Committed(ctx, "g", testTopic); err != nil || !maps.Equal(got, want) {
				t.Fatalf("Committed = %v, %v; want %v", got, err, want)
			}
		})
	}
}

// TestCommittedIsACopy: what Committed returns is the caller's: changing
// it changes neither what Committed returns next nor what a Commit merges
// with.
func TestCommittedIsACopy(t *testing.T) {
	l := openLog(t, "/log", Options{FS: vfs.NewMem()})
	defer l.Close()
	createTestTopic(t, l, 2, intentlog.TopicOptions{})
	ctx := context.Background()
	noErr(t, l.Append(ctx, testTopic, manyRecords("r", 40)))
	noErr(t, l.Commit(ctx, "g", testTopic, map[int32]int64{0: 1}))
	got, err := l.Committed(ctx, "g", testTopic)
	noErr(t, err)
	got[0], got[1] = 9, 9
	noErr(t, l.Commit(ctx, "g", testTopic, map[int32]int64{1: 2}))
	if got, err := l.Committed(ctx, "g", testTopic); err != nil || !maps.Equal(got, map[int32]int64{0: 1, 1: 2}) {
		t.Fatalf("Committed = %v, %v; want map[0:1 1:2]", got, err)
	}
}
