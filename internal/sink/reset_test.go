package sink

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
)

// resetFixture runs sink s (from the beginning) of a one-partition table
// on a manager, and resets its group as the API does: through a
// group.Groups of its own on the same log, within WhilePaused.
type resetFixture struct {
	*fixture
	m   *Manager
	ep  *endpoint
	api *group.Groups
}

func newResetFixture(t *testing.T, ep *endpoint) *resetFixture {
	f := &resetFixture{fixture: newFixture(t, 1), ep: ep}
	f.m = f.manager()
	t.Cleanup(f.m.Close)
	f.api = group.New(f.log, time.Minute)
	t.Cleanup(f.api.Close)
	if _, _, err := f.m.Create(context.Background(), &wailv1.Sink{Table: testTable, Name: "s", Url: ep.url(), Start: "beginning"}); err != nil {
		t.Fatal(err)
	}
	return f
}

// reset resets the sink's group to offset 0 as the API does.
func (f *resetFixture) reset(ctx context.Context) error {
	return f.m.WhilePaused(ctx, testTable, "s", func(ctx context.Context) error {
		return f.api.Reset(ctx, f.tbl, GroupName("s"), map[int32]int64{0: 0})
	})
}

// committed returns the group's committed offset of partition 0 (-1: none).
func (f *resetFixture) committed() int64 {
	c, err := f.log.Committed(context.Background(), group.LogGroup(GroupName("s")), f.tbl.Topic)
	if err != nil {
		f.t.Fatal(err)
	}
	if o, ok := c[0]; ok {
		return o
	}
	return -1
}

// setHook sets a seam until the test ends.
func setHook(t *testing.T, h *atomic.Pointer[func()], f func()) {
	h.Store(&f)
	t.Cleanup(func() { h.Store(nil) })
}

func count(evs []*wailv1.ChangeEvent, key string) int {
	n := 0
	for _, e := range evs {
		if string(e.Key) == key {
			n++
		}
	}
	return n
}

// TestSinkResetRacesResume: a resume between the reset's check that the
// sink is paused and the reset itself. Before, the runner the resume
// started loaded the position from before the reset, and its next commit
// overwrote the reset: nothing was replayed. The reset and the start of
// the runner are serialised: the resume's runner starts after the reset,
// from its positions.
func TestSinkResetRacesResume(t *testing.T) {
	ctx := context.Background()
	f := newResetFixture(t, newEndpoint(t, ""))
	f.publish(event("a", 1))
	waitFor(t, "a", time.Minute, func() bool { return len(f.ep.events()) == 1 })
	if _, err := f.m.SetPaused(ctx, testTable, "s", true); err != nil {
		t.Fatal(err)
	}
	resumed := make(chan error, 1)
	syncWaits := make(chan struct{})
	var once sync.Once
	setHook(t, &testHookSyncWaits, func() { once.Do(func() { close(syncWaits) }) })
	setHook(t, &testHookChecked, func() {
		go func() {
			_, err := f.m.SetPaused(ctx, testTable, "s", false)
			resumed <- err
		}()
		// Until the resume's runner joined (and loaded its position), or
		// its Sync waits for the reset.
		joined := make(chan struct{})
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				members, _, err := f.m.groups.Describe(ctx, f.tbl, GroupName("s"))
				if err == nil && len(members) > 0 {
					close(joined)
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
		select {
		case <-joined:
		case <-syncWaits:
		}
	})
	if err := f.reset(ctx); err != nil {
		t.Fatalf("reset: %v", err)
	}
	testHookChecked.Store(nil)
	testHookSyncWaits.Store(nil)
	if err := <-resumed; err != nil {
		t.Fatal(err)
	}
	f.publish(event("b", 2))
	waitFor(t, "b", time.Minute, func() bool { return count(f.ep.events(), "b") > 0 })
	if n := count(f.ep.events(), "a"); n != 2 {
		t.Fatalf("a delivered %d times, want 2: the reset to the beginning was overwritten (committed %d)", n, f.committed())
	}
}

// TestSinkResetAfterPauseRecorded: a reset between the save of a pause
// and the stop of the runner, while the runner has a batch in flight.
// Before, the reset found the sink paused and answered, and the runner's
// commit of the batch overwrote it. A reset that answers is never
// overwritten: until the runner here stopped, it is refused.
func TestSinkResetAfterPauseRecorded(t *testing.T) {
	ctx := context.Background()
	inFlight, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	ep := newEndpoint(t, "")
	ep.fail = func(w http.ResponseWriter, r *http.Request, b *wailv1.SinkBatch) bool {
		if len(b.Events) > 0 && string(b.Events[0].Key) == "b" {
			once.Do(func() { close(inFlight) })
			<-release
		}
		return false
	}
	f := newResetFixture(t, ep)
	f.publish(event("a", 1))
	waitFor(t, "a", time.Minute, func() bool { return len(f.ep.events()) == 1 })
	f.publish(event("b", 2))
	<-inFlight
	var resetErr error
	setHook(t, &testHookPauseRecorded, func() {
		resetErr = f.reset(ctx)
		close(release)
		// The runner commits the batch it had in flight.
		waitFor(t, "the batch's commit", time.Minute, func() bool { return f.committed() == 2 })
	})
	if _, err := f.m.SetPaused(ctx, testTable, "s", true); err != nil {
		t.Fatal(err)
	}
	testHookPauseRecorded.Store(nil)
	if resetErr == nil {
		t.Fatalf("the reset answered, and the paused sink's last commit overwrote it: committed %d, want 0", f.committed())
	}
	if !errors.Is(resetErr, group.ErrMembers) {
		t.Fatalf("reset before the runner stopped: %v, want group.ErrMembers", resetErr)
	}
	// Once the pause answered, the runner stopped: the reset holds.
	if err := f.reset(ctx); err != nil {
		t.Fatalf("reset after the pause: %v", err)
	}
	if c := f.committed(); c != 0 {
		t.Fatalf("committed %d after the reset, want 0", c)
	}
}

// TestSinkResetAcrossProcesses: a sink shared by processes (Sharing) runs
// on process A, and is paused and its group reset through process B,
// which does not run sinks, before A read the pause. A's runner is a
// member of the shared entry until it left: the reset is refused until
// then, and holds once it answered.
func TestSinkResetAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 1)
	ep := newEndpoint(t, "")
	quiet := slog.New(slog.DiscardHandler)
	table := func(name string) (group.Table, bool) { return f.tbl, name == testTable }
	// A reads the definitions only when told (Sync).
	a := New(Options{Backend: f.cat, Log: f.log, Run: true, Refresh: time.Hour, Table: table,
		Sharing: &group.Sharing{Store: f.cat, Process: "A", Lease: 10 * time.Second, Logger: quiet}})
	a.Start(ctx)
	t.Cleanup(a.Close)
	b := New(Options{Backend: f.cat, Log: f.log, Table: table})
	t.Cleanup(b.Close)
	api := group.New(f.log, 10*time.Second)
	api.Share(group.Sharing{Store: f.cat, Process: "B", Lease: 10 * time.Second, Logger: quiet})
	t.Cleanup(api.Close)
	if _, _, err := a.Create(ctx, &wailv1.Sink{Table: testTable, Name: "s", Url: ep.url(), Start: "beginning"}); err != nil {
		t.Fatal(err)
	}
	f.publish(event("a", 1))
	waitFor(t, "a", time.Minute, func() bool { return len(ep.events()) == 1 })
	committed := func() int64 {
		c, err := f.log.Committed(ctx, group.LogGroup(GroupName("s")), f.tbl.Topic)
		if err != nil {
			t.Fatal(err)
		}
		return c[0]
	}
	waitFor(t, "a's commit", time.Minute, func() bool { return committed() == 1 })
	reset := func() error {
		return b.WhilePaused(ctx, testTable, "s", func(ctx context.Context) error {
			return api.Reset(ctx, f.tbl, GroupName("s"), map[int32]int64{0: 0})
		})
	}
	if _, err := b.SetPaused(ctx, testTable, "s", true); err != nil {
		t.Fatal(err)
	}
	if err := reset(); !errors.Is(err, group.ErrMembers) {
		t.Fatalf("reset while A still runs the sink: %v, want group.ErrMembers", err)
	}
	if err := a.Sync(ctx); err != nil { // A reads the pause: its runner stops and leaves
		t.Fatal(err)
	}
	waitFor(t, "the reset once A's runner left", time.Minute, func() bool { return reset() == nil })
	f.publish(event("b", 2))
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if c := committed(); c != 0 {
		t.Fatalf("committed %d after the reset, want 0", c)
	}
}

// TestSinkResetWhileSyncStops: a reset while a Sync (here a pause's)
// stops the sink's runner, which takes its time (a commit or a leave
// held up by the store). Before, the reset waited for the sync lock
// without any bound: its request's deadline passed and it still hung. It
// waits within its context and then answers ErrSyncBusy, saying to retry;
// once the pause answered, the reset holds.
func TestSinkResetWhileSyncStops(t *testing.T) {
	ctx := context.Background()
	f := newResetFixture(t, newEndpoint(t, ""))
	f.publish(event("a", 1))
	waitFor(t, "a", time.Minute, func() bool { return len(f.ep.events()) == 1 })
	var (
		once      sync.Once
		answered  bool // the reset answered while the runner was stopping
		resetDone = make(chan error, 1)
	)
	setHook(t, &testHookStopping, func() {
		once.Do(func() {
			rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			go func() {
				defer cancel()
				resetDone <- f.reset(rctx)
			}()
			// The runner's stop takes until the reset answered, or a
			// while past its deadline.
			select {
			case err := <-resetDone:
				answered = true
				resetDone <- err
			case <-time.After(10 * time.Second):
			}
		})
	})
	if _, err := f.m.SetPaused(ctx, testTable, "s", true); err != nil {
		t.Fatal(err)
	}
	testHookStopping.Store(nil)
	err := <-resetDone
	if !answered {
		t.Fatalf("the reset waited for the pause's Sync 10s past its deadline (then answered %v)", err)
	}
	if !errors.Is(err, ErrSyncBusy) || !strings.Contains(err.Error(), "retry") {
		t.Fatalf("reset while a Sync stops the runner, past its deadline: %v, want ErrSyncBusy saying to retry", err)
	}
	if err := f.reset(ctx); err != nil {
		t.Fatalf("reset after the pause: %v", err)
	}
	if c := f.committed(); c != 0 {
		t.Fatalf("committed %d after the reset, want 0", c)
	}
}

// TestLockSyncWithin: the wait for the sync lock ends at its bound (a
// reset without a deadline waits SyncWait at most) or at its context's
// end, whichever is first, and takes the lock once it is free.
func TestLockSyncWithin(t *testing.T) {
	t.Parallel()
	m := New(Options{Backend: &memCatalog{m: map[string][]byte{}}})
	m.lockSync() // a Sync stopping a runner holds it
	if err := m.lockSyncWithin(t.Context(), 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "waited 50ms") {
		t.Fatalf("wait for a held lock, bounded at 50ms: %v; want \"waited 50ms\"", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := m.lockSyncWithin(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait for a held lock within a context of 50ms: %v; want the context's deadline", err)
	}
	time.AfterFunc(20*time.Millisecond, m.unlockSync)
	if err := m.lockSyncWithin(t.Context(), time.Hour); err != nil {
		t.Fatalf("wait for a lock let go of: %v", err)
	}
	m.unlockSync()
}
