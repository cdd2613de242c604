package vfs

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Op is a kind of file operation; Ops combine with |.
type Op uint32

// Operation kinds an ErrorFS can fail.
const (
	OpOpen     Op = 1 << iota // OpenFile
	OpRead                    // File.ReadAt
	OpWrite                   // File.WriteAt
	OpTruncate                // File.Truncate
	OpSync                    // File.Sync
	OpSize                    // File.Size
	OpClose                   // File.Close (the file is closed anyway)
	OpRemove                  // Remove, RemoveAll
	OpRename                  // Rename (the path is the old name)
	OpMkdir                   // MkdirAll
	OpReadDir                 // ReadDir
	OpSyncDir                 // SyncDir
	OpLock                    // Lock

	// OpAll is every operation.
	OpAll Op = 1<<iota - 1
	// OpMutate is every operation that changes the disk.
	OpMutate = OpOpen | OpWrite | OpTruncate | OpSync | OpRemove | OpRename | OpMkdir | OpSyncDir
)

var opNames = []string{"open", "read", "write", "truncate", "sync", "size", "close", "remove", "rename",
	"mkdir", "readdir", "syncdir", "lock"}

func (o Op) String() string {
	var names []string
	for i, n := range opNames {
		if o&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, "|")
}

// Fault says which calls an ErrorFS fails.
type Fault struct {
	// Ops are the operation kinds it applies to (0: every kind).
	Ops Op
	// Path is a filepath.Match pattern on the file's base name ("*.log"), or
	// on the whole path when it contains a separator; "" matches any path.
	Path string
	// After lets this many matching calls pass before the first failure.
	After int
	// Times fails at most this many calls (0: every one until Clear).
	Times int
	// Err is the error (default syscall.EIO), returned inside an
	// *os.PathError so that errors.Is(err, syscall.ENOSPC) holds.
	Err error
	// Partial makes a failing WriteAt first write half of its bytes, as a
	// short write on a full disk does.
	Partial bool
	// Flip makes a matching ReadAt succeed with one bit of every 64th byte
	// it read flipped instead of failing (bit rot, a flaky controller:
	// damage the reader must find by checksum). Err is not used.
	Flip bool
	// Bytes, when set, makes only a ReadAt or WriteAt whose bytes overlap
	// [Bytes[0], Bytes[1]) of the file match (a bad sector): other calls
	// and other ranges pass.
	Bytes [2]int64

	seen, fired int
}

// covers reports whether a call on the n bytes at off (n < 0: not a
// ReadAt or WriteAt) is within the fault's Bytes.
func (f *Fault) covers(off, n int64) bool {
	if f.Bytes == [2]int64{} {
		return true
	}
	return n >= 0 && off < f.Bytes[1] && off+n > f.Bytes[0]
}

func (f *Fault) match(op Op, path string) bool {
	if f.Ops != 0 && f.Ops&op == 0 {
		return false
	}
	if f.Path == "" {
		return true
	}
	subject := filepath.Base(path)
	if strings.ContainsRune(f.Path, filepath.Separator) {
		subject = path
	}
	ok, _ := filepath.Match(f.Path, subject)
	return ok
}

// ErrorFS wraps an FS and fails the calls its faults match. It is safe for
// concurrent use; faults can be injected and cleared at any time.
type ErrorFS struct {
	fs     FS
	mu     sync.Mutex
	faults []*Fault
	fired  int
}

// NewErrorFS wraps fs (nil: Default) with no fault injected.
func NewErrorFS(fs FS) *ErrorFS {
	if fs == nil {
		fs = Default
	}
	return &ErrorFS{fs: fs}
}

// Inject adds a fault; it applies to calls made from now on.
func (e *ErrorFS) Inject(f Fault) {
	if f.Err == nil {
		f.Err = syscall.EIO
	}
	e.mu.Lock()
	e.faults = append(e.faults, &f)
	e.mu.Unlock()
}

// Clear removes every fault: the disk works again.
func (e *ErrorFS) Clear() {
	e.mu.Lock()
	e.faults = nil
	e.mu.Unlock()
}

// Fired returns how many calls failed because of a fault so far.
func (e *ErrorFS) Fired() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fired
}

// check returns the fault that fails this call, or nil.
func (e *ErrorFS) check(op Op, path string) *Fault {
	return e.checkAt(op, path, 0, -1)
}

// checkAt returns the fault that fails this call on the n bytes at off
// (n < 0: a call on no bytes), or nil.
func (e *ErrorFS) checkAt(op Op, path string, off, n int64) *Fault {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.faults {
		if !f.match(op, path) || !f.covers(off, n) {
			continue
		}
		f.seen++
		if f.seen <= f.After || (f.Times > 0 && f.fired >= f.Times) {
			continue
		}
		f.fired++
		e.fired++
		return f
	}
	return nil
}

func (e *ErrorFS) fail(op Op, path string) error {
	if f := e.check(op, path); f != nil {
		return &os.PathError{Op: op.String(), Path: path, Err: f.Err}
	}
	return nil
}

// OpenFile implements FS.
func (e *ErrorFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if err := e.fail(OpOpen, name); err != nil {
		return nil, err
	}
	f, err := e.fs.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &errorFile{e: e, f: f, name: name}, nil
}

// Remove implements FS.
func (e *ErrorFS) Remove(name string) error {
	if err := e.fail(OpRemove, name); err != nil {
		return err
	}
	return e.fs.Remove(name)
}

// RemoveAll implements FS.
func (e *ErrorFS) RemoveAll(name string) error {
	if err := e.fail(OpRemove, name); err != nil {
		return err
	}
	return e.fs.RemoveAll(name)
}

// Rename implements FS.
func (e *ErrorFS) Rename(oldname, newname string) error {
	if err := e.fail(OpRename, oldname); err != nil {
		return err
	}
	return e.fs.Rename(oldname, newname)
}

// MkdirAll implements FS.
func (e *ErrorFS) MkdirAll(dir string, perm os.FileMode) error {
	if err := e.fail(OpMkdir, dir); err != nil {
		return err
	}
	return e.fs.MkdirAll(dir, perm)
}

// ReadDir implements FS.
func (e *ErrorFS) ReadDir(dir string) ([]os.DirEntry, error) {
	if err := e.fail(OpReadDir, dir); err != nil {
		return nil, err
	}
	return e.fs.ReadDir(dir)
}

// SyncDir implements FS.
func (e *ErrorFS) SyncDir(dir string) error {
	if err := e.fail(OpSyncDir, dir); err != nil {
		return err
	}
	return e.fs.SyncDir(dir)
}

// Lock implements FS.
func (e *ErrorFS) Lock(name string) (io.Closer, error) {
	if err := e.fail(OpLock, name); err != nil {
		return nil, err
	}
	return e.fs.Lock(name)
}

type errorFile struct {
	e    *ErrorFS
	f    File
	name string
}

func (f *errorFile) ReadAt(p []byte, off int64) (int, error) {
	ft := f.e.checkAt(OpRead, f.name, off, int64(len(p)))
	if ft != nil && !ft.Flip {
		return 0, &os.PathError{Op: OpRead.String(), Path: f.name, Err: ft.Err}
	}
	n, err := f.f.ReadAt(p, off)
	if ft != nil {
		for i := 0; i < n; i += 64 {
			p[i] ^= 0x10
		}
	}
	return n, err
}

func (f *errorFile) WriteAt(p []byte, off int64) (int, error) {
	if ft := f.e.checkAt(OpWrite, f.name, off, int64(len(p))); ft != nil {
		n := 0
		if ft.Partial {
			n, _ = f.f.WriteAt(p[:len(p)/2], off)
		}
		return n, &os.PathError{Op: OpWrite.String(), Path: f.name, Err: ft.Err}
	}
	return f.f.WriteAt(p, off)
}

func (f *errorFile) Truncate(size int64) error {
	if err := f.e.fail(OpTruncate, f.name); err != nil {
		return err
	}
	return f.f.Truncate(size)
}

func (f *errorFile) Sync() error {
	if err := f.e.fail(OpSync, f.name); err != nil {
		return err
	}
	return f.f.Sync()
}

func (f *errorFile) Size() (int64, error) {
	if err := f.e.fail(OpSize, f.name); err != nil {
		return 0, err
	}
	return f.f.Size()
}

func (f *errorFile) Close() error {
	err := f.f.Close()
	if ferr := f.e.fail(OpClose, f.name); ferr != nil {
		return ferr
	}
	return err
}
