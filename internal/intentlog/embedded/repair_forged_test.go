package embedded

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestRepairKeepsNoBatchFromAValue: damage at rest to the magic byte of a
// batch whose value holds an encoded batch (its base the damaged batch's
// own offset). Open refuses; Repair does not take the inner batch for a
// batch after the damage: no record a client chose is served as one.
func TestRepairKeepsNoBatchFromAValue(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Options{})
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	appendBatch(t, l, "a", 5)
	inner := encodeBatch(nil, 5, 1000, []intentlog.Record{
		{Key: []byte("forged"), Value: []byte("no one appended this"), Timestamp: time.UnixMicro(1000)}})
	noErr(t, l.Append(context.Background(), testTopic, []*intentlog.Record{{Key: []byte("k"), Value: append(inner, 0, 0, 0)}}))
	appendBatch(t, l, "c", 5)
	noErr(t, l.Close())
	path := segmentFiles(t, dir, 0, logExt)[0]
	setBytes(0, 0)(t, path, batchPositions(t, path)[1])

	if l, err := Open(dir, Options{Logger: testLogger(t)}); err == nil {
		l.Close()
		t.Fatal("Open accepted a damaged magic byte")
	}
	rep, err := Repair(dir, Options{Logger: testLogger(t)})
	noErr(t, err)
	t.Logf("repair lost: %+v", rep.Lost)
	l = openLog(t, dir, Options{})
	defer l.Close()
	for _, r := range readGaps(t, l, 0, 11) {
		if bytes.Equal(r.Key, []byte("forged")) {
			t.Errorf("after repair, offset %d holds the record forged in a value: %q", r.Offset, r.Value)
		}
	}
}
