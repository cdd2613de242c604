package embedded

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/vfs"
)

// hookFS wraps an FS and lets a test watch, block or fail the reads,
// writes and fsyncs of its files: hook runs before each (operation, path,
// offset, length) and returns the error the call fails with, if any. Set
// hook before the FS is used; it must be safe for concurrent use.
type hookFS struct {
	vfs.FS
	hook func(op vfs.Op, name string, off int64, n int) error
}

type hookFile struct {
	vfs.File
	h    *hookFS
	name string
}

func (h *hookFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := h.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &hookFile{File: f, h: h, name: name}, nil
}

func (f *hookFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.h.hook(vfs.OpRead, f.name, off, len(p)); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *hookFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.h.hook(vfs.OpWrite, f.name, off, len(p)); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *hookFile) Sync() error {
	if err := f.h.hook(vfs.OpSync, f.name, 0, 0); err != nil {
		return err
	}
	return f.File.Sync()
}

// gate blocks the first matching call once armed, until released: a test
// holds the log's writer (or a reader) inside a file operation with it.
type gate struct {
	mu      sync.Mutex
	match   func(op vfs.Op, name string) bool
	entered chan struct{} // receives when a call is held
	release chan struct{} // closed to let it go
}

func newGate() *gate { return &gate{entered: make(chan struct{}, 1), release: make(chan struct{})} }

// arm makes the next call for which match is true block.
func (g *gate) arm(match func(op vfs.Op, name string) bool) {
	g.mu.Lock()
	g.match = match
	g.mu.Unlock()
}

// hold is a hookFS hook (or part of one).
func (g *gate) hold(op vfs.Op, name string) {
	g.mu.Lock()
	m := g.match
	if m != nil && m(op, name) {
		g.match = nil
	} else {
		m = nil
	}
	g.mu.Unlock()
	if m != nil {
		g.entered <- struct{}{}
		<-g.release
	}
}

// await waits until a call is held.
func (g *gate) await(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no file operation reached the gate")
	}
}

// isLog matches operations on segment files.
func isLog(op vfs.Op) func(vfs.Op, string) bool {
	return func(o vfs.Op, name string) bool { return o == op && strings.HasSuffix(name, logExt) }
}

// waitFor polls cond until it holds (failing the test after a long while).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// queued returns how many appends wait in a partition's queue.
func queued(p *partition) int {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	return len(p.queue)
}

// writeFile writes a whole file durably (file and directory entry) on fsys.
func writeFile(t testing.TB, fsys vfs.FS, path string, data []byte) {
	t.Helper()
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	noErr(t, err)
	_, err = f.WriteAt(data, 0)
	noErr(t, err)
	noErr(t, f.Sync())
	noErr(t, f.Close())
	noErr(t, fsys.SyncDir(filepath.Dir(path)))
}

// readFile reads a whole file of fsys.
func readFile(t testing.TB, fsys vfs.FS, path string) []byte {
	t.Helper()
	b, err := vfs.ReadFile(fsys, path)
	noErr(t, err)
	return b
}

// countReads returns a MemFS that counts the bytes read from segment
// files.
func countReads() (*hookFS, *atomic.Int64) {
	read := &atomic.Int64{}
	return &hookFS{FS: vfs.NewMem(), hook: func(op vfs.Op, name string, _ int64, n int) error {
		if op == vfs.OpRead && strings.HasSuffix(name, logExt) {
			read.Add(int64(n))
		}
		return nil
	}}, read
}
