package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// ErrCrashed is returned by every call on a MemFS after its Crash: the
// process that used it is dead.
var ErrCrashed = errors.New("vfs: filesystem crashed")

// node is a file or a directory of a MemFS.
type node struct {
	dir    bool
	data   []byte // a file's current bytes
	synced []byte // a file's bytes as of its last Sync
}

// MemFS is an in-memory FS that simulates power loss; see the package
// comment. It is safe for concurrent use.
type MemFS struct {
	mu      sync.Mutex
	crashed bool
	// cur maps a cleaned path to its node; durable is what survives a
	// crash: each directory's entries (name to node) as of its last sync.
	// Entries belong to the directory node, not to its path, as in an
	// inode: a renamed directory keeps them, one made again at the path
	// has none.
	cur     map[string]*node
	root    *node
	durable map[*node]map[string]*node
	locks   map[string]bool
}

// NewMem returns an empty MemFS whose root ("/", also "." for relative
// paths) exists durably.
func NewMem() *MemFS {
	root := &node{dir: true}
	return &MemFS{
		cur:     map[string]*node{"/": root},
		root:    root,
		durable: map[*node]map[string]*node{},
		locks:   map[string]bool{},
	}
}

func clean(name string) string {
	return filepath.Join("/", name)
}

func pathErr(op, name string, err error) error {
	return &os.PathError{Op: op, Path: name, Err: err}
}

// Crash simulates a power loss: it returns the filesystem as a reboot finds
// it (only fsync'd bytes, only entries of fsync'd directories) and makes
// every later call on m, and on files opened from it, fail with ErrCrashed.
func (m *MemFS) Crash() *MemFS { return m.crash(nil) }

// CrashTorn is Crash, except that each file whose current bytes extend its
// synced bytes keeps a random prefix of the extension, as a torn write
// leaves behind.
func (m *MemFS) CrashTorn(r *rand.Rand) *MemFS { return m.crash(r) }

func (m *MemFS) crash(r *rand.Rand) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.crashed = true
	after := NewMem()
	// Walk the durable entries from the root, each directory's by its node.
	var walk func(dir string, d, nd *node)
	walk = func(dir string, d, nd *node) {
		ents := m.durable[d]
		if len(ents) == 0 {
			return
		}
		nents := map[string]*node{}
		for _, name := range slices.Sorted(maps.Keys(ents)) {
			n, p := ents[name], filepath.Join(dir, name)
			nn := &node{dir: n.dir}
			if !n.dir {
				keep := n.synced
				if r != nil && len(n.data) > len(n.synced) && bytes.HasPrefix(n.data, n.synced) {
					keep = n.data[:len(n.synced)+r.IntN(len(n.data)-len(n.synced)+1)]
				}
				nn.data, nn.synced = slices.Clone(keep), slices.Clone(keep)
			}
			after.cur[p], nents[name] = nn, nn
			if n.dir {
				walk(p, n, nn)
			}
		}
		after.durable[nd] = nents
	}
	walk("/", m.root, after.root)
	return after
}

// lock takes m.mu unless m crashed.
func (m *MemFS) lock(op, name string) error {
	m.mu.Lock()
	if m.crashed {
		m.mu.Unlock()
		return pathErr(op, name, ErrCrashed)
	}
	return nil
}

// parentDir checks that the parent of p is an existing directory.
func (m *MemFS) parentDir(op, p string) error {
	if d := m.cur[filepath.Dir(p)]; d == nil || !d.dir {
		return pathErr(op, p, syscall.ENOENT)
	}
	return nil
}

// OpenFile implements FS.
func (m *MemFS) OpenFile(name string, flag int, _ os.FileMode) (File, error) {
	if err := m.lock("open", name); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	p := clean(name)
	n := m.cur[p]
	switch {
	case n != nil && n.dir:
		return nil, pathErr("open", name, syscall.EISDIR)
	case n != nil && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, pathErr("open", name, fs.ErrExist)
	case n == nil && flag&os.O_CREATE == 0:
		return nil, pathErr("open", name, fs.ErrNotExist)
	case n == nil:
		if err := m.parentDir("open", p); err != nil {
			return nil, err
		}
		n = &node{}
		m.cur[p] = n
	}
	acc := flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
	if flag&os.O_TRUNC != 0 && acc != os.O_RDONLY {
		n.data = nil
	}
	return &memFile{fs: m, n: n, name: name, read: acc != os.O_WRONLY, write: acc != os.O_RDONLY}, nil
}

// Remove implements FS.
func (m *MemFS) Remove(name string) error {
	if err := m.lock("remove", name); err != nil {
		return err
	}
	defer m.mu.Unlock()
	p := clean(name)
	n := m.cur[p]
	if n == nil {
		return pathErr("remove", name, fs.ErrNotExist)
	}
	if n.dir && len(m.children(p)) > 0 {
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	delete(m.cur, p)
	return nil
}

// RemoveAll implements FS.
func (m *MemFS) RemoveAll(name string) error {
	if err := m.lock("removeall", name); err != nil {
		return err
	}
	defer m.mu.Unlock()
	p := clean(name)
	for k := range m.cur {
		if k == p || strings.HasPrefix(k, p+"/") {
			delete(m.cur, k)
		}
	}
	return nil
}

// children returns the paths of the direct children of dir in cur.
func (m *MemFS) children(dir string) []string {
	var out []string
	for k := range m.cur {
		if k != "/" && filepath.Dir(k) == dir {
			out = append(out, k)
		}
	}
	return out
}

// Rename implements FS; it replaces a file, never a directory (as
// os.Rename, which refuses any existing directory with EEXIST).
func (m *MemFS) Rename(oldname, newname string) error {
	if err := m.lock("rename", oldname); err != nil {
		return err
	}
	defer m.mu.Unlock()
	o, n := clean(oldname), clean(newname)
	src := m.cur[o]
	if src == nil {
		return pathErr("rename", oldname, fs.ErrNotExist)
	}
	if err := m.parentDir("rename", n); err != nil {
		return err
	}
	if dst := m.cur[n]; dst != nil && dst.dir {
		return pathErr("rename", newname, syscall.EEXIST)
	}
	if o == n {
		return nil
	}
	for k, v := range m.cur {
		if strings.HasPrefix(k, o+"/") {
			delete(m.cur, k)
			m.cur[n+strings.TrimPrefix(k, o)] = v
		}
	}
	delete(m.cur, o)
	m.cur[n] = src
	return nil
}

// MkdirAll implements FS.
func (m *MemFS) MkdirAll(dir string, _ os.FileMode) error {
	if err := m.lock("mkdir", dir); err != nil {
		return err
	}
	defer m.mu.Unlock()
	p := clean(dir)
	var missing []string
	q := p
	for ; m.cur[q] == nil; q = filepath.Dir(q) {
		missing = append(missing, q)
	}
	if !m.cur[q].dir { // the closest existing one is a file
		return pathErr("mkdir", q, syscall.ENOTDIR)
	}
	for _, q := range slices.Backward(missing) {
		m.cur[q] = &node{dir: true}
	}
	return nil
}

// ReadDir implements FS.
func (m *MemFS) ReadDir(dir string) ([]os.DirEntry, error) {
	if err := m.lock("readdir", dir); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	p := clean(dir)
	if n := m.cur[p]; n == nil || !n.dir {
		return nil, pathErr("readdir", dir, fs.ErrNotExist)
	}
	var out []os.DirEntry
	for _, k := range m.children(p) {
		n := m.cur[k]
		out = append(out, dirEntry{name: filepath.Base(k), dir: n.dir, size: int64(len(n.data))})
	}
	slices.SortFunc(out, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// SyncDir implements FS: dir's current entries become durable.
func (m *MemFS) SyncDir(dir string) error {
	if err := m.lock("syncdir", dir); err != nil {
		return err
	}
	defer m.mu.Unlock()
	p := clean(dir)
	if n := m.cur[p]; n == nil || !n.dir {
		return pathErr("syncdir", dir, fs.ErrNotExist)
	}
	ents := map[string]*node{}
	for _, k := range m.children(p) {
		ents[filepath.Base(k)] = m.cur[k]
	}
	m.durable[m.cur[p]] = ents
	return nil
}

// Lock implements FS.
func (m *MemFS) Lock(name string) (io.Closer, error) {
	f, err := m.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := clean(name)
	if m.locks[p] {
		return nil, pathErr("lock", name, syscall.EWOULDBLOCK)
	}
	m.locks[p] = true
	return &memLock{m: m, p: p, f: f}, nil
}

type memLock struct {
	m    *MemFS
	p    string
	f    File
	once sync.Once
}

func (l *memLock) Close() error {
	l.once.Do(func() {
		l.m.mu.Lock()
		delete(l.m.locks, l.p)
		l.m.mu.Unlock()
	})
	return l.f.Close()
}

// memFile is an open file of a MemFS.
type memFile struct {
	fs          *MemFS
	n           *node
	name        string
	read, write bool
	closed      bool
}

func (f *memFile) lock(op string) error {
	if err := f.fs.lock(op, f.name); err != nil {
		return err
	}
	if f.closed {
		f.fs.mu.Unlock()
		return pathErr(op, f.name, os.ErrClosed)
	}
	return nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.lock("read"); err != nil {
		return 0, err
	}
	defer f.fs.mu.Unlock()
	if !f.read {
		return 0, pathErr("read", f.name, syscall.EBADF)
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.lock("write"); err != nil {
		return 0, err
	}
	defer f.fs.mu.Unlock()
	if !f.write {
		return 0, pathErr("write", f.name, syscall.EBADF)
	}
	if len(p) == 0 {
		return 0, nil // a write of nothing changes nothing, also beyond the end (pwrite)
	}
	if end := off + int64(len(p)); end > int64(len(f.n.data)) {
		f.n.data = append(f.n.data, make([]byte, end-int64(len(f.n.data)))...)
	}
	copy(f.n.data[off:], p)
	return len(p), nil
}

func (f *memFile) Truncate(size int64) error {
	if err := f.lock("truncate"); err != nil {
		return err
	}
	defer f.fs.mu.Unlock()
	if !f.write {
		return pathErr("truncate", f.name, syscall.EBADF)
	}
	if size <= int64(len(f.n.data)) {
		f.n.data = f.n.data[:size:size]
	} else {
		f.n.data = append(f.n.data, make([]byte, size-int64(len(f.n.data)))...)
	}
	return nil
}

func (f *memFile) Sync() error {
	if err := f.lock("sync"); err != nil {
		return err
	}
	defer f.fs.mu.Unlock()
	f.n.synced = slices.Clone(f.n.data)
	return nil
}

func (f *memFile) Size() (int64, error) {
	if err := f.lock("size"); err != nil {
		return 0, err
	}
	defer f.fs.mu.Unlock()
	return int64(len(f.n.data)), nil
}

func (f *memFile) Close() error {
	if err := f.lock("close"); err != nil {
		return err
	}
	defer f.fs.mu.Unlock()
	f.closed = true
	return nil
}
