package vfs

import (
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// isErr checks that err names its path (*os.PathError, or *os.LinkError
// for a rename) and wraps want.
func isErr(t *testing.T, what string, err error, want error) {
	t.Helper()
	var pe *os.PathError
	var le *os.LinkError
	if !errors.Is(err, want) || !errors.As(err, &pe) && !errors.As(err, &le) {
		t.Fatalf("%s: %v, want a path error wrapping %v", what, err, want)
	}
}

func names(t *testing.T, fsys FS, dir string) string {
	t.Helper()
	ents, err := fsys.ReadDir(dir)
	must(t, err)
	var out []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		out = append(out, n)
	}
	return strings.Join(out, " ")
}

// TestFS runs the same semantics over the operating system's FS and MemFS:
// what the embedded log relies on, each error case included.
func TestFS(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   FS
		root string
	}{{"os", Default, ""}, {"mem", NewMem(), "/"}} {
		t.Run(tc.name, func(t *testing.T) {
			root := tc.root
			if root == "" {
				root = t.TempDir()
			}
			fsys := tc.fs
			p := func(name string) string { return filepath.Join(root, name) }

			// Files: create, exclusive create, open of a missing file,
			// access modes, truncation on open.
			_, err := fsys.OpenFile(p("missing"), os.O_RDONLY, 0)
			isErr(t, "open a missing file", err, fs.ErrNotExist)
			_, err = fsys.OpenFile(p("nodir/f"), os.O_RDWR|os.O_CREATE, 0o644)
			isErr(t, "create in a missing directory", err, fs.ErrNotExist)
			must(t, WriteFile(fsys, p("f"), []byte("hello"), 0o644))
			_, err = fsys.OpenFile(p("f"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
			isErr(t, "exclusive create of an existing file", err, fs.ErrExist)
			ro, err := fsys.OpenFile(p("f"), os.O_RDONLY, 0)
			must(t, err)
			if n, err := ro.Size(); err != nil || n != 5 {
				t.Fatalf("size after a read-only open: %d, %v", n, err)
			}
			if _, err := ro.WriteAt([]byte("x"), 0); err == nil {
				t.Fatal("write to a read-only file succeeded")
			}
			if err := ro.Truncate(0); err == nil {
				t.Fatal("truncate of a read-only file succeeded")
			}
			must(t, ro.Close())
			wo, err := fsys.OpenFile(p("f"), os.O_WRONLY, 0)
			must(t, err)
			if _, err := wo.ReadAt(make([]byte, 1), 0); err == nil {
				t.Fatal("read from a write-only file succeeded")
			}
			// A write of nothing beyond the end changes nothing.
			if n, err := wo.WriteAt(nil, 100); n != 0 || err != nil {
				t.Fatalf("empty write: %d, %v", n, err)
			}
			must(t, wo.Close())
			if b, err := ReadFile(fsys, p("f")); err != nil || string(b) != "hello" {
				t.Fatalf("after read-only and write-only opens: %q, %v", b, err)
			}
			tr, err := fsys.OpenFile(p("f"), os.O_WRONLY|os.O_TRUNC, 0)
			must(t, err)
			must(t, tr.Close())
			if b, err := ReadFile(fsys, p("f")); err != nil || len(b) != 0 {
				t.Fatalf("after O_TRUNC: %q, %v; want empty", b, err)
			}

			// Reads and writes at offsets; truncate both ways.
			f, err := fsys.OpenFile(p("f"), os.O_RDWR, 0)
			must(t, err)
			_, err = f.WriteAt([]byte("abc"), 2)
			must(t, err)
			b := make([]byte, 10)
			if n, err := f.ReadAt(b, 0); n != 5 || err != io.EOF || string(b[:n]) != "\x00\x00abc" {
				t.Fatalf("ReadAt over the end = %d %q, %v", n, b[:n], err)
			}
			if n, err := f.ReadAt(b[:2], 3); n != 2 || err != nil || string(b[:2]) != "bc" {
				t.Fatalf("ReadAt inside = %d %q, %v", n, b[:2], err)
			}
			if n, err := f.ReadAt(b, 5); n != 0 || err != io.EOF {
				t.Fatalf("ReadAt at the end = %d, %v", n, err)
			}
			if n, err := f.ReadAt(nil, 5); n != 0 || (err != nil) != (tc.name == "mem") {
				// io.ReaderAt allows both; MemFS takes the stricter one.
				t.Fatalf("empty ReadAt at the end = %d, %v; want io.EOF from MemFS, nil from the OS", n, err)
			}
			must(t, f.Truncate(4))
			must(t, f.Truncate(6))
			if n, err := f.Size(); n != 6 || err != nil {
				t.Fatalf("size after truncating to 4 then 6: %d, %v", n, err)
			}
			if n, err := f.ReadAt(b[:6], 0); n != 6 || err != nil || string(b[:6]) != "\x00\x00ab\x00\x00" {
				t.Fatalf("after truncating to 4 then 6: %q, %v", b[:n], err)
			}
			must(t, f.Sync())
			must(t, f.Close())
			if _, err := f.ReadAt(b, 0); err == nil {
				t.Fatal("read after close succeeded")
			}

			// Directories.
			must(t, fsys.MkdirAll(p("d/e"), 0o755))
			must(t, fsys.MkdirAll(p("d/e"), 0o755))
			must(t, fsys.MkdirAll(p("d"), 0o755))
			isErr(t, "mkdir over a file", fsys.MkdirAll(p("f/x"), 0o755), syscall.ENOTDIR)
			_, err = fsys.OpenFile(p("d"), os.O_RDWR, 0)
			isErr(t, "open a directory for writing", err, syscall.EISDIR)
			must(t, WriteFile(fsys, p("d/e/g"), []byte("12"), 0o644))
			must(t, WriteFile(fsys, p("d/b"), nil, 0o644))
			if got := names(t, fsys, p("d")); got != "b e/" {
				t.Fatalf("ReadDir = %q, want sorted files and directories", got)
			}
			if ents, err := fsys.ReadDir(p("d/e")); err != nil || len(ents) != 1 || !ents[0].Type().IsRegular() {
				t.Fatalf("ReadDir of a file's directory: %v, %v", ents, err)
			} else if info, err := ents[0].Info(); err != nil || info.Size() != 2 || info.IsDir() || info.Name() != "g" {
				t.Fatalf("Info() = %v, %v", info, err)
			}
			if ents, _ := fsys.ReadDir(p("d")); !ents[1].Type().IsDir() {
				t.Fatalf("%s is not a directory: %v", ents[1].Name(), ents[1].Type())
			}
			_, err = fsys.ReadDir(p("nothing"))
			isErr(t, "ReadDir of a missing directory", err, fs.ErrNotExist)
			isErr(t, "remove a missing file", fsys.Remove(p("nothing")), fs.ErrNotExist)
			isErr(t, "remove a non-empty directory", fsys.Remove(p("d/e")), syscall.ENOTEMPTY)
			must(t, fsys.Remove(p("d/e/g")))
			must(t, fsys.Remove(p("d/e")))
			must(t, fsys.SyncDir(p("d")))
			if err := fsys.SyncDir(p("nothing")); err == nil {
				t.Fatal("SyncDir of a missing directory succeeded")
			}

			// Renames: files (also over another), directories with content,
			// to a missing directory, onto a non-empty directory.
			must(t, WriteFile(fsys, p("r1"), []byte("one"), 0o644))
			must(t, WriteFile(fsys, p("r2"), []byte("two"), 0o644))
			must(t, fsys.Rename(p("r1"), p("r2")))
			if b, err := ReadFile(fsys, p("r2")); err != nil || string(b) != "one" {
				t.Fatalf("renamed over: %q, %v", b, err)
			}
			isErr(t, "rename a missing file", fsys.Rename(p("r1"), p("r3")), fs.ErrNotExist)
			isErr(t, "rename into a missing directory", fsys.Rename(p("r2"), p("nodir/r")), fs.ErrNotExist)
			must(t, fsys.MkdirAll(p("m/n"), 0o755))
			must(t, WriteFile(fsys, p("m/n/x"), []byte("x"), 0o644))
			must(t, fsys.MkdirAll(p("full/y"), 0o755))
			must(t, fsys.MkdirAll(p("empty"), 0o755))
			isErr(t, "rename onto a directory", fsys.Rename(p("m"), p("full")), syscall.EEXIST)
			isErr(t, "rename onto an empty directory", fsys.Rename(p("m"), p("empty")), syscall.EEXIST)
			isErr(t, "rename a directory onto itself", fsys.Rename(p("m"), p("m")), syscall.EEXIST)
			must(t, fsys.Rename(p("m"), p("moved")))
			if b, err := ReadFile(fsys, p("moved/n/x")); err != nil || string(b) != "x" {
				t.Fatalf("file of a renamed directory: %q, %v", b, err)
			}
			must(t, fsys.Rename(p("r2"), p("r2")))
			if b, err := ReadFile(fsys, p("r2")); err != nil || string(b) != "one" {
				t.Fatalf("renamed onto itself: %q, %v", b, err)
			}

			// RemoveAll takes a tree, and only that tree.
			must(t, WriteFile(fsys, p("moved-too"), nil, 0o644))
			must(t, fsys.RemoveAll(p("moved")))
			must(t, fsys.RemoveAll(p("moved")))
			if _, err := fsys.ReadDir(p("moved")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("after RemoveAll: %v", err)
			}
			if _, err := ReadFile(fsys, p("moved-too")); err != nil {
				t.Fatalf("RemoveAll took a sibling sharing the prefix: %v", err)
			}

			// Locks: exclusive until closed.
			lk, err := fsys.Lock(p("lock"))
			must(t, err)
			if _, err := fsys.Lock(p("lock")); err == nil {
				t.Fatal("a second Lock of the same file succeeded")
			}
			must(t, lk.Close())
			lk, err = fsys.Lock(p("lock"))
			must(t, err)
			must(t, lk.Close())
		})
	}
}

// TestReadWriteFile: whole-file helpers, including an empty file (MemFS's
// ReadAt at the end says io.EOF) and failures at each step.
func TestReadWriteFile(t *testing.T) {
	for _, fsys := range []FS{Default, NewMem()} {
		dir := "/"
		if fsys == Default {
			dir = t.TempDir()
		}
		empty := filepath.Join(dir, "empty")
		must(t, WriteFile(fsys, empty, nil, 0o644))
		if b, err := ReadFile(fsys, empty); err != nil || len(b) != 0 {
			t.Fatalf("ReadFile of an empty file: %q, %v", b, err)
		}
		if _, err := ReadFile(fsys, filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("ReadFile of a missing file: %v", err)
		}
	}
	e := NewErrorFS(NewMem())
	must(t, WriteFile(e, "/f", []byte("data"), 0o644))
	for _, op := range []Op{OpRead, OpSize} {
		e.Inject(Fault{Ops: op})
		if _, err := ReadFile(e, "/f"); !errors.Is(err, syscall.EIO) {
			t.Fatalf("ReadFile with a failing %s: %v", op, err)
		}
		e.Clear()
	}
	for _, op := range []Op{OpOpen, OpWrite, OpClose} {
		e.Inject(Fault{Ops: op})
		if err := WriteFile(e, "/f", []byte("x"), 0o644); !errors.Is(err, syscall.EIO) {
			t.Fatalf("WriteFile with a failing %s: %v", op, err)
		}
		e.Clear()
	}
}

func TestIsNoSpace(t *testing.T) {
	for err, want := range map[error]bool{
		syscall.ENOSPC: true, syscall.EDQUOT: true, syscall.EIO: false, nil: false,
		&os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}: true,
	} {
		if IsNoSpace(err) != want {
			t.Errorf("IsNoSpace(%v) = %v", err, !want)
		}
	}
}

func TestOpString(t *testing.T) {
	if s := (OpRead | OpSync).String(); s != "read|sync" {
		t.Errorf("(OpRead|OpSync).String() = %q", s)
	}
	if s := OpAll.String(); s != strings.Join(opNames, "|") {
		t.Errorf("OpAll.String() = %q", s)
	}
	if s := Op(0).String(); s != "" {
		t.Errorf("Op(0).String() = %q", s)
	}
}

// TestErrorFSOps: each operation fails when a fault names it, with the
// fault's error in an *os.PathError naming the operation and path, and
// goes through to the FS when no fault matches.
func TestErrorFSOps(t *testing.T) {
	calls := []struct {
		op   Op
		call func(e *ErrorFS, f File) error
	}{
		{OpOpen, func(e *ErrorFS, _ File) error { _, err := e.OpenFile("/d/f", os.O_RDWR, 0); return err }},
		{OpRead, func(_ *ErrorFS, f File) error { _, err := f.ReadAt(make([]byte, 1), 0); return err }},
		{OpWrite, func(_ *ErrorFS, f File) error { _, err := f.WriteAt([]byte("y"), 0); return err }},
		{OpTruncate, func(_ *ErrorFS, f File) error { return f.Truncate(1) }},
		{OpSync, func(_ *ErrorFS, f File) error { return f.Sync() }},
		{OpSize, func(_ *ErrorFS, f File) error { _, err := f.Size(); return err }},
		{OpRemove, func(e *ErrorFS, _ File) error { return e.Remove("/d/gone") }},
		{OpRemove, func(e *ErrorFS, _ File) error { return e.RemoveAll("/d/gone") }},
		{OpRename, func(e *ErrorFS, _ File) error { return e.Rename("/d/r", "/d/r2") }},
		{OpMkdir, func(e *ErrorFS, _ File) error { return e.MkdirAll("/d/sub", 0o755) }},
		{OpReadDir, func(e *ErrorFS, _ File) error { _, err := e.ReadDir("/d"); return err }},
		{OpSyncDir, func(e *ErrorFS, _ File) error { return e.SyncDir("/d") }},
		{OpLock, func(e *ErrorFS, _ File) error {
			lk, err := e.Lock("/d/lock")
			if err == nil {
				err = lk.Close()
			}
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.op.String(), func(t *testing.T) {
			mem := NewMem()
			must(t, mem.MkdirAll("/d", 0o755))
			e := NewErrorFS(mem)
			reset := func() File {
				must(t, WriteFile(mem, "/d/f", []byte("x"), 0o644))
				must(t, WriteFile(mem, "/d/gone", nil, 0o644))
				must(t, WriteFile(mem, "/d/r", nil, 0o644))
				f, err := e.OpenFile("/d/f", os.O_RDWR, 0)
				must(t, err)
				return f
			}
			f := reset()
			before := contents(t, mem, "/")
			e.Inject(Fault{Ops: c.op, Err: syscall.EROFS})
			err := c.call(e, f)
			var pe *os.PathError
			if !errors.Is(err, syscall.EROFS) || !errors.As(err, &pe) || pe.Op != c.op.String() || e.Fired() != 1 {
				t.Fatalf("%s with a fault: %v (fired %d); want an *os.PathError %q wrapping EROFS", c.op, err, e.Fired(), c.op)
			}
			if after := contents(t, mem, "/"); !maps.Equal(after, before) {
				t.Fatalf("the failed %s changed the FS: %q, was %q", c.op, after, before)
			}
			e.Clear()
			f = reset()
			if err := c.call(e, f); err != nil {
				t.Fatalf("%s without a fault: %v", c.op, err)
			}
			if e.Fired() != 1 {
				t.Fatalf("fired %d, want 1", e.Fired())
			}
		})
	}
	// Close closes the file even when it fails.
	mem := NewMem()
	e := NewErrorFS(mem)
	f, err := e.OpenFile("/f", os.O_RDWR|os.O_CREATE, 0o644)
	must(t, err)
	e.Inject(Fault{Ops: OpClose})
	if err := f.Close(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Close with a fault: %v, want EIO (the default)", err)
	}
	if _, err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("read after a failed Close: %v, want ErrClosed", err)
	}
}

// TestFaultMatching: Ops 0 matches every operation; a pattern matches the
// base name, or the whole path when it has a separator; After lets calls
// pass first, Times bounds the failures; a short write writes half.
func TestFaultMatching(t *testing.T) {
	e := NewErrorFS(NewMem())
	must(t, e.MkdirAll("/a", 0o755))
	e.Inject(Fault{Path: "*.log", After: 1, Times: 2})
	results := ""
	for range 5 {
		if _, err := e.OpenFile("/a/x.log", os.O_RDWR|os.O_CREATE, 0o644); err != nil {
			results += "F"
		} else {
			results += "."
		}
		if err := e.SyncDir("/a"); err != nil {
			t.Fatalf("SyncDir of a path the pattern does not match: %v", err)
		}
	}
	if results != ".FF.." || e.Fired() != 2 {
		t.Fatalf("opens with After 1, Times 2: %s (fired %d), want .FF..", results, e.Fired())
	}
	e.Clear()
	e.Inject(Fault{Path: "/a/*", Ops: OpMkdir})
	if err := e.MkdirAll("/a/b", 0o755); err == nil {
		t.Fatal("a whole-path pattern did not match")
	}
	if err := e.MkdirAll("/b/a", 0o755); err != nil {
		t.Fatalf("a whole-path pattern matched another path: %v", err)
	}
	e.Clear()

	mem := NewMem()
	e = NewErrorFS(mem)
	f, err := e.OpenFile("/f", os.O_RDWR|os.O_CREATE, 0o644)
	must(t, err)
	e.Inject(Fault{Ops: OpWrite, Partial: true, Err: syscall.ENOSPC})
	if n, err := f.WriteAt([]byte("abcdef"), 0); n != 3 || !IsNoSpace(err) {
		t.Fatalf("short write = %d, %v; want 3, ENOSPC", n, err)
	}
	if n, err := f.WriteAt([]byte("z"), 10); n != 0 || !IsNoSpace(err) {
		t.Fatalf("short write of one byte = %d, %v; want 0, ENOSPC", n, err)
	}
	if b, _ := ReadFile(mem, "/f"); string(b) != "abc" {
		t.Fatalf("after short writes: %q, want abc", b)
	}
}

func TestOpenFileLimit(t *testing.T) {
	var r syscall.Rlimit
	must(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r))
	soft, hard, err := OpenFileLimit()
	if err != nil || soft != uint64(r.Cur) || hard != uint64(r.Max) || soft == 0 {
		t.Fatalf("OpenFileLimit() = %d, %d, %v; want %d, %d", soft, hard, err, r.Cur, r.Max)
	}
}

// TestSyncDirCloses: the OS's SyncDir closes the directory it opened.
func TestSyncDirCloses(t *testing.T) {
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skipf("no /proc/self/fd: %v", err)
		}
		return len(ents)
	}
	dir := t.TempDir()
	before := fds()
	for range 50 {
		must(t, Default.SyncDir(dir))
	}
	if after := fds(); after > before+10 {
		t.Fatalf("%d descriptors open after 50 SyncDir calls, %d before", after, before)
	}
}
