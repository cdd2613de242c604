package resolver

// A key's pending intents and what a version covers of them.

import (
	"time"

	"github.com/wail-cdc/wail/internal/intent"
)

// pending is an intent of a key that is not resolved yet.
type pending struct {
	slot     *slot
	version  uint64
	op       intent.Op
	needs    bool // must be covered by an event (false for ABORT and aborted intents)
	created  time.Time
	deadline time.Time
	// for dead letters: the rest of the intent
	id    string
	proxy uint32
	floor uint64
	trace *string // W3C traceparent, when the write is traced
	// late: an intent of reconcile or redrive that came after the core
	// may have forgotten events it relies on (catchup.go).
	late bool
	// recheck: its window ended without the store showing it (reported
	// unmaterialized); deadline is now its recheck's (recheck.go).
	recheck bool
}

// newest returns the newest version the key's pending intents need
// covered (0: none).
func (ks *keyState) newest() uint64 {
	var v uint64
	for i := range ks.pending {
		if ks.pending[i].needs {
			v = max(v, ks.pending[i].version)
		}
	}
	return v
}

// coversAll reports whether version v covers every pending intent that
// needs an event.
func coversAll(ps []pending, v uint64) bool {
	for _, p := range ps {
		if p.needs && p.version > v {
			return false
		}
	}
	return true
}

// coversEvery reports whether version v covers every pending intent and
// ABORT, needed or not.
func coversEvery(ps []pending, v uint64) bool {
	for _, p := range ps {
		if p.version > v {
			return false
		}
	}
	return true
}

func hasAbort(ps []pending) bool {
	for _, p := range ps {
		if p.op == intent.Abort {
			return true
		}
	}
	return false
}

// split returns the intents covered by version v and the rest.
func split(ps []pending, v uint64) (covered, rest []pending) {
	for _, p := range ps {
		if p.version <= v {
			covered = append(covered, p)
		} else {
			rest = append(rest, p)
		}
	}
	return covered, rest
}

// maxFreeKeys bounds the resolved key states a core keeps for reuse.
const maxFreeKeys = 1024

func (c *Core) keyState(raw []byte) *keyState {
	if ks := c.keys[string(raw)]; ks != nil {
		return ks
	}
	return c.newKeyState(raw)
}

// newKeyState adds the state of a key that has none.
func (c *Core) newKeyState(raw []byte) *keyState {
	var ks *keyState
	if n := len(c.free); n > 0 {
		ks, c.free = c.free[n-1], c.free[:n-1]
	} else {
		ks = new(keyState)
	}
	*ks = keyState{key: raw, name: string(raw)}
	ks.fail.readMark = c.seq
	ks.fail.pubMark = c.pubOK
	c.keys[ks.name] = ks
	return ks
}
