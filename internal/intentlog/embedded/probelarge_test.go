package embedded

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestReadFailureProbeLargeBatch: a bad sector inside a batch larger than
// a reader's chunk, past its first chunk, fails every read of the batch
// (the reader reads the whole batch). The probe reads the batch as a
// reader does, so the condition stays while the sector fails, rather than
// being cleared by a probe that read only the first chunk and raised again
// by the next reader's retry (flapping on /healthz and in the log), and
// clears once it reads.
func TestReadFailureProbeLargeBatch(t *testing.T) {
	t.Parallel()
	efs, hl := vfs.NewErrorFS(nil), &healthLog{}
	l := openLog(t, t.TempDir(), Options{FS: efs, OnHealth: hl.report, SpaceProbeInterval: 5 * time.Millisecond})
	defer l.Close()
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	recs := make([]*intentlog.Record, 3)
	for i := range recs {
		recs[i] = &intentlog.Record{Key: []byte{byte('a' + i)}, Value: make([]byte, 200<<10)}
	}
	noErr(t, l.Append(context.Background(), testTopic, recs))
	bad := int64(readerChunk + 100<<10) // in the batch at position 0, past a reader's first chunk
	efs.Inject(vfs.Fault{Ops: vfs.OpRead, Path: "*.log", Bytes: [2]int64{bad, bad + 512}})
	r, err := l.NewReader(testTopic, 0, 0)
	noErr(t, err)
	defer r.Close()
	if _, err := r.Next(context.Background()); !errors.Is(err, intentlog.ErrStorage) {
		t.Fatalf("read of a batch over a bad sector: %v, want ErrStorage", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for fired := efs.Fired(); efs.Fired() < fired+3; {
		if time.Now().After(deadline) {
			n, last := hl.last()
			t.Fatalf("no probe read the bad sector again (Health %v; OnHealth: %d calls, last %v)", l.Health(), n, last)
		}
		time.Sleep(time.Millisecond)
	}
	if h := l.Health(); !errors.Is(h, ErrReadFailing) {
		t.Fatalf("Health while the sector still fails: %v, want ErrReadFailing", h)
	}
	if n, _ := hl.last(); n != 1 {
		t.Fatalf("OnHealth called %d times while the sector fails, want once", n)
	}
	efs.Clear()
	for l.Health() != nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if h := l.Health(); h != nil {
		t.Fatalf("Health once the sector reads, with no read but the probe's: %v", h)
	}
}
