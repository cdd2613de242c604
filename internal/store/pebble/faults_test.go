package pebble

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/storetest"
)

// Storage faults, injected through Pebble's vfs: the WAL write or sync
// fails (ENOSPC, EIO) or blocks, an sstable or the MANIFEST cannot be
// written. The filesystem underneath is a crashable MemFS, so a "restart"
// keeps exactly what was synced (CrashClone), as a machine crash would.

// fault is an errorfs.Injector the test arms and disarms: while armed,
// operations that match fail with err, or, when hold is set, wait until
// hold is closed and then fail with err (nil: succeed).
type fault struct {
	mu    sync.Mutex
	match func(errorfs.Op) bool
	err   error
	hold  chan struct{}
	gate  chan struct{} // each matching operation waits for a pass
	// fired counts the operations the fault hit; held is signalled (without
	// blocking) whenever an operation starts waiting on hold.
	fired atomic.Int64
	held  chan struct{}
}

func newFault() *fault { return &fault{held: make(chan struct{}, 1)} }

func (f *fault) String() string { return "test fault" }

func (f *fault) MaybeError(op errorfs.Op) error {
	f.mu.Lock()
	match, err, hold, gate := f.match, f.err, f.hold, f.gate
	f.mu.Unlock()
	if match == nil || !match(op) {
		return nil
	}
	f.fired.Add(1)
	if hold != nil || gate != nil {
		select {
		case f.held <- struct{}{}:
		default:
		}
		if gate != nil {
			<-gate // a pass, or release closed it
		} else {
			<-hold
		}
		f.mu.Lock()
		err = f.err
		f.mu.Unlock()
	}
	return err
}

// arm makes matching operations fail with err.
func (f *fault) arm(match func(errorfs.Op) bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.match, f.err, f.hold, f.gate = match, err, nil, nil
}

// holdOps makes matching operations wait; release lets them go on.
func (f *fault) holdOps(match func(errorfs.Op) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.match, f.err, f.hold, f.gate = match, nil, make(chan struct{}), nil
	select { // forget an earlier hold's signal
	case <-f.held:
	default:
	}
}

// gateOps makes matching operations wait, each until pass lets it through
// (or release ends the gate).
func (f *fault) gateOps(match func(errorfs.Op) bool) {
	f.holdOps(match)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hold, f.gate = nil, make(chan struct{})
}

// pass lets one matching operation through the gate: one waiting, or the
// next one. It returns once one took the pass.
func (f *fault) pass() {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	gate <- struct{}{}
}

// release ends a hold: the held operations (and later matching ones) fail
// with err, or succeed when err is nil.
func (f *fault) release(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
	if f.hold != nil {
		close(f.hold)
		f.hold = nil
	}
	if f.gate != nil {
		close(f.gate)
		f.gate = nil
	}
	if err == nil {
		f.match = nil
	}
}

// Matchers of the files Pebble writes.
func isWAL(op errorfs.Op) bool      { return strings.HasSuffix(op.Path, ".log") }
func isTable(op errorfs.Op) bool    { return strings.HasSuffix(op.Path, ".sst") }
func isManifest(op errorfs.Op) bool { return strings.Contains(op.Path, "MANIFEST") }

func isWrite(op errorfs.Op) bool {
	return op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt
}

func isSync(op errorfs.Op) bool {
	switch op.Kind {
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		return true
	}
	return false
}

func both(a, b func(errorfs.Op) bool) func(errorfs.Op) bool {
	return func(op errorfs.Op) bool { return a(op) && b(op) }
}

// faultyStore is a store on a crashable in-memory filesystem with a fault
// in front of it.
type faultyStore struct {
	*Store
	mem   *vfs.MemFS
	fault *fault
}

func openFaulty(t *testing.T, opts Options) *faultyStore {
	t.Helper()
	return openFaultyOn(t, vfs.NewCrashableMem(), opts)
}

func openFaultyOn(t *testing.T, mem *vfs.MemFS, opts Options) *faultyStore {
	t.Helper()
	f := newFault()
	opts.FS = errorfs.Wrap(mem, f)
	s := openT(t, "store", opts)
	t.Cleanup(func() { _ = s.Close() })
	t.Cleanup(func() { f.release(nil) }) // runs first: nothing stays held, and a working store closes
	if err := s.CreateTable(t.Context(), "t"); err != nil {
		t.Fatal(err)
	}
	return &faultyStore{Store: s, mem: mem, fault: f}
}

// HoldSync and ReleaseSync hold the WAL sync for storetest (SyncHolder).
func (fs *faultyStore) HoldSync() <-chan struct{} {
	fs.fault.holdOps(both(isWAL, isSync))
	return fs.fault.held
}

func (fs *faultyStore) ReleaseSync(fail bool) {
	if fail {
		fs.fault.release(syscall.EIO)
		return
	}
	fs.fault.release(nil)
}

// TestSuiteFaultFS runs the suite on a fault-injecting in-memory
// filesystem, so it also holds and fails the WAL sync (storetest.SyncHolder):
// DurableReads checks that a Get never returns a write whose sync is held or
// failed (kills mutation S3 of issue 19: Get not waiting for its batch's WAL
// sync).
func TestSuiteFaultFS(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openFaulty(t, Options{}) })
}

// restart is a machine crash and a restart: a new store on what was synced.
func (fs *faultyStore) restart(t *testing.T) *Store {
	t.Helper()
	s := openT(t, "store", Options{FS: fs.mem.CrashClone(vfs.CrashCloneCfg{})})
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mut(key string, v uint64) store.Mutation {
	return store.Mutation{Key: []byte(key), Value: fmt.Appendf(nil, "%s@%d", key, v), Version: v}
}

func mustApply(t *testing.T, s *Store, muts ...store.Mutation) []store.Outcome {
	t.Helper()
	out, err := s.Apply(t.Context(), "t", muts)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return out
}

// within fails the test unless fn returns within d: a store call must never
// hang, whatever the disk does.
func within[T any](t *testing.T, d time.Duration, what string, fn func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- fn() }()
	select {
	case v := <-done:
		return v
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
		panic("unreachable")
	}
}

// noPanic runs fn and turns a panic that escapes the store into an error.
func noPanic(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic escaped the store: %v", r)
		}
	}()
	return fn()
}

// TestWALFailureNeverServed: a write whose WAL write or sync fails is
// answered with an error, is never returned by Get, and is gone after a
// crash; the write before it survives. The store fails stop: every later
// call returns store.ErrStorage.
func TestWALFailureNeverServed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		match func(errorfs.Op) bool
		err   error
	}{
		{"write_enospc", both(isWAL, isWrite), syscall.ENOSPC},
		{"write_eio", both(isWAL, isWrite), syscall.EIO},
		{"sync_enospc", both(isWAL, isSync), syscall.ENOSPC},
		{"sync_eio", both(isWAL, isSync), syscall.EIO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := openFaulty(t, Options{})
			mustApply(t, fs.Store, mut("k", 1))
			fs.fault.arm(tc.match, tc.err)
			err := within(t, 10*time.Second, "Apply", func() error {
				return noPanic(func() error { _, err := fs.Apply(t.Context(), "t", []store.Mutation{mut("k", 2)}); return err })
			})
			if !errors.Is(err, store.ErrStorage) {
				t.Errorf("Apply with a failing WAL: %v, want store.ErrStorage", err)
			}
			if fs.fault.fired.Load() == 0 {
				t.Fatal("the fault never fired")
			}
			row, found, err := fs.Get(t.Context(), "t", []byte("k"), 0)
			if err == nil && found && row.Version == 2 {
				t.Fatal("Get returned version 2, whose WAL write failed (a crash takes it away)")
			}
			if !errors.Is(err, store.ErrStorage) {
				t.Errorf("Get after the failure: %+v found=%v err=%v, want store.ErrStorage", row, found, err)
			}
			checkStopped(t, fs.Store)
			after := fs.restart(t)
			got, found, err := after.Get(t.Context(), "t", []byte("k"), 0)
			if err != nil || !found || got.Version != 1 {
				t.Errorf("after the crash: %+v found=%v err=%v, want version 1", got, found, err)
			}
		})
	}
}

// checkStopped: every call of a failed store returns store.ErrStorage at
// once, and Close returns.
func checkStopped(t *testing.T, s *Store) {
	t.Helper()
	ctx := t.Context()
	checks := map[string]func() error{
		"apply": func() error { _, err := s.Apply(ctx, "t", []store.Mutation{mut("other", 9)}); return err },
		"get":   func() error { _, _, err := s.Get(ctx, "t", []byte("other"), 0); return err },
		"getmany": func() error {
			_, err := s.GetMany(ctx, "t", [][]byte{[]byte("other"), []byte("k")}, 0)
			return err
		},
		"create": func() error { return s.CreateTable(ctx, "u") },
		"save":   func() error { return s.SaveTable(ctx, store.Table{Name: "u"}) },
		"tables": func() error { _, err := s.Tables(ctx); return err },
		"scan":   func() error { _, err := s.ScanKeys(ctx, "t", nil, 10); return err },
		"swap":   func() error { _, _, err := s.SwapTable(ctx, "u", nil, []byte("spec")); return err },
		"drop":   func() error { return s.DropTable(ctx, "t") },
	}
	for op, fn := range checks {
		err := within(t, 5*time.Second, op, func() error { return noPanic(fn) })
		if !errors.Is(err, store.ErrStorage) {
			t.Errorf("%s after the failure: %v, want store.ErrStorage", op, err)
		}
		if op == "apply" && !errors.Is(err, store.ErrNotApplied) {
			t.Errorf("apply after the failure: %v, want store.ErrNotApplied (it never started)", err)
		}
	}
	if err := within(t, 5*time.Second, "Close", func() error { return noPanic(s.Close) }); !errors.Is(err, store.ErrStorage) {
		t.Errorf("Close after the failure: %v, want store.ErrStorage", err)
	}
}

// TestStaleWriteWaitsForTheWinner: a write that loses to a version whose
// WAL sync is still running must not report "not applied, superseded" until
// that version is durable: the proxy answers superseded writes as
// acknowledged, and a crash could still take the winner away.
func TestStaleWriteWaitsForTheWinner(t *testing.T) {
	for _, syncErr := range []error{nil, syscall.ENOSPC} {
		t.Run(fmt.Sprint("sync_", syncErr), func(t *testing.T) {
			t.Parallel()
			fs := openFaulty(t, Options{})
			mustApply(t, fs.Store, mut("k", 1))
			fs.fault.holdOps(both(isWAL, isSync))
			winner := make(chan error, 1)
			go func() {
				winner <- noPanic(func() error { _, err := fs.Apply(context.Background(), "t", []store.Mutation{mut("k", 5)}); return err })
			}()
			<-fs.fault.held
			type result struct {
				out []store.Outcome
				err error
			}
			loser := make(chan result, 1)
			go func() {
				var r result
				r.err = noPanic(func() error {
					var err error
					r.out, err = fs.Apply(context.Background(), "t", []store.Mutation{mut("k", 3)})
					return err
				})
				loser <- r
			}()
			select {
			case r := <-loser:
				t.Fatalf("the stale write returned %+v, %v while the winner's WAL sync is held", r.out, r.err)
			case <-time.After(100 * time.Millisecond):
			}
			fs.fault.release(syncErr)
			r := within(t, 10*time.Second, "the stale write", func() result { return <-loser })
			werr := within(t, 10*time.Second, "the winner", func() error { return <-winner })
			if syncErr == nil {
				if werr != nil || r.err != nil || r.out[0].Applied || r.out[0].Current != 5 {
					t.Fatalf("winner %v; stale write %+v, %v; want not applied, Current 5", werr, r.out, r.err)
				}
				return
			}
			if !errors.Is(werr, store.ErrStorage) || !errors.Is(r.err, store.ErrStorage) {
				t.Fatalf("winner %v; stale write %+v, %v; want both store.ErrStorage", werr, r.out, r.err)
			}
		})
	}
}

// TestPanicInCommit: a panic inside the commit's critical section (Pebble
// panics there on WAL errors) is recovered inside the store, with its
// locks released, and fails the store stop.
func TestPanicInCommit(t *testing.T) {
	fs := openFaulty(t, Options{})
	mustApply(t, fs.Store, mut("k", 1))
	var boom atomic.Bool
	fs.testHookCheck = func() {
		if boom.Load() {
			panic("injected panic in the commit")
		}
	}
	boom.Store(true)
	err := within(t, 10*time.Second, "Apply", func() error {
		return noPanic(func() error { _, err := fs.Apply(t.Context(), "t", []store.Mutation{mut("k", 2)}); return err })
	})
	if !errors.Is(err, store.ErrStorage) || !strings.Contains(err.Error(), "injected panic") {
		t.Fatalf("Apply that panicked: %v, want store.ErrStorage naming the panic", err)
	}
	checkStopped(t, fs.Store)
}

// TestConcurrentWritersOnAFailingWAL: writers keep writing while the WAL
// starts failing; every call returns (no hang, no panic out of the store),
// the ones after the failure with store.ErrStorage, and after a crash only
// acknowledged writes (and perhaps some that failed) are there, never a
// version above an acknowledged write that a Get returned but that was
// then lost.
func TestConcurrentWritersOnAFailingWAL(t *testing.T) {
	for _, tc := range []struct {
		name  string
		match func(errorfs.Op) bool
	}{
		{"write", both(isWAL, isWrite)},
		{"sync", both(isWAL, isSync)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := openFaulty(t, Options{})
			const writers = 16
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				acked   = map[string]uint64{} // key -> highest acknowledged version
				seen    = map[string]uint64{} // key -> highest version a Get returned
				storage atomic.Int64
			)
			var armOnce sync.Once
			var writes atomic.Int64
			for w := range writers {
				wg.Go(func() {
					key := fmt.Sprintf("w%d", w)
					for v := uint64(1); ; v++ {
						if writes.Add(1) == 200 {
							armOnce.Do(func() { fs.fault.arm(tc.match, syscall.ENOSPC) })
						}
						var err error
						perr := noPanic(func() error {
							_, err = fs.Apply(context.Background(), "t", []store.Mutation{mut(key, v)})
							return nil
						})
						if perr != nil {
							t.Error(perr)
							return
						}
						if err != nil {
							if errors.Is(err, store.ErrStorage) {
								storage.Add(1)
							} else {
								t.Errorf("Apply: %v, want store.ErrStorage", err)
							}
							return
						}
						row, found, gerr := fs.Get(context.Background(), "t", []byte(key), 0)
						mu.Lock()
						acked[key] = v
						if gerr == nil && found {
							seen[key] = max(seen[key], row.Version)
						}
						mu.Unlock()
					}
				})
			}
			within(t, 30*time.Second, "the writers", func() struct{} { wg.Wait(); return struct{}{} })
			if fs.fault.fired.Load() == 0 || storage.Load() != writers {
				t.Fatalf("fault fired %d times, %d of %d writers stopped with store.ErrStorage", fs.fault.fired.Load(), storage.Load(), writers)
			}
			checkStopped(t, fs.Store)
			after := fs.restart(t)
			for key, v := range acked {
				row, found, err := after.Get(t.Context(), "t", []byte(key), 0)
				if err != nil || !found || row.Version < v {
					t.Errorf("key %s: acknowledged version %d, after the crash %+v found=%v err=%v", key, v, row, found, err)
				}
				if s := seen[key]; s > row.Version {
					t.Errorf("key %s: a Get returned version %d, after the crash the store has %d", key, s, row.Version)
				}
			}
		})
	}
}

// TestBackgroundWriteFailure: an sstable or MANIFEST write fails during a
// memtable flush (a background job; Pebble treats a MANIFEST error as
// fatal). The store fails stop instead of crashing the process, and what
// was acknowledged survives a crash.
func TestBackgroundWriteFailure(t *testing.T) {
	for _, tc := range []struct {
		name  string
		match func(errorfs.Op) bool
	}{
		{"sstable", both(isTable, isWrite)},
		{"manifest", both(isManifest, isWrite)},
		{"manifest_sync", both(isManifest, isSync)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fs := openFaulty(t, Options{})
			fs.fault.arm(tc.match, syscall.ENOSPC)
			value := make([]byte, 64<<10)
			var acked uint64
			var err error
			// Fill memtables until a flush hits the fault.
			for v := uint64(1); v <= 2000; v++ {
				err = within(t, 10*time.Second, "Apply", func() error {
					return noPanic(func() error {
						_, err := fs.Apply(t.Context(), "t", []store.Mutation{{Key: fmt.Appendf(nil, "k%d", v), Value: value, Version: v}})
						return err
					})
				})
				if err != nil {
					break
				}
				acked = v
			}
			if !errors.Is(err, store.ErrStorage) || fs.fault.fired.Load() == 0 {
				t.Fatalf("after %d writes: %v (fault fired %d times), want store.ErrStorage", acked, err, fs.fault.fired.Load())
			}
			checkStopped(t, fs.Store)
			after := fs.restart(t)
			for v := uint64(1); v <= acked; v++ {
				if _, found, err := after.Get(t.Context(), "t", fmt.Appendf(nil, "k%d", v), 0); err != nil || !found {
					t.Fatalf("acknowledged k%d after the crash: found=%v err=%v", v, found, err)
				}
			}
		})
	}
}

// TestOpenOnAFailingDisk: before the store is open, a filesystem error is
// Open's error (a disk too full to start on), not a hang.
func TestOpenOnAFailingDisk(t *testing.T) {
	f := newFault()
	f.arm(func(op errorfs.Op) bool { return op.Kind.ReadOrWrite() == errorfs.OpIsWrite }, syscall.ENOSPC)
	err := within(t, 10*time.Second, "Open", func() error {
		return noPanic(func() error {
			s, err := Open("store", Options{FS: errorfs.Wrap(vfs.NewMem(), f), Logger: quiet})
			if err == nil {
				s.Close()
			}
			return err
		})
	})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Open on a full disk: %v, want ENOSPC", err)
	}
}

// TestOpenWithAWALToFlushOnAFullDisk: a store whose WAL holds writes not
// yet flushed (the process was killed, or stopped after a storage
// failure) is opened on a disk too full for the sstable the replay
// flushes. Pebble retries a failed flush without end (and Open waits for
// it): the start must fail with the disk's error instead, at once, not
// hang (spinning, deaf to SIGTERM, logging a line per retry). Once space
// is back, the store opens with every write.
func TestOpenWithAWALToFlushOnAFullDisk(t *testing.T) {
	for _, tc := range []struct {
		name  string
		match func(errorfs.Op) bool
	}{
		{"sstable", both(isTable, isWrite)},
		// Pebble takes a failed MANIFEST write for fatal (Fatalf): in the
		// flush, a background job, its panic ended the process.
		{"manifest", both(isManifest, isWrite)},
		{"manifest_sync", both(isManifest, isSync)},
	} {
		t.Run(tc.name, func(t *testing.T) { testOpenWithAWALToFlush(t, tc.match) })
	}
}

func testOpenWithAWALToFlush(t *testing.T, match func(errorfs.Op) bool) {
	mem := vfs.NewCrashableMem()
	s := openT(t, "store", Options{FS: mem})
	if err := s.CreateTable(t.Context(), "t"); err != nil {
		t.Fatal(err)
	}
	for v := uint64(1); v <= 10; v++ {
		mustApply(t, s, mut(fmt.Sprintf("k%d", v), v))
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{}) // killed: the writes are in the WAL only
	_ = s.Close()

	f := newFault()
	f.arm(match, syscall.ENOSPC)
	err := within(t, 10*time.Second, "Open", func() error {
		return noPanic(func() error {
			s, err := Open("store", Options{FS: errorfs.Wrap(crashed, f), Logger: quiet})
			if err == nil {
				s.Close()
			}
			return err
		})
	})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Open on a full disk with a WAL to flush: %v, want ENOSPC", err)
	}
	if !strings.Contains(err.Error(), "free space") {
		t.Errorf("Open's error %q does not say what to do (free space)", err)
	}
	// Space is back (the failed Open keeps its lock, as the process it
	// ends would until it exits: a copy of the disk stands for the next
	// start).
	after := openT(t, "store", Options{FS: crashed.CrashClone(vfs.CrashCloneCfg{})})
	defer after.Close()
	for v := uint64(1); v <= 10; v++ {
		if _, found, err := after.Get(t.Context(), "t", fmt.Appendf(nil, "k%d", v), 0); err != nil || !found {
			t.Fatalf("k%d after the start with space: found=%v err=%v", v, found, err)
		}
	}
}

// TestTableWritesOnAFailingWAL: a write of the catalog or the table
// registry (CreateTable, SaveTable, SwapTable, DropTable) whose WAL write or
// sync fails returns store.ErrStorage in bounded time (it never hangs, and
// no panic escapes), the store fails stop, and after a crash the write is
// not there.
func TestTableWritesOnAFailingWAL(t *testing.T) {
	catalog := func(t *testing.T, s *Store) map[string]string {
		t.Helper()
		ts, err := s.Tables(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, tb := range ts {
			m[tb.Name] = string(tb.Spec)
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		op    func(ctx context.Context, s *Store) error
		after func(t *testing.T, s *Store) // on the store restarted from what was synced
	}{
		{"create", func(ctx context.Context, s *Store) error { return s.CreateTable(ctx, "u") },
			func(t *testing.T, s *Store) {
				if _, _, err := s.Get(t.Context(), "u", []byte("k"), 0); !errors.Is(err, store.ErrUnknownTable) {
					t.Errorf("table u after the crash: %v, want ErrUnknownTable", err)
				}
			}},
		{"save", func(ctx context.Context, s *Store) error {
			return s.SaveTable(ctx, store.Table{Name: "t", Spec: []byte("v2")})
		},
			func(t *testing.T, s *Store) {
				if c := catalog(t, s); c["t"] != "v1" {
					t.Errorf("catalog after the crash: %v, want t: v1", c)
				}
			}},
		{"swap_update", func(ctx context.Context, s *Store) error {
			_, _, err := s.SwapTable(ctx, "t", []byte("v1"), []byte("v2"))
			return err
		}, func(t *testing.T, s *Store) {
			if c := catalog(t, s); c["t"] != "v1" {
				t.Errorf("catalog after the crash: %v, want t: v1", c)
			}
		}},
		{"swap_delete", func(ctx context.Context, s *Store) error {
			_, _, err := s.SwapTable(ctx, "t", []byte("v1"), nil)
			return err
		}, func(t *testing.T, s *Store) {
			if c := catalog(t, s); c["t"] != "v1" {
				t.Errorf("catalog after the crash: %v, want t: v1", c)
			}
		}},
		{"drop", func(ctx context.Context, s *Store) error { return s.DropTable(ctx, "t") },
			func(t *testing.T, s *Store) {
				if row, found, err := s.Get(t.Context(), "t", []byte("k"), 0); err != nil || !found || row.Version != 1 {
					t.Errorf("row of table t after the crash: %+v found=%v err=%v, want version 1", row, found, err)
				}
			}},
	} {
		for _, kind := range []struct {
			name  string
			match func(errorfs.Op) bool
		}{{"write", both(isWAL, isWrite)}, {"sync", both(isWAL, isSync)}} {
			t.Run(tc.name+"_"+kind.name, func(t *testing.T) {
				t.Parallel()
				fs := openFaulty(t, Options{})
				mustApply(t, fs.Store, mut("k", 1))
				if err := fs.SaveTable(t.Context(), store.Table{Name: "t", Spec: []byte("v1")}); err != nil {
					t.Fatal(err)
				}
				fs.fault.arm(kind.match, syscall.EIO)
				err := within(t, 10*time.Second, tc.name, func() error {
					return noPanic(func() error { return tc.op(t.Context(), fs.Store) })
				})
				if !errors.Is(err, store.ErrStorage) {
					t.Errorf("%s with a failing WAL %s: %v, want store.ErrStorage", tc.name, kind.name, err)
				}
				if fs.fault.fired.Load() == 0 {
					t.Fatal("the fault never fired")
				}
				checkStopped(t, fs.Store)
				tc.after(t, fs.restart(t))
			})
		}
	}
}

// TestOpenPermissionErrorSaysWhatToRun: a store Open refused by the file
// system's permissions (a data dir owned by another user) or on a file
// system mounted read-only says what to run.
func TestOpenPermissionErrorSaysWhatToRun(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want []string
	}{
		{syscall.EACCES, []string{"chown", "the user wail runs as"}},
		{syscall.EPERM, []string{"chown", "the user wail runs as"}},
		{syscall.EROFS, []string{"read-write", "findmnt"}},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			mem := vfs.NewMem()
			s := openT(t, "store", Options{FS: mem})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			f := newFault()
			f.arm(func(op errorfs.Op) bool { return op.Kind == errorfs.OpLock }, tc.err)
			s, err := Open("store", Options{FS: errorfs.Wrap(mem, f), Logger: quiet})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("Open: %v; want it to wrap %v", err, tc.err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Open: %v; want it to say %q", err, want)
				}
			}
		})
	}
}
