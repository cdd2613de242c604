package resolver

import (
	"testing"

	"github.com/wail-cdc/wail/internal/intent"
)

// TestCoreAbortReadRetries (issue 19): an ABORT alone needs only a read
// at the strongest level; when that read fails, the key backs off, and
// the read that follows the backoff is again at the strongest level, not
// at the first: nothing needs covering.
func TestCoreAbortReadRetries(t *testing.T) {
	t.Parallel()
	v1 := ver(0, 0)
	twoLevels := failParams
	twoLevels.Levels = 2
	run(t, twoLevels, 0, nil, []step{
		{ingest: []Entry{ent(0, "a", intent.Abort, v1)}, reads: []string{"a@1"}},
		{read: errRes("a"), reads: []string{"probe@1"}, retries: &[2]int{1, 0}, parked: n(1)},
		{read: probeRes(false)},
		{at: 40, tick: true, reads: []string{"a@1"}},
		{at: 41, read: res("a", nil), commit: 1, parked: n(0)},
	})
}
