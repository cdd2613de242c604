package embedded

import (
	"context"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// TestClockGoesBack: when the clock steps back, batch timestamps stay where
// they were (they never decrease within a partition, also across a
// restart), so OffsetForTime never returns an offset after a record whose
// timestamp is >= the asked time.
func TestClockGoesBack(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock.ns.Store(t0.UnixNano())
	dir := t.TempDir()
	opts := Options{Now: clock.Now}
	l := openLog(t, dir, opts)
	createTestTopic(t, l, 1, intentlog.TopicOptions{})
	var want []intentlog.Record
	// Forward, back by an hour, forward a little (still behind), and after
	// a restart back again.
	steps := []time.Duration{0, time.Second, -time.Hour, time.Minute, -time.Hour}
	for i, d := range steps {
		if i == len(steps)-1 {
			noErr(t, l.Close())
			l = openLog(t, dir, opts)
		}
		clock.Advance(d)
		want = append(want, appendBatch(t, l, string(rune('a'+i)), 2)...)
	}
	defer l.Close()
	newest := t0.Add(time.Second)
	for i, r := range want {
		if i > 0 && r.Timestamp.Before(want[i-1].Timestamp) {
			t.Fatalf("record %d timestamp %v before record %d's %v: timestamps went back", i, r.Timestamp, i-1, want[i-1].Timestamp)
		}
		if i >= 4 && !r.Timestamp.Equal(newest) {
			t.Fatalf("record %d after the clock stepped back: timestamp %v, want the newest so far %v", i, r.Timestamp, newest)
		}
	}
	got := readAll(t, l, 0)
	sameRecords(t, "read back", got, want)
	ctx := context.Background()
	for _, c := range []struct {
		at   time.Time
		want int64
	}{
		{t0.Add(-2 * time.Hour), 0},
		{t0, 0},
		{t0.Add(time.Millisecond), 2},
		{newest, 2},
		{newest.Add(time.Microsecond), int64(len(want))},
		{newest.Add(time.Nanosecond), int64(len(want))}, // rounded up to the next microsecond
	} {
		if off, err := l.OffsetForTime(ctx, testTopic, 0, c.at); err != nil || off != c.want {
			t.Errorf("OffsetForTime(%v) = %d, %v; want %d", c.at, off, err, c.want)
		}
	}
}

// TestClockGoesBackAcrossTopics: timestamps never go back across the
// log's partitions either, also across a restart: a record appended after
// another was read is stamped no earlier, whatever its topic, so that a
// scan of one topic from a record's timestamp in another finds what was
// written after that record (the resolver scans the event bus and the
// dead-letter topic from an intent's timestamp). Before, each partition
// kept its own newest timestamp, and after the clock stepped back an idle
// partition stamped a record up to the step earlier than one of another
// partition read before it was written.
func TestClockGoesBackAcrossTopics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &fakeClock{}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock.ns.Store(t0.UnixNano())
	dir := t.TempDir()
	opts := Options{Now: clock.Now}
	l := openLog(t, dir, opts)
	stamp := func(topic string) time.Time {
		t.Helper()
		if err := l.CreateTopic(ctx, topic, 1, intentlog.TopicOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := l.Append(ctx, topic, []*intentlog.Record{{Key: []byte("k"), Value: []byte("v")}}); err != nil {
			t.Fatal(err)
		}
		rd, err := l.NewReader(topic, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		recs, err := rd.Next(ctx)
		if err != nil || len(recs) != 1 {
			t.Fatalf("read %s: %v, %v", topic, recs, err)
		}
		return recs[0].Timestamp
	}
	if ts := stamp("a"); !ts.Equal(t0) {
		t.Fatalf("first record stamped %v, want %v", ts, t0)
	}
	clock.Advance(-time.Hour)
	if ts := stamp("b"); ts.Before(t0) {
		t.Errorf("a record of another topic after the clock stepped back stamped %v, before %v", ts, t0)
	}
	noErr(t, l.Close())
	l = openLog(t, dir, opts)
	defer l.Close()
	if ts := stamp("c"); ts.Before(t0) {
		t.Errorf("after a restart, a record of a new topic stamped %v, before %v", ts, t0)
	}
}
