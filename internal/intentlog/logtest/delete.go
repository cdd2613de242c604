package logtest

import (
	"errors"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// testDeleteTopic: a deleted topic is gone with its records and committed
// offsets, other topics are untouched, deleting is idempotent, and the name
// can be created again, empty, with another partition count.
func (s *suite) testDeleteTopic(t *testing.T) {
	dir := t.TempDir()
	l := s.openLog(t, dir)
	ctx := ctxT(t)
	topic, other := s.topic(t, ""), s.topic(t, "-other")
	createTopic(t, l, topic, 2)
	createTopic(t, l, other, 2)
	appendRecs(t, l, topic, []*intentlog.Record{keyed("a", "1"), keyed("b", "2"), keyed("c", "3")})
	appendRecs(t, l, other, []*intentlog.Record{keyed("a", "kept")})
	group := "g-" + s.runID
	for _, tp := range []string{topic, other} {
		// Each partition's end: the embedded log refuses an offset
		// beyond it.
		offs := map[int32]int64{}
		for p := range int32(2) {
			_, end, err := l.Bounds(ctx, tp, p)
			if err != nil {
				t.Fatalf("Bounds %s/%d: %v", tp, p, err)
			}
			offs[p] = end
		}
		if err := l.Commit(ctx, group, tp, offs); err != nil {
			t.Fatalf("Commit %s: %v", tp, err)
		}
	}
	for i := range 2 {
		if err := l.DeleteTopic(ctx, topic); err != nil {
			t.Fatalf("DeleteTopic #%d: %v", i+1, err)
		}
	}
	if _, err := l.Partitions(ctx, topic); !errors.Is(err, intentlog.ErrUnknownTopic) {
		t.Errorf("Partitions of a deleted topic: %v, want ErrUnknownTopic", err)
	}
	if err := l.Append(ctx, topic, []*intentlog.Record{keyed("k", "v")}); !errors.Is(err, intentlog.ErrUnknownTopic) {
		t.Errorf("Append to a deleted topic: %v, want ErrUnknownTopic", err)
	}
	if err := l.DeleteTopic(ctx, s.topic(t, "-never")); err != nil {
		t.Errorf("DeleteTopic of a topic never created: %v", err)
	}
	checkOther := func(when string) {
		t.Helper()
		var n int64
		for p := range int32(2) {
			_, end, err := l.Bounds(ctx, other, p)
			if err != nil {
				t.Fatalf("%s: Bounds of the other topic: %v", when, err)
			}
			n += end
		}
		if got, err := l.Committed(ctx, group, other); n != 1 || err != nil || len(got) != 2 {
			t.Errorf("%s: the other topic has %d records and committed offsets %v, %v; want 1 and 2 partitions", when, n, got, err)
		}
	}
	checkOther("after delete")

	createTopic(t, l, topic, 3)
	for p := range int32(3) {
		if start, end, err := l.Bounds(ctx, topic, p); err != nil || start != 0 || end != 0 {
			t.Errorf("partition %d of the re-created topic: Bounds = %d, %d, %v; want 0, 0", p, start, end, err)
		}
	}
	if got, err := l.Committed(ctx, group, topic); err != nil || len(got) != 0 {
		t.Errorf("Committed on the re-created topic = %v, %v; want none", got, err)
	}
	appendRecs(t, l, topic, []*intentlog.Record{keyed("a", "new")})
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	l = s.openLog(t, dir)
	var n int64
	for p := range int32(3) {
		_, end, err := l.Bounds(ctx, topic, p)
		if err != nil {
			t.Fatalf("after reopen: Bounds of the re-created topic: %v", err)
		}
		n += end
	}
	if n != 1 {
		t.Errorf("after reopen: the re-created topic has %d records, want 1", n)
	}
	checkOther("after reopen")
}
