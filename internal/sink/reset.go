package sink

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/wail-cdc/wail/internal/group"
)

// Seams for tests (atomic: set while runners sync): testHookChecked runs
// in WhilePaused once the sink was found paused, before its fn;
// testHookSyncWaits when a Sync waits for another holder of the sync
// lock; testHookPauseRecorded in SetPaused once the definition was saved,
// before its Sync; testHookStopping in a Sync that stops a runner, under
// the sync lock, before it waits for the runner to end.
var testHookChecked, testHookSyncWaits, testHookPauseRecorded, testHookStopping atomic.Pointer[func()]

// runHook runs the seam h, if set.
func runHook(h *atomic.Pointer[func()]) {
	if f := h.Load(); f != nil {
		(*f)()
	}
}

// WhilePaused runs fn (a reset of the sink's group) when table's sink
// name is paused (or no such sink is defined) and its runner here has
// stopped; else it refuses with group.ErrMembers: the runner holds its
// position in memory and its next commit overwrote the reset. It holds
// the sync lock through fn: no Sync starts the runner meanwhile (a
// resume saved during fn starts it after, from fn's positions: before,
// one saved between the check and the reset started a runner that loaded
// the positions from before the reset and overwrote it,
// TestSinkResetRacesResume), and none is stopping it (a pause's Sync
// returns once the runner stopped, after its last commit). A pause saved
// whose Sync has not stopped the runner yet (or failed to: the store out
// of reach) is refused: the runner's batch in flight still commits
// (TestSinkResetAfterPauseRecorded).
//
// It waits for the sync lock within ctx and at most SyncWait: a Sync
// holds it while it stops a runner, which waits for the runner's last
// commit and its leave of the group, without a bound (the store or the
// log out of reach). Past that it answers ErrSyncBusy: retry.
func (m *Manager) WhilePaused(ctx context.Context, table, name string, fn func(context.Context) error) error {
	g := GroupName(name)
	if err := m.lockSyncWithin(ctx, SyncWait); err != nil {
		return fmt.Errorf("%w: group %s is webhook sink %s's, whose runners a sync here is starting or stopping "+
			"(a pause, resume or drop, or the periodic read of the definitions), which has not ended (%w): retry the reset; "+
			"if it keeps failing, see `wail sink describe %s %s` and the server log (the store or the log out of reach holds a runner's stop)",
			ErrSyncBusy, g, name, err, table, name)
	}
	defer m.unlockSync()
	sinks, _, err := m.defs.load(ctx)
	if err != nil {
		return err
	}
	if i := find(sinks, table, name); i >= 0 && !sinks[i].Paused {
		return fmt.Errorf("%w: group %s is webhook sink %s's, which runs: pause it first (`wail sink pause %s %s`), "+
			"reset, then `wail sink resume %s %s`", group.ErrMembers, g, name, table, name, table, name)
	}
	m.mu.Lock()
	r := m.runners[[2]string{table, name}]
	m.mu.Unlock()
	if r != nil {
		return fmt.Errorf("%w: group %s is webhook sink %s's, which is paused but still runs here (its pause has not stopped it yet, "+
			"or could not: see `wail sink describe %s %s`): pause it again (`wail sink pause %s %s`), then reset",
			group.ErrMembers, g, name, table, name, table, name)
	}
	runHook(&testHookChecked)
	return fn(ctx)
}

// ErrSyncBusy: a reset of a sink's group waited, as long as its context
// allowed (at most SyncWait), for a Sync that starts or stops runners.
var ErrSyncBusy = errors.New("sinks are being started or stopped")

// SyncWait bounds how long a reset of a sink's group waits for a Sync
// (within its context).
const SyncWait = 10 * time.Second

// lockSync takes the sync lock.
func (m *Manager) lockSync() { m.syncLock <- struct{}{} }

// unlockSync lets go of it.
func (m *Manager) unlockSync() { <-m.syncLock }

// lockSyncWithin takes the sync lock, waiting at most d and while ctx
// lasts; it returns why it did not.
func (m *Manager) lockSyncWithin(ctx context.Context, d time.Duration) error {
	select {
	case m.syncLock <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case m.syncLock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("waited %s", d)
	}
}
