package eventbus

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

func ev(key string, v uint64, off int64) liveEvent {
	return newLiveEvent(off, &wailv1.ChangeEvent{Key: []byte(key), Version: v})
}

func row(key string, v uint64) snapshotRow {
	return snapshotRow{key: []byte(key), version: v, value: []byte("x")}
}

// versions lists what responses deliver: "key@version", "+" marking a
// snapshot row, and "cursor" for a message with only a cursor.
func versions(rs []*wailv1.SubscribeResponse) []string {
	var out []string
	for _, r := range rs {
		switch {
		case r.Event == nil:
			out = append(out, "cursor")
		case r.Snapshot:
			out = append(out, fmt.Sprintf("+%s@%d", r.Event.Key, r.Event.Version))
		default:
			out = append(out, fmt.Sprintf("%s@%d", r.Event.Key, r.Event.Version))
		}
	}
	return out
}

// TestStreamCoreSnapshot: the decisions of a snapshot, step by step.
func TestStreamCoreSnapshot(t *testing.T) {
	t.Parallel()
	type step struct {
		live    []liveEvent // on partition 0, then next = last offset + 1
		rows    []snapshotRow
		settle  []string // keys, with mark {settleAt}
		at      int64
		scanned bool
		want    []string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"an event before the row, at its version: the row is dropped", []step{
			{live: []liveEvent{ev("a", 5, 10)}, want: []string{"a@5"}},
			{rows: []snapshotRow{row("a", 5), row("b", 3)}, want: []string{"+b@3"}},
		}},
		{"an older event after the row is dropped, a newer one passes", []step{
			{rows: []snapshotRow{row("a", 5)}, want: []string{"+a@5"}},
			{live: []liveEvent{ev("a", 4, 10), ev("a", 5, 11), ev("a", 6, 12)}, want: []string{"a@6"}},
		}},
		{"a tombstone is not delivered but holds older events back", []step{
			{rows: []snapshotRow{{key: []byte("a"), version: 5, deleted: true}}},
			{live: []liveEvent{ev("a", 4, 10), ev("a", 7, 11)}, want: []string{"a@7"}},
		}},
		{"a tombstone replaces an older state the stream delivered", []step{
			{live: []liveEvent{ev("a", 4, 10)}, want: []string{"a@4"}},
			{rows: []snapshotRow{{key: []byte("a"), version: 5, deleted: true}}, want: []string{"+a@5"}},
			{live: []liveEvent{ev("a", 5, 11)}},
		}},
		{"a chunk is forgotten at its mark only; the end of the snapshot gives the first cursor", []step{
			{rows: []snapshotRow{row("a", 5)}, want: []string{"+a@5"}},
			{settle: []string{"a"}, at: 20, scanned: true},
			{live: []liveEvent{ev("a", 3, 10)}}, // still held back: before the mark
			{live: []liveEvent{ev("b", 1, 19)}, want: []string{"b@1", "cursor"}},
			{live: []liveEvent{ev("a", 9, 20)}, want: []string{"a@9"}},
		}},
	}
	for _, tc := range tests {
		c := newStreamCore("t", []int64{0}, nil, 100)
		over := false
		for i, s := range tc.steps {
			var got []*wailv1.SubscribeResponse
			var err error
			switch {
			case s.live != nil:
				got, err = c.live(0, s.live, s.live[len(s.live)-1].offset+1)
			case s.rows != nil:
				got, err = c.rows(s.rows)
			}
			if err != nil {
				t.Fatalf("%s: step %d: %v", tc.name, i, err)
			}
			if s.settle != nil {
				got = append(got, c.settled(s.settle, []int64{s.at}, nil)...)
			}
			if s.scanned {
				got = append(got, c.scanned()...)
			}
			if v := versions(got); !slices.Equal(v, s.want) {
				t.Fatalf("%s: step %d: sent %v, want %v", tc.name, i, v, s.want)
			}
			for _, r := range got {
				over = over || r.Event == nil
				if (r.Cursor != "") != over {
					t.Fatalf("%s: step %d: %v has cursor %q; the snapshot is over: %v", tc.name, i, r.Event, r.Cursor, over)
				}
			}
		}
	}
}

// TestStreamCoreSnapshotLimit: a filter that would hold more keys than
// allowed fails the stream (ErrSnapshotBusy); forgetting a chunk makes
// room again.
func TestStreamCoreSnapshotLimit(t *testing.T) {
	t.Parallel()
	c := newStreamCore("t", []int64{0}, nil, 2)
	if _, err := c.rows([]snapshotRow{row("a", 1), row("b", 1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.live(0, []liveEvent{ev("c", 1, 0)}, 1); !errors.Is(err, ErrSnapshotBusy) {
		t.Fatalf("a third key: %v, want ErrSnapshotBusy", err)
	}
	c.settled([]string{"a", "b"}, []int64{1}, nil)
	if _, err := c.live(0, []liveEvent{ev("c", 1, 1)}, 2); err != nil {
		t.Fatalf("after the chunk was forgotten: %v", err)
	}
}

// TestStreamCoreUntil: an until-end stream delivers nothing at or past
// each partition's end, and is done once every partition reached it,
// through gaps as well as events.
func TestStreamCoreUntil(t *testing.T) {
	t.Parallel()
	c := newStreamCore("t", []int64{0, 5}, []int64{3, 6}, 0)
	got, _ := c.live(0, []liveEvent{ev("a", 1, 0), ev("a", 2, 3)}, 4)
	if v := versions(got); !slices.Equal(v, []string{"a@1"}) || c.pos[0] != 3 {
		t.Fatalf("sent %v, position %d; want a@1 and 3", v, c.pos[0])
	}
	if c.done() {
		t.Fatal("done before partition 1 reached its end")
	}
	if got, _ := c.live(1, nil, 6); len(got) != 0 || !c.done() { // a gap (a tombstone, a marker) to the end
		t.Fatalf("after partition 1's gap: sent %v, done %v", versions(got), c.done())
	}
	if cur, err := ParseCursor(c.cursor(), "t", 2); err != nil || !slices.Equal(cur.Offsets, []int64{3, 6}) {
		t.Fatalf("final cursor %v, %v; want the ends", cur, err)
	}
}

// TestStreamCoreUntilEmptyPartition: a partition that was empty when an
// until-end stream started (its end is offset 0) delivers nothing of what
// is written to it later, and the stream's cursor keeps it at 0.
func TestStreamCoreUntilEmptyPartition(t *testing.T) {
	t.Parallel()
	c := newStreamCore("t", []int64{0, 0}, []int64{0, 1}, 0)
	if got, _ := c.live(0, []liveEvent{ev("late", 1, 0), ev("late", 2, 1)}, 2); len(got) != 0 || c.pos[0] != 0 {
		t.Fatalf("partition 0, empty at the start: sent %v, position %d; want nothing and 0", versions(got), c.pos[0])
	}
	if c.done() {
		t.Fatal("done before partition 1 reached its end")
	}
	got, _ := c.live(1, []liveEvent{ev("a", 1, 0)}, 1)
	if v := versions(got); !slices.Equal(v, []string{"a@1"}) || !c.done() {
		t.Fatalf("partition 1: sent %v, done %v; want a@1 and done", v, c.done())
	}
	if cur, err := ParseCursor(c.cursor(), "t", 2); err != nil || !slices.Equal(cur.Offsets, []int64{0, 1}) {
		t.Fatalf("final cursor %v, %v; want the ends [0 1]", cur, err)
	}
}

// TestStreamCoreEventCursors: each event's cursor resumes right after it
// (one past its offset, through gaps in the offsets), and the position
// after a batch is the reader's.
func TestStreamCoreEventCursors(t *testing.T) {
	t.Parallel()
	c := newStreamCore("t", []int64{0, 7}, nil, 0)
	got, err := c.live(0, []liveEvent{ev("a", 1, 5), ev("b", 2, 9)}, 12)
	if err != nil {
		t.Fatal(err)
	}
	if v := versions(got); !slices.Equal(v, []string{"a@1", "b@2"}) {
		t.Fatalf("sent %v, want a@1 b@2", v)
	}
	for i, want := range [][]int64{{6, 7}, {10, 7}} {
		if cur, err := ParseCursor(got[i].Cursor, "t", 2); err != nil || !slices.Equal(cur.Offsets, want) {
			t.Errorf("cursor of %s: %v, %v; want %v", versions(got[i:i+1]), cur.Offsets, err, want)
		}
	}
	if cur, err := ParseCursor(c.cursor(), "t", 2); err != nil || !slices.Equal(cur.Offsets, []int64{12, 7}) {
		t.Fatalf("cursor after the batch: %v, %v; want [12 7]", cur.Offsets, err)
	}
}
