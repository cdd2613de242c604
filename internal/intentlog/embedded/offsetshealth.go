package embedded

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// A group's offsets file is read once, at Open or at the group's first
// Committed or Commit, and cached. A read that fails (an I/O error, or
// damage: a file that appeared since Open) is returned to the caller and
// not cached, so the next call reads again; while it lasts the group's
// resolver or members cannot start, so it shows in Health as a partition's
// failed read does (ErrReadFailing, or ErrReadCorrupt naming `wail log
// repair`), naming the topic, the group and the file. A read of the file
// that works (a Committed, a Commit, the read probe every
// SpaceProbeInterval) or a Commit that replaces it clears it.

// groupRead records the outcome of a read of group's offsets file (nil:
// it read, or a commit replaced it) and reports a change of health. Call
// it without t.offMu or t.offIO (reportHealth takes Log.mu, above them in
// the lock order: doc.go).
func (l *Log) groupRead(t *topic, group string, err error) {
	var fault error
	switch {
	case err == nil:
	case errors.Is(err, intentlog.ErrClosed), outOfFiles(err):
		return
	case errors.Is(err, intentlog.ErrCorrupt):
		fault = fmt.Errorf("%w: %w", ErrReadCorrupt, err)
	case errors.Is(err, intentlog.ErrStorage):
		fault = fmt.Errorf("%w: %w", ErrReadFailing, err)
	default:
		return
	}
	t.faultMu.Lock()
	_, had := t.groupFaults[group]
	changed := fault != nil && !had || fault == nil && had
	if fault == nil {
		delete(t.groupFaults, group)
	} else {
		if t.groupFaults == nil {
			t.groupFaults = map[string]error{}
		}
		t.groupFaults[group] = fault
	}
	t.faultMu.Unlock()
	if changed {
		l.reportHealth()
	}
}

// groupConditions returns the failed reads of the topic's offsets files,
// by group name.
func (t *topic) groupConditions() (groups []string, faults map[string]error) {
	t.faultMu.Lock()
	defer t.faultMu.Unlock()
	if len(t.groupFaults) == 0 {
		return nil, nil
	}
	return slices.Sorted(maps.Keys(t.groupFaults)), maps.Clone(t.groupFaults)
}

// probeGroups, called every SpaceProbeInterval, reads again the offsets
// files whose last read failed.
func (l *Log) probeGroups() {
	l.mu.RLock()
	topics := slices.Collect(maps.Values(l.topics))
	l.mu.RUnlock()
	for _, t := range topics {
		groups, _ := t.groupConditions()
		for _, g := range groups {
			t.offMu.Lock()
			if t.deleted {
				t.offMu.Unlock()
				break
			}
			_, err := t.loadGroup(l.fs, g)
			t.offMu.Unlock()
			l.groupRead(t, g, err)
		}
	}
}
