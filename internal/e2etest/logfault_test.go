package e2etest

import (
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestInvariantsEmbeddedLogDiskFull runs the invariant suite on the
// embedded backends while the intent log's disk fills up mid-stream (every
// write of the log, segments and offsets alike, fails with ENOSPC after
// writing half its bytes) and then gets space back. Writes during the
// fault fail without being acknowledged; none may become visible as an
// event unless stored; the log reports ErrNoSpace and recovers by itself.
// Faults in the store are the store's own suite.
func TestInvariantsEmbeddedLogDiskFull(t *testing.T) {
	t.Parallel()
	efs := vfs.NewErrorFS(nil)
	var mu sync.Mutex
	var health []error
	var log *embedded.Log
	open := func(t *testing.T) Backends {
		var b Backends
		b, log = openEmbeddedWith(t, embedded.Options{
			FS: efs, SpaceProbeInterval: 10 * time.Millisecond,
			OnHealth: func(err error) {
				mu.Lock()
				health = append(health, err)
				mu.Unlock()
			},
		})
		return b
	}
	opts := DefaultOptions()
	opts.Table = "logdiskfull"
	fired := 0
	opts.Disrupt = func(t *testing.T) {
		efs.Inject(vfs.Fault{Ops: vfs.OpWrite, Err: syscall.ENOSPC, Partial: true})
		deadline := time.Now().Add(10 * time.Second)
		for efs.Fired() < 50 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		fired = efs.Fired()
		if err := log.Health(); !errors.Is(err, intentlog.ErrNoSpace) {
			t.Errorf("log health on a full disk: %v, want ErrNoSpace", err)
		}
		efs.Clear()
		for log.Health() != nil && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if err := log.Health(); err != nil {
			t.Errorf("log health after space returned: %v", err)
		}
	}
	Run(t, open, opts)
	if fired < 50 {
		t.Fatalf("the disk-full fault fired %d times, want at least 50 (writes during the fault)", fired)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(health) < 2 || !errors.Is(health[0], intentlog.ErrNoSpace) || health[len(health)-1] != nil {
		t.Fatalf("OnHealth calls %v: want ErrNoSpace first and nil last", health)
	}
	t.Logf("%d log writes failed with ENOSPC; %d health changes, the first: %v", fired, len(health), health[0])
}
