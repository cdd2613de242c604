package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, fsys FS, name, data string, sync bool) File {
	t.Helper()
	f, err := fsys.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	must(t, err)
	n, err := f.Size()
	must(t, err)
	_, err = f.WriteAt([]byte(data), n)
	must(t, err)
	if sync {
		must(t, f.Sync())
	}
	return f
}

// contents returns every file of fsys under dir with its bytes.
func contents(t *testing.T, fsys FS, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := fsys.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return out
	}
	must(t, err)
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			out[p+"/"] = ""
			for k, v := range contents(t, fsys, p) {
				out[k] = v
			}
			continue
		}
		b, err := ReadFile(fsys, p)
		must(t, err)
		out[p] = string(b)
	}
	return out
}

func TestMemCrash(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, m *MemFS)
		want map[string]string
	}{
		{"unsynced bytes are dropped", func(t *testing.T, m *MemFS) {
			must(t, m.MkdirAll("/d", 0o755))
			must(t, m.SyncDir("/"))
			write(t, m, "/d/f", "durable", true)
			must(t, m.SyncDir("/d"))
			write(t, m, "/d/f", "+lost", false)
		}, map[string]string{"/d/": "", "/d/f": "durable"}},
		{"a synced file in an unsynced directory is lost", func(t *testing.T, m *MemFS) {
			must(t, m.MkdirAll("/d", 0o755))
			must(t, m.SyncDir("/"))
			write(t, m, "/d/f", "data", true)
		}, map[string]string{"/d/": ""}},
		{"a directory not synced in its parent is lost with its content", func(t *testing.T, m *MemFS) {
			must(t, m.MkdirAll("/d/e", 0o755))
			must(t, m.SyncDir("/d"))
			write(t, m, "/d/e/f", "data", true)
			must(t, m.SyncDir("/d/e"))
		}, map[string]string{}},
		{"rename without directory sync is undone", func(t *testing.T, m *MemFS) {
			write(t, m, "/f", "old", true)
			must(t, m.SyncDir("/"))
			write(t, m, "/f.tmp", "new", true)
			must(t, m.Rename("/f.tmp", "/f"))
		}, map[string]string{"/f": "old"}},
		{"rename with directory sync survives", func(t *testing.T, m *MemFS) {
			write(t, m, "/f", "old", true)
			must(t, m.SyncDir("/"))
			write(t, m, "/f.tmp", "new", true)
			must(t, m.Rename("/f.tmp", "/f"))
			must(t, m.SyncDir("/"))
		}, map[string]string{"/f": "new"}},
		{"remove with directory sync is durable", func(t *testing.T, m *MemFS) {
			write(t, m, "/f", "x", true)
			write(t, m, "/g", "y", true)
			must(t, m.SyncDir("/"))
			must(t, m.Remove("/f"))
			must(t, m.SyncDir("/"))
		}, map[string]string{"/g": "y"}},
		{"remove without directory sync is undone", func(t *testing.T, m *MemFS) {
			write(t, m, "/f", "x", true)
			must(t, m.SyncDir("/"))
			must(t, m.Remove("/f"))
		}, map[string]string{"/f": "x"}},
		// Entries belong to a directory, not to its path.
		{"a directory made again does not get the old one's entries back", func(t *testing.T, m *MemFS) {
			must(t, m.MkdirAll("/d/e", 0o755))
			write(t, m, "/d/e/f", "old", true)
			must(t, m.SyncDir("/d/e"))
			must(t, m.SyncDir("/d"))
			must(t, m.SyncDir("/"))
			must(t, m.Rename("/d", "/gone"))
			must(t, m.SyncDir("/"))
			must(t, m.RemoveAll("/gone"))
			must(t, m.MkdirAll("/d/e", 0o755))
			must(t, m.SyncDir("/d"))
			must(t, m.SyncDir("/"))
		}, map[string]string{"/d/": "", "/d/e/": ""}},
		{"a renamed directory keeps its entries", func(t *testing.T, m *MemFS) {
			must(t, m.MkdirAll("/d", 0o755))
			write(t, m, "/d/f", "data", true)
			must(t, m.SyncDir("/d"))
			must(t, m.Rename("/d", "/e"))
			must(t, m.SyncDir("/"))
		}, map[string]string{"/e/": "", "/e/f": "data"}},
		{"truncate after sync is undone", func(t *testing.T, m *MemFS) {
			f := write(t, m, "/f", "abcdef", true)
			must(t, m.SyncDir("/"))
			must(t, f.Truncate(2))
		}, map[string]string{"/f": "abcdef"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMem()
			tc.run(t, m)
			got := contents(t, m.Crash(), "/")
			if len(got) != len(tc.want) {
				t.Fatalf("after crash: %q, want %q", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("after crash: %q, want %q", got, tc.want)
				}
			}
		})
	}
}

func TestMemCrashedFSFails(t *testing.T) {
	m := NewMem()
	f := write(t, m, "/f", "x", true)
	lk, err := m.Lock("/lock")
	must(t, err)
	if _, err := m.Lock("/lock"); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("second Lock: %v, want EWOULDBLOCK", err)
	}
	after := m.Crash()
	if _, err := f.WriteAt([]byte("y"), 1); !errors.Is(err, ErrCrashed) {
		t.Fatalf("write after crash: %v", err)
	}
	if err := m.Remove("/f"); !errors.Is(err, ErrCrashed) {
		t.Fatalf("remove after crash: %v", err)
	}
	if lk.Close() == nil {
		t.Fatal("closing a lock of a crashed FS succeeded")
	}
	// The lock died with the process.
	lk2, err := after.Lock("/lock")
	must(t, err)
	must(t, lk2.Close())
}

func TestMemCrashTorn(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lens := map[int]bool{}
	for range 100 {
		m := NewMem()
		write(t, m, "/f", "synced", true)
		must(t, m.SyncDir("/"))
		write(t, m, "/f", "0123456789", false)
		b, err := ReadFile(m.CrashTorn(r), "/f")
		must(t, err)
		if !bytes.HasPrefix([]byte("synced0123456789"), b) || len(b) < 6 {
			t.Fatalf("torn crash kept %q", b)
		}
		lens[len(b)] = true
	}
	if !lens[6] || !lens[16] {
		t.Fatalf("torn crashes kept lengths %v; want all of the unsynced bytes sometimes, none sometimes", lens)
	}
	// Bytes rewritten in place are not an extension: only the synced ones
	// survive, torn or not.
	m := NewMem()
	f := write(t, m, "/f", "synced", true)
	must(t, m.SyncDir("/"))
	_, err := f.WriteAt([]byte("SYNCED+more"), 0)
	must(t, err)
	if b, err := ReadFile(m.CrashTorn(r), "/f"); err != nil || string(b) != "synced" {
		t.Fatalf("torn crash after a rewrite kept %q, %v", b, err)
	}
	if len(lens) < 5 {
		t.Fatalf("torn crashes kept only lengths %v", slices.Sorted(func(y func(int) bool) {
			for k := range lens {
				if !y(k) {
					return
				}
			}
		}))
	}
}

func TestMemFileSemantics(t *testing.T) {
	m := NewMem()
	if _, err := m.OpenFile("/nodir/f", os.O_CREATE|os.O_RDWR, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("create in a missing directory: %v", err)
	}
	f := write(t, m, "/f", "hello", false)
	if _, err := m.OpenFile("/f", os.O_CREATE|os.O_EXCL|os.O_RDWR, 0); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("O_EXCL on an existing file: %v", err)
	}
	b := make([]byte, 10)
	if n, err := f.ReadAt(b, 2); n != 3 || err != io.EOF {
		t.Fatalf("short ReadAt = %d, %v", n, err)
	}
	ro, err := m.OpenFile("/f", os.O_RDONLY, 0)
	must(t, err)
	if _, err := ro.WriteAt([]byte("x"), 0); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("write to a read-only file: %v", err)
	}
	must(t, ro.Close())
	if _, err := ro.ReadAt(b, 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	must(t, m.MkdirAll("/a/b", 0o755))
	write(t, m, "/a/b/c", "x", false)
	if err := m.Remove("/a"); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatalf("remove a non-empty directory: %v", err)
	}
	must(t, m.Rename("/a", "/z"))
	if got := contents(t, m, "/z"); got["/z/b/c"] != "x" {
		t.Fatalf("after renaming a directory: %q", got)
	}
	must(t, m.RemoveAll("/z"))
	if got := contents(t, m, "/"); len(got) != 1 {
		t.Fatalf("after RemoveAll: %q", got)
	}
}

func TestErrorFS(t *testing.T) {
	dir := t.TempDir()
	e := NewErrorFS(nil)
	e.Inject(Fault{Ops: OpWrite, Path: "*.log", After: 2, Times: 2, Err: syscall.ENOSPC, Partial: true})
	f, err := e.OpenFile(filepath.Join(dir, "a.log"), os.O_RDWR|os.O_CREATE, 0o644)
	must(t, err)
	g, err := e.OpenFile(filepath.Join(dir, "a.idx"), os.O_RDWR|os.O_CREATE, 0o644)
	must(t, err)
	var results []error
	for i := range 5 {
		_, err := f.WriteAt([]byte("abcd"), int64(4*i))
		results = append(results, err)
		if _, err := g.WriteAt([]byte("abcd"), int64(4*i)); err != nil {
			t.Fatalf("write to a file the fault does not match: %v", err)
		}
	}
	for i, err := range results {
		failed := i == 2 || i == 3
		if failed != (err != nil) || failed && !(errors.Is(err, syscall.ENOSPC) && IsNoSpace(err)) {
			t.Fatalf("write %d: %v (want failure: %v)", i, err, failed)
		}
	}
	if n := e.Fired(); n != 2 {
		t.Fatalf("Fired() = %d, want 2", n)
	}
	b, err := ReadFile(e, filepath.Join(dir, "a.log"))
	must(t, err)
	// Writes 0 and 1 whole, 2 and 3 half (partial), 4 whole at its offset.
	if want := "abcdabcdab\x00\x00ab\x00\x00abcd"; string(b) != want {
		t.Fatalf("file holds %q, want %q", b, want)
	}

	e.Inject(Fault{Ops: OpSync | OpSyncDir})
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync: %v, want EIO", err)
	}
	if err := e.SyncDir(dir); !errors.Is(err, syscall.EIO) {
		t.Fatalf("SyncDir: %v, want EIO", err)
	}
	e.Clear()
	must(t, f.Sync())
	must(t, e.SyncDir(dir))
	must(t, f.Close())
	must(t, g.Close())

	e.Inject(Fault{Path: filepath.Join(dir, "sub", "*")})
	if err := e.MkdirAll(filepath.Join(dir, "sub", "x"), 0o755); err == nil {
		t.Fatal("a whole-path pattern did not match")
	}
	must(t, e.MkdirAll(filepath.Join(dir, "other"), 0o755))
}
