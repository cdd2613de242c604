package vfs

import (
	"errors"
	"io"
	"path/filepath"
)

// FilesystemSyncer is an FS that can make every write to a whole
// filesystem durable in one call: syncfs(2) on Linux, which costs about
// what one fsync does where one fsync per file costs that many times over.
// It is an optional capability: callers fall back to File.Sync.
type FilesystemSyncer interface {
	// OpenFilesystemSync opens a handle on the filesystem holding dir.
	// It fails with errors.ErrUnsupported where the operating system
	// cannot sync a filesystem and report its write-back errors.
	OpenFilesystemSync(dir string) (FilesystemSync, error)
}

// FilesystemSync is a handle from OpenFilesystemSync.
type FilesystemSync interface {
	// Sync makes durable every byte written and every directory entry
	// changed on the filesystem before the call, by any file and any
	// process. It fails when a write-back on that filesystem failed since
	// the handle was opened or since its last Sync (the error is reported
	// once): after a failure, nothing written before can be trusted.
	Sync() error
	io.Closer
}

// ErrFilesystemSyncUnsupported is returned by OpenFilesystemSync where it
// is not supported.
var ErrFilesystemSyncUnsupported = errors.ErrUnsupported

// OpenFilesystemSync implements FilesystemSyncer (fssync_linux.go; other
// systems fail with ErrFilesystemSyncUnsupported).
func (osFS) OpenFilesystemSync(dir string) (FilesystemSync, error) { return openSyncfs(dir) }

// OpenFilesystemSync implements FilesystemSyncer: Sync makes every current
// byte and directory entry of m durable.
func (m *MemFS) OpenFilesystemSync(dir string) (FilesystemSync, error) {
	if err := m.lock("open", dir); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	return memSync{m: m, dir: dir}, nil
}

type memSync struct {
	m   *MemFS
	dir string
}

func (s memSync) Sync() error {
	if err := s.m.lock("syncfs", s.dir); err != nil {
		return err
	}
	defer s.m.mu.Unlock()
	clear(s.m.durable)
	for p, n := range s.m.cur {
		if !n.dir {
			n.synced = append(n.synced[:0:0], n.data...)
		}
		if p == "/" {
			continue
		}
		d := s.m.cur[filepath.Dir(p)]
		if s.m.durable[d] == nil {
			s.m.durable[d] = map[string]*node{}
		}
		s.m.durable[d][filepath.Base(p)] = n
	}
	return nil
}

func (memSync) Close() error { return nil }
