package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// File is an open file. ReadAt and WriteAt may be called concurrently with
// each other (as on *os.File); the rest are not synchronized.
type File interface {
	io.ReaderAt
	io.WriterAt
	// Truncate changes the size of the file.
	Truncate(size int64) error
	// Sync makes the file's bytes durable (fsync).
	Sync() error
	// Size returns the current size.
	Size() (int64, error)
	Close() error
}

// FS is the filesystem a log works on.
type FS interface {
	// OpenFile opens a file like os.OpenFile (O_RDONLY, O_WRONLY, O_RDWR,
	// O_CREATE, O_EXCL, O_TRUNC; not O_APPEND).
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Remove(name string) error
	RemoveAll(name string) error
	Rename(oldname, newname string) error
	MkdirAll(dir string, perm os.FileMode) error
	// ReadDir returns the entries of dir sorted by name.
	ReadDir(dir string) ([]os.DirEntry, error)
	// SyncDir makes dir's entries durable (fsync of the directory).
	SyncDir(dir string) error
	// Lock takes an exclusive lock on the file name (created if missing),
	// held until the returned Closer is closed or the process dies. It
	// fails at once when another holder has it.
	Lock(name string) (io.Closer, error)
}

// Default is the operating system's filesystem.
var Default FS = osFS{}

// ReadFile reads a whole file.
func ReadFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return nil, err
	}
	return b, nil
}

// WriteFile creates or truncates name and writes data, without fsync.
func WriteFile(fsys FS, name string, data []byte, perm os.FileMode) error {
	f, err := fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	return closing(f, err)
}

// closing closes c and returns err, or the error of Close when err is nil.
func closing(c io.Closer, err error) error {
	if cerr := c.Close(); err == nil {
		return cerr
	}
	return err
}

// IsNoSpace reports whether err says the device is full (ENOSPC or EDQUOT).
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

type osFS struct{}

type osFile struct{ *os.File }

func (f osFile) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Remove(name string) error                    { return os.Remove(name) }
func (osFS) RemoveAll(name string) error                 { return os.RemoveAll(name) }
func (osFS) Rename(o, n string) error                    { return os.Rename(o, n) }
func (osFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }
func (osFS) ReadDir(dir string) ([]os.DirEntry, error)   { return os.ReadDir(dir) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return closing(d, d.Sync())
}

func (osFS) Lock(name string) (io.Closer, error) { return lockFile(name) }

// dirEntry is an os.DirEntry of the in-memory FS.
type dirEntry struct {
	name string
	dir  bool
	size int64
}

func (e dirEntry) Name() string { return e.name }
func (e dirEntry) IsDir() bool  { return e.dir }
func (e dirEntry) Type() fs.FileMode {
	if e.dir {
		return fs.ModeDir
	}
	return 0
}
func (e dirEntry) Info() (fs.FileInfo, error) { return e, nil }
func (e dirEntry) Size() int64                { return e.size }
func (e dirEntry) Mode() fs.FileMode          { return e.Type() | 0o644 }
func (e dirEntry) ModTime() time.Time         { return time.Time{} }
func (e dirEntry) Sys() any                   { return nil }
