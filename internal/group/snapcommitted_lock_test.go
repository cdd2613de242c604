package group

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// slowSnapshotRecord is a log whose Append of a group's committed
// snapshot record (an id, not the clear) first runs while: the
// registry's partition leader gone for a while, say.
type slowSnapshotRecord struct {
	intentlog.Log
	while func()
}

func (l *slowSnapshotRecord) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	for _, r := range recs {
		if topic == registryTopic && bytes.HasSuffix(r.Key, []byte("/snapshot")) && len(r.Value) == 16 &&
			binary.BigEndian.Uint64(r.Value[8:]) != 0 && l.while != nil {
			l.while()
		}
	}
	return l.Log.Append(ctx, topic, recs)
}

// TestSharedSnapshotRecordHoldsNoGroupLock: in a group shared by
// processes, the taker writes whose snapshot the positions are after its
// commit (best effort, for at most a group lease). A registry slow to take
// it must not hold the group's lock meanwhile: the process's syncs go
// through every group in turn, and one stuck on that lock renews no
// other group's lease, so that a member of another group of the process
// lost its partitions. Here the write takes longer than the process's
// trusted lease, and the member of group h keeps its lease throughout.
func TestSharedSnapshotRecordHoldsNoGroupLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := openLog(t)
	l := &slowSnapshotRecord{Log: base}
	tb := table(t, base, 1, 5)
	cat := &memCatalog{m: map[string][]byte{}}
	const lease = time.Second
	A := New(l, time.Minute).Share(Sharing{Store: &memSwapper{c: cat}, Process: "A", Lease: lease, Logger: slog.New(slog.DiscardHandler)})
	defer A.Close()
	h, err := A.Join(ctx, tb, "h", "m", false)
	if err != nil {
		t.Fatal(err)
	}
	o := owned{}
	until(t, h, o, nil, func() bool { return len(o) == 1 })
	A.mu.Lock()
	hg := A.groups[[2]string{tb.Name, "h"}]
	A.mu.Unlock()
	var lapsed bool
	l.while = func() {
		deadline := time.Now().Add(3 * lease / 2)
		for time.Now().Before(deadline) {
			hg.mu.Lock()
			if !hg.validNow(time.Now()) {
				lapsed = true
			}
			hg.mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}
	id := takeAcked(t, A, tb, nil)
	if lapsed {
		t.Fatal("the lease of group h on this process lapsed while the taker of group g wrote its snapshot's record")
	}
	if got := committedSnapshot(t, A, tb); got != id {
		t.Fatalf("committed snapshot %d, want %d", got, id)
	}
}
