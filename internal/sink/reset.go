package sink

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/wail-cdc/wail/internal/group"
)

// Seams for tests (atomic: set while runners sync): testHookChecked runs
// in WhilePaused once the sink was found paused, before its fn;
// testHookSyncWaits when a Sync waits for another holder of the sync
// lock; testHookPauseRecorded in SetPaused once the definition was saved,
// before its Sync.
var testHookChecked, testHookSyncWaits, testHookPauseRecorded atomic.Pointer[func()]

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
func (m *Manager) WhilePaused(ctx context.Context, table, name string, fn func(context.Context) error) error {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	sinks, _, err := m.defs.load(ctx)
	if err != nil {
		return err
	}
	g := GroupName(name)
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
