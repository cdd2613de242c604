package embedded

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestLostOpenEndedCoversNoLaterGap: a repair that removes damage running
// to the end of the last segment records it as [From, -1), and the log
// goes on at From. A sealed segment of records appended after the repair
// that goes missing later is a loss no repair recorded: Open refuses it.
// (covers took To == -1 as "to infinity": Open accepted any later gap at
// or above From and readers skipped acknowledged records silently.)
func TestLostOpenEndedCoversNoLaterGap(t *testing.T) {
	const per = 3
	dir := t.TempDir()
	const batchBytes = batchHeaderLen + per*23
	opts := Options{SegmentBytes: 4 * batchBytes}
	l := openLog(t, dir, opts)
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	for i := range 6 {
		appendBatch(t, l, fmt.Sprintf("b%02d", i), per)
	}
	noErr(t, l.Close())

	// A torn tail on the active segment (e.g. Open refused for damage
	// elsewhere and the operator ran repair on a log that also had a torn
	// tail): repair removes it as [18, -1).
	segs := segmentFiles(t, dir, 0, logExt)
	last := segs[len(segs)-1]
	f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	noErr(t, err)
	_, err = f.Write([]byte{batchMagic, 0, 0, 1, 0, 1, 2, 3})
	noErr(t, err)
	noErr(t, f.Close())
	rep, err := Repair(dir, Options{Logger: testLogger(t)})
	noErr(t, err)
	t.Logf("repair: %+v", rep.Lost)

	// Much later: many more acknowledged records, several segments.
	l = openLog(t, dir, opts)
	for i := 6; i < 30; i++ {
		appendBatch(t, l, fmt.Sprintf("b%02d", i), per)
	}
	noErr(t, l.Close())

	// A sealed segment holding acknowledged records goes missing.
	segs = segmentFiles(t, dir, 0, logExt)
	victim := segs[len(segs)-3]
	noErr(t, os.Remove(victim))
	t.Logf("removed %s", victim)

	l2, err := Open(dir, Options{SegmentBytes: opts.SegmentBytes, Logger: testLogger(t)})
	if err == nil {
		lost, _ := l2.Lost(t.Context(), testTopic, 0)
		_ = l2.Close()
		t.Fatalf("Open accepted a segment lost after the repair (gap %v, not listed in #lost); want ErrCorrupt", lost)
	}
	if !errors.Is(err, intentlog.ErrCorrupt) {
		t.Fatalf("Open: %v, want ErrCorrupt", err)
	}
}
