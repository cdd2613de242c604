package pebble

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wail-cdc/wail/internal/store"
)

// Fail stop.
//
// A write the store cannot make durable must never be read back: the
// resolver would publish it, and a restart would take it away. Pebble
// applies a batch to its memtable before the WAL write and sync. When they
// fail, Pebble reports the error to the batch's SyncWait but the batch stays
// readable; the next WAL write panics inside the commit pipeline with its
// mutex held (later commits hang); a failed WAL rotation or MANIFEST write
// is fatal (Logger.Fatalf, also from background jobs, where nothing can
// recover it). None of that can be undone inside the process, so the store
// fails stop:
//
//  1. Every write-side filesystem operation goes through stopFS. Once the
//     store is open, the first error of one (ENOSPC, EIO, ...) fails the
//     store: Failure is set, Failed is closed, the error is logged once.
//     That operation, and every write-side operation after it, then blocks
//     for the rest of the process: Pebble never acts on a failed write (it
//     would panic, or go on from a state nobody can reason about), and
//     nothing more reaches the disk.
//  2. Every call checks for the failure first and returns it (it wraps
//     store.ErrStorage). Get checks again after its read and after waiting
//     for the row's WAL sync (durable.go), so it never returns a row whose
//     sync failed or never finished.
//  3. Calls that reach Pebble's write path run on a committer, a goroutine
//     of the store's (await): the caller waits for it or for the failure,
//     whichever comes first, so no caller hangs on a blocked Pebble. A panic
//     inside Pebble is recovered there (or in Get) and fails the store;
//     Fatalf panics (log.go) after failing it. A read error is a storage
//     failure too. Committers outlive a call (one per call in flight, each
//     exits after committerIdle without work, or at Close): a new goroutine
//     per call would grow its stack to Pebble's depth every time, which
//     cost a third of a synced commit's CPU. A committer does not wait for
//     the WAL sync: the syncer does (durable.go).
//  4. Close of a failed store leaves Pebble as it is (parts of it are
//     blocked for good) and returns the failure. The process must exit: the
//     next Open replays the WAL and finds exactly the writes whose sync
//     succeeded.
//
// Before the store is open, a failed write-side operation fails Open with
// its error (e.g. a disk too full to start on) and blocks, as after:
// Pebble's Open waits for the flush of the WAL it replayed (the writes of
// a process killed or stopped after a failure), and a failed flush is a
// background error that Pebble retries at once and for ever (Open spun,
// logging each retry), or, for a MANIFEST write, fatal (Fatalf: in a
// background job its panic ended the process). A failed background job
// whose error came from elsewhere (a read) fails Open too (background).
// Open then returns without waiting for pebble.Open (openPebble), which is
// left as it is (it keeps its lock): the process must exit, as it does
// when the store fails to open.

// failure is the store's fail-stop state.
type failure struct {
	log  *slog.Logger
	once sync.Once
	done chan struct{} // closed once err is set
	err  error

	mu      sync.Mutex
	armed   bool  // the store is open: filesystem errors fail it
	damage  error // a damaged file reported before (corrupt)
	openErr error // a write-side operation or a background job failed before the store was open

	openFailed chan struct{} // closed once openErr is set
}

func newFailure(log *slog.Logger) *failure {
	return &failure{log: log, done: make(chan struct{}), openFailed: make(chan struct{})}
}

// background handles Pebble's report of a failed background job (a flush
// or a compaction; in place of the default, which logs it): logged, and
// before the store is open it fails Open (see above).
func (f *failure) background(err error) {
	f.log.Error("background error: "+err.Error(), "component", "pebble")
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.armed {
		f.openFailLocked(err)
	}
}

// openFailLocked fails Open with err, unless it failed already. f.mu is
// held.
func (f *failure) openFailLocked(err error) {
	if f.openErr == nil {
		f.openErr = err
		close(f.openFailed)
	}
}

// openFailure is the error that failed Open (openFailLocked), or nil.
func (f *failure) openFailure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.openErr
}

// fail stops the store for good, the first time with cause; it returns the
// store's failure (the first cause, wrapped in store.ErrStorage).
func (f *failure) fail(cause error) error {
	f.once.Do(func() {
		f.err = fmt.Errorf("%w: %w", store.ErrStorage, cause)
		f.log.Error("the store stopped after a storage failure: it refuses every call from now on and wail must restart "+
			"(the restart recovers exactly the durable writes); if the disk is full, free space first",
			"err", cause)
		close(f.done)
	})
	return f.err
}

// failed returns the failure, or nil while the store works.
func (f *failure) failed() error {
	select {
	case <-f.done:
		return f.err
	default:
		return nil
	}
}

// arm marks the store open: from now on filesystem errors and damaged
// files fail it. A damaged file Pebble reported after Open last checked
// fails it now. It returns the error that failed Open, if one
// came after Open last checked: the store is not armed then.
func (f *failure) arm() error {
	f.mu.Lock()
	if f.openErr != nil {
		f.mu.Unlock()
		return f.openErr
	}
	f.armed = true
	damage := f.damage
	f.mu.Unlock()
	if damage != nil {
		f.fail(damage)
	}
	return nil
}

// check handles the result of a write-side filesystem operation: an error
// fails the store (before it is open: Open) and the operation never
// returns.
func (f *failure) check(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) { // else it names the operation and the file
		err = fmt.Errorf("%s %s: %w", op, path, err)
	}
	f.mu.Lock()
	armed := f.armed
	if !armed {
		f.openFailLocked(err)
	}
	f.mu.Unlock()
	if armed {
		f.fail(err)
	}
	select {} // fail stop: see above
}

// Failed is closed when the store stopped after a storage failure.
func (s *Store) Failed() <-chan struct{} { return s.failure.done }

// Failure is why the store stopped (it wraps store.ErrStorage), or nil
// while it works.
func (s *Store) Failure() error { return s.failure.failed() }

// await runs op on a committer and returns the error it answers on done
// (op answers once, or hands done on to the syncer, durable.go), or the
// store's failure if that comes first (op may then be blocked for good). A
// panic in op fails the store.
func (s *Store) await(op func(done chan<- error)) error {
	done := make(chan error, 1)
	job := func() {
		defer func() {
			if r := recover(); r != nil {
				done <- s.failure.fail(fmt.Errorf("pebble panicked: %v", r))
			}
		}()
		op(done)
	}
	select {
	case s.work <- job: // an idle committer took it
	default:
		s.committers.Add(1)
		s.running.Go(func() { s.committer(job) })
	}
	select {
	case err := <-done:
		return err
	case <-s.failure.done:
		select {
		case err := <-done: // finished too: its own answer
			return err
		default:
			return s.failure.err
		}
	}
}

// committerIdle is how long a committer waits for work before it exits
// (between one and two times that, so the timer is not reset per call).
const committerIdle = 10 * time.Second

// committer runs job, then the jobs of later calls, until it has had no
// work for s.idle (committerIdle) or the store is closed.
func (s *Store) committer(job func()) {
	defer s.committers.Add(-1)
	idle := time.NewTimer(s.idle)
	defer idle.Stop()
	job()
	worked := true // since the timer was last set
	for {
		select {
		case job := <-s.work:
			job()
			worked = true
		case <-idle.C:
			if !worked {
				return
			}
			worked = false
			idle.Reset(s.idle)
		case <-s.quit:
			return
		}
	}
}

// stopFS is the store's filesystem: write-side operations report their
// errors to the failure (see above); everything else passes through.
type stopFS struct {
	vfs.FS
	f *failure
}

func (fs *stopFS) Unwrap() vfs.FS { return fs.FS }

func (fs *stopFS) file(f vfs.File, name, op string, err error) (vfs.File, error) {
	if err = fs.f.check(op, name, err); err != nil {
		return nil, err
	}
	return &stopFile{File: f, name: name, f: fs.f}, nil
}

func (fs *stopFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	return fs.file(f, name, "create", err)
}

func (fs *stopFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, category, opts...)
	return fs.file(f, name, "open", err)
}

func (fs *stopFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	return fs.file(f, newname, "reuse", err)
}

// OpenDir opens a directory for syncing (after creating or renaming files).
func (fs *stopFS) OpenDir(name string) (vfs.File, error) {
	f, err := fs.FS.OpenDir(name)
	return fs.file(f, name, "open directory", err)
}

func (fs *stopFS) Rename(oldname, newname string) error {
	return fs.f.check("rename", oldname+" to "+newname, fs.FS.Rename(oldname, newname))
}

func (fs *stopFS) MkdirAll(dir string, perm os.FileMode) error {
	return fs.f.check("mkdir", dir, fs.FS.MkdirAll(dir, perm))
}

// stopFile is a file the store writes.
type stopFile struct {
	vfs.File
	name string
	f    *failure
}

func (f *stopFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	return n, f.f.check("write", f.name, err)
}

func (f *stopFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	return n, f.f.check("write", f.name, err)
}

func (f *stopFile) Sync() error { return f.f.check("sync", f.name, f.File.Sync()) }

func (f *stopFile) SyncData() error { return f.f.check("sync", f.name, f.File.SyncData()) }

func (f *stopFile) SyncTo(length int64) (bool, error) {
	full, err := f.File.SyncTo(length)
	return full, f.f.check("sync", f.name, err)
}

// Close reports write errors some filesystems only report on close.
func (f *stopFile) Close() error { return f.f.check("close", f.name, f.File.Close()) }

// damaged is what the store says of a file damaged at rest (a checksum
// that fails, a record that does not decode): Pebble reads no further
// than such a file, so the store cannot serve it and no setting helps.
// Only the first line of cause is kept: Pebble's errors carry their stack
// when formatted in full.
func damaged(what string, cause error) error {
	msg, _, _ := strings.Cut(cause.Error(), "\n")
	return fmt.Errorf("%s is damaged (%s): check the disk (dmesg, smartctl -a), then restore DATA_DIR from a backup "+
		"and run `wail table reconcile TABLE` for every table; the store cannot serve a damaged file", what, msg)
}

// corrupt handles Pebble's report of a damaged file (its DataCorruption
// event, in place of the default, a Fatalf with the error's stack, which
// in a background job ended the process): once the store is open it
// fails it; during Open it is kept for Open's error (openDamage).
func (f *failure) corrupt(info pebble.DataCorruptionInfo) {
	err := damaged(info.Path, info.Details)
	f.mu.Lock()
	armed := f.armed
	if !armed && f.damage == nil {
		f.damage = err
	}
	f.mu.Unlock()
	if armed {
		f.fail(err)
	}
}

// openDamage is the first damaged file Pebble reported before the store
// was open.
func (f *failure) openDamage() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.damage
}
