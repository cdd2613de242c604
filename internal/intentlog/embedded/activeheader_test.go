package embedded

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestActiveHeaderDamageInHealth: damage at rest in the header of an
// indexed batch of the active segment (its base offset changed: bit rot)
// no longer matches the writer's index entry. The read fails with
// ErrCorrupt, as for damage elsewhere, and Health shows it as
// ErrReadCorrupt at that batch (not a stale index: the active segment's
// index is the writer's own), so a person learns of it; it clears once
// the batch reads fine again.
func TestActiveHeaderDamageInHealth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hl := &healthLog{}
	l := openLog(t, dir, Options{IndexIntervalBytes: 64, OnHealth: hl.report, SpaceProbeInterval: time.Hour})
	defer l.Close()
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	for i := range 20 {
		appendBatch(t, l, fmt.Sprintf("b%02d", i), 2)
	}
	p := l.topics[testTopic].parts[0]
	p.mu.Lock()
	s := p.segs[len(p.segs)-1]
	index := s.index
	p.mu.Unlock()
	if len(p.segs) != 1 || len(index) < 3 {
		t.Fatalf("%d segments, %d index entries; want one active segment with 3 entries or more", len(p.segs), len(index))
	}
	e := index[2]
	path := segmentPath(filepath.Join(dir, testTopic, "0"), 0, logExt)
	flipByte(16)(t, path, int64(e.pos)) // the base offset's low byte
	r, err := l.NewReader(testTopic, 0, s.base+int64(e.rel))
	noErr(t, err)
	defer r.Close()
	if _, err := r.Next(context.Background()); !errors.Is(err, intentlog.ErrCorrupt) {
		t.Fatalf("read of a damaged batch header in the active segment: %v, want ErrCorrupt", err)
	}
	h := l.Health()
	if !errors.Is(h, ErrReadCorrupt) || !strings.Contains(h.Error(), fmt.Sprintf("%s at position %d", path, e.pos)) {
		t.Fatalf("Health after a read met a damaged header in the active segment: %v; want ErrReadCorrupt at %s position %d", h, path, e.pos)
	}
	if n, last := hl.last(); n != 1 || !errors.Is(last, ErrReadCorrupt) {
		t.Fatalf("OnHealth: %d calls, last %v; want one with ErrReadCorrupt", n, last)
	}
	flipByte(16)(t, path, int64(e.pos)) // the bytes read fine again
	r2, err := l.NewReader(testTopic, 0, s.base+int64(e.rel))
	noErr(t, err)
	defer r2.Close()
	if _, err := r2.Next(context.Background()); err != nil {
		t.Fatalf("read once the header is sound: %v", err)
	}
	if h := l.Health(); h != nil {
		t.Fatalf("Health after the batch read fine again: %v", h)
	}
}
