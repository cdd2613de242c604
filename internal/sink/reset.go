package sink

import (
	"context"
	"fmt"

	"github.com/wail-cdc/wail/internal/group"
)

// Seams for tests: testHookChecked runs in WhilePaused once the sink was
// found paused, before its fn; testHookSyncWaits when a Sync waits for
// another holder of the sync lock; testHookPauseRecorded in SetPaused once
// the definition was saved, before its Sync.
var testHookChecked, testHookSyncWaits, testHookPauseRecorded func()

// WhilePaused runs fn (a reset of the sink's group) when table's sink
// name is paused (or no such sink is defined); else it refuses with
// group.ErrMembers: the runner holds its position in memory and its next
// commit overwrote the reset.
func (m *Manager) WhilePaused(ctx context.Context, table, name string, fn func(context.Context) error) error {
	sinks, _, err := m.defs.load(ctx)
	if err != nil {
		return err
	}
	if i := find(sinks, table, name); i >= 0 && !sinks[i].Paused {
		g := GroupName(name)
		return fmt.Errorf("%w: group %s is webhook sink %s's, which runs: pause it first (`wail sink pause %s %s`), "+
			"reset, then `wail sink resume %s %s`", group.ErrMembers, g, name, table, name, table, name)
	}
	if testHookChecked != nil {
		testHookChecked()
	}
	return fn(ctx)
}
