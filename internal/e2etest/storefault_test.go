package e2etest

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pebblevfs "github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/pebble"
	"github.com/wail-cdc/wail/internal/vfs"
)

// restartableStore is the store of a pipeline whose process "restarts" the
// store after it failed stop: restart swaps in a Pebble opened on what a
// machine crash kept. It remembers the writes whose Apply failed, to tell
// which of them the crash took away.
type restartableStore struct {
	mu     sync.RWMutex
	cur    *pebble.Store
	failed map[string][]uint64 // key -> versions of failed Applies (under mu)
}

func (r *restartableStore) current() *pebble.Store {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cur
}

func (r *restartableStore) CreateTable(ctx context.Context, table string) error {
	return r.current().CreateTable(ctx, table)
}

func (r *restartableStore) Apply(ctx context.Context, table string, muts []store.Mutation) ([]store.Outcome, error) {
	out, err := r.current().Apply(ctx, table, muts)
	if err != nil {
		r.mu.Lock()
		for _, m := range muts {
			r.failed[string(m.Key)] = append(r.failed[string(m.Key)], m.Version)
		}
		r.mu.Unlock()
	}
	return out, err
}

func (r *restartableStore) Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error) {
	return r.current().Get(ctx, table, key, level)
}

func (r *restartableStore) Levels() []string { return r.current().Levels() }

func (r *restartableStore) SaveTable(ctx context.Context, t store.Table) error {
	return r.current().SaveTable(ctx, t)
}

func (r *restartableStore) Tables(ctx context.Context) ([]store.Table, error) {
	return r.current().Tables(ctx)
}

func (r *restartableStore) SwapTable(ctx context.Context, name string, old, new []byte) ([]byte, bool, error) {
	return r.current().SwapTable(ctx, name, old, new)
}

func (r *restartableStore) DropTable(ctx context.Context, table string) error {
	return r.current().DropTable(ctx, table)
}

func (r *restartableStore) Close() error { return r.current().Close() }

// restart replaces the failed store with next and returns, per key, the
// versions of failed writes that next does not have: the crash took them
// away (a version at or below what next holds may have been durable and
// superseded, and is not counted).
func (r *restartableStore) restart(ctx context.Context, table string, next *pebble.Store) (map[string]map[uint64]bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lost := map[string]map[uint64]bool{}
	for key, versions := range r.failed {
		row, found, err := next.Get(ctx, table, []byte(key), 0)
		if err != nil {
			return nil, err
		}
		for _, v := range versions {
			if !found || v > row.Version {
				if lost[key] == nil {
					lost[key] = map[uint64]bool{}
				}
				lost[key][v] = true
			}
		}
	}
	r.cur = next
	return lost, nil
}

// TestInvariantsDiskFull runs the invariant suite on the embedded backends
// while the disk fills up mid-stream, under both the store and the log:
// every write of Pebble (through its vfs) and of the log fails with ENOSPC.
// The store fails stop; the log refuses appends until space returns. Then
// space returns, and the store restarts from what a machine crash keeps
// (only synced bytes: vfs.MemFS.CrashClone). The invariants hold, and no
// event carries a version of a failed write that the crash took away.
func TestInvariantsDiskFull(t *testing.T) {
	t.Parallel()
	mem := pebblevfs.NewCrashableMem()
	var full atomic.Bool
	var storeFired atomic.Int64
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if full.Load() && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			storeFired.Add(1)
			return syscall.ENOSPC
		}
		return nil
	})
	efs := vfs.NewErrorFS(nil)
	var rs *restartableStore
	var log *embedded.Log
	open := func(t *testing.T) Backends {
		var err error
		log, err = embedded.Open(filepath.Join(t.TempDir(), "log"), embedded.Options{FS: efs, SpaceProbeInterval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		st, err := pebble.Open("store", pebble.Options{FS: errorfs.Wrap(mem, inj)})
		if err != nil {
			t.Fatal(err)
		}
		rs = &restartableStore{cur: st, failed: map[string][]uint64{}}
		if err := st.CreateTable(context.Background(), "diskfull_probe"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			full.Store(false) // a run that failed mid-fault closes on a disk with space
			efs.Clear()
			log.Close()
			rs.Close()
		})
		return Backends{Log: log, Store: rs}
	}
	opts := DefaultOptions()
	opts.Table = "diskfull"
	var (
		lostMu    sync.Mutex
		lost      map[string]map[uint64]bool
		logFired  int
		storeErr  error
		lostCount int
	)
	opts.Disrupt = func(t *testing.T) {
		failing := rs.current()
		full.Store(true)
		efs.Inject(vfs.Fault{Ops: vfs.OpWrite, Err: syscall.ENOSPC, Partial: true})
		// The writers' next store write meets the full disk, unless none
		// is in flight (their intents now fail first): a write to a
		// table of its own makes sure one does. It blocks for good once
		// the store failed (fail stop), so it is not waited for.
		go func() {
			_, _ = failing.Apply(context.Background(), "diskfull_probe", []store.Mutation{{Key: []byte("probe"), Value: []byte("x"), Version: 1}})
		}()
		select {
		case <-failing.Failed():
			storeErr = failing.Failure()
		case <-time.After(10 * time.Second):
			t.Fatal("the store did not fail stop on a full disk")
		}
		time.Sleep(200 * time.Millisecond) // writers keep failing meanwhile
		if err := log.Health(); !errors.Is(err, intentlog.ErrNoSpace) {
			t.Errorf("log health on a full disk: %v, want ErrNoSpace", err)
		}
		logFired = efs.Fired()
		// Space returns; the store restarts from what a crash keeps.
		efs.Clear()
		full.Store(false)
		next, err := pebble.Open("store", pebble.Options{FS: errorfs.Wrap(mem.CrashClone(pebblevfs.CrashCloneCfg{}), inj)})
		if err != nil {
			t.Fatalf("restart of the store: %v", err)
		}
		l, err := rs.restart(context.Background(), opts.Table, next)
		if err != nil {
			t.Fatalf("restart of the store: %v", err)
		}
		lostMu.Lock()
		lost = l
		for _, vs := range l {
			lostCount += len(vs)
		}
		lostMu.Unlock()
	}
	opts.Lost = func(key string, version uint64) bool {
		lostMu.Lock()
		defer lostMu.Unlock()
		return lost[key][version]
	}
	Run(t, open, opts)
	if !errors.Is(storeErr, store.ErrStorage) || !errors.Is(storeErr, syscall.ENOSPC) || storeFired.Load() == 0 || logFired == 0 {
		t.Fatalf("store failure %v (ENOSPC fired %d times in the store, %d in the log): the fault did not happen as planned",
			storeErr, storeFired.Load(), logFired)
	}
	t.Logf("store: %v; %d log writes failed; %d failed store writes were lost in the crash", storeErr, logFired, lostCount)
}
