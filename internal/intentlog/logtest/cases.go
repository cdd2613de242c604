package logtest

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
)

func (s *suite) testTopicAdmin(t *testing.T) {
	l := s.openLog(t, t.TempDir())
	ctx := ctxT(t)
	topic, missing := s.topic(t, ""), s.topic(t, "-missing")
	for i := range 2 {
		if err := l.CreateTopic(ctx, topic, 3, intentlog.TopicOptions{}); err != nil {
			t.Fatalf("CreateTopic #%d: %v", i+1, err)
		}
	}
	err := l.CreateTopic(ctx, topic, 4, intentlog.TopicOptions{})
	if !errors.Is(err, intentlog.ErrPartitionMismatch) {
		t.Errorf("CreateTopic with 4 partitions over 3: %v, want ErrPartitionMismatch", err)
	}
	if n, err := l.Partitions(ctx, topic); err != nil || n != 3 {
		t.Errorf("Partitions = %d, %v; want 3", n, err)
	}
	if _, err := l.Partitions(ctx, missing); !errors.Is(err, intentlog.ErrUnknownTopic) {
		t.Errorf("Partitions of unknown topic: %v, want ErrUnknownTopic", err)
	}
	if err := l.Append(ctx, missing, []*intentlog.Record{keyed("k", "v")}); !errors.Is(err, intentlog.ErrUnknownTopic) {
		t.Errorf("Append to unknown topic: %v, want ErrUnknownTopic", err)
	}
	if _, _, err := l.Bounds(ctx, missing, 0); !errors.Is(err, intentlog.ErrUnknownTopic) {
		t.Errorf("Bounds of unknown topic: %v, want ErrUnknownTopic", err)
	}
	for p := range int32(3) {
		if start, end, err := l.Bounds(ctx, topic, p); err != nil || start != 0 || end != 0 {
			t.Errorf("partition %d: Bounds of a new topic = %d, %d, %v; want 0, 0", p, start, end, err)
		}
	}
}

// testOrdering appends keyed records from several goroutines, then checks
// partitioning, contiguous offsets and per-call and per-goroutine order, and
// reads everything back.
func (s *suite) testOrdering(t *testing.T) {
	const parts, workers, calls, perCall, keys = 4, 6, 12, 5, 20
	l := s.openLog(t, t.TempDir())
	topic := s.topic(t, "")
	createTopic(t, l, topic, parts)
	ctx := ctxT(t)
	sent := make([][][]intentlog.Record, workers) // [worker][call][i]
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for c := range calls {
				recs := make([]*intentlog.Record, perCall)
				for i := range recs {
					recs[i] = keyed(fmt.Sprintf("key-%02d", rng.IntN(keys)), fmt.Sprintf("w%d-c%d-r%d", w, c, i))
					recs[i].Headers = []intentlog.Header{{Key: "worker", Value: []byte{byte(w)}}}
				}
				if err := l.Append(ctx, topic, recs); err != nil {
					t.Errorf("worker %d call %d: Append: %v", w, c, err)
					return
				}
				call := make([]intentlog.Record, perCall)
				for i, r := range recs {
					call[i] = *r
				}
				sent[w] = append(sent[w], call)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	byPart := checkAppended(t, sent, parts)
	for p := range int32(parts) {
		n := int64(len(byPart[p]))
		for off := range n {
			if _, ok := byPart[p][off]; !ok {
				t.Fatalf("partition %d: offsets not contiguous: %d missing among %d records", p, off, n)
			}
		}
		if start, end, err := l.Bounds(ctx, topic, p); err != nil || start != 0 || end != n {
			t.Errorf("partition %d: Bounds = %d, %d, %v; want 0, %d", p, start, end, err, n)
		}
		for _, got := range readRange(t, l, topic, p, 0, n) {
			want := byPart[p][got.Offset]
			if d := diffRecord(&want, &got); d != "" {
				t.Errorf("partition %d offset %d key %q: read back: %s", p, got.Offset, want.Key, d)
			}
		}
	}
}

// checkAppended checks what Append filled in and returns the records by
// partition and offset.
func checkAppended(t *testing.T, sent [][][]intentlog.Record, parts int32) map[int32]map[int64]intentlog.Record {
	t.Helper()
	byPart := map[int32]map[int64]intentlog.Record{}
	for p := range parts {
		byPart[p] = map[int64]intentlog.Record{}
	}
	for w, calls := range sent {
		lastOfWorker := map[int32]int64{}
		for c, call := range calls {
			lastOfCall := map[int32]int64{}
			for i, r := range call {
				where := fmt.Sprintf("worker %d call %d record %d (key %q) at %d/%d", w, c, i, r.Key, r.Partition, r.Offset)
				if want := intentlog.Partition(r.Key, parts); r.Partition != want {
					t.Fatalf("%s: partition %d, want Partition(key) = %d", where, r.Partition, want)
				}
				if r.Timestamp.IsZero() {
					t.Errorf("%s: Append left Timestamp zero", where)
				}
				if prev, ok := byPart[r.Partition][r.Offset]; ok {
					t.Fatalf("%s: offset already taken by key %q value %q", where, prev.Key, prev.Value)
				}
				if last, ok := lastOfCall[r.Partition]; ok && r.Offset <= last {
					t.Errorf("%s: offset not after %d of an earlier record of the same call", where, last)
				}
				if last, ok := lastOfWorker[r.Partition]; ok && r.Offset <= last {
					t.Errorf("%s: offset not after %d of an earlier call of the same goroutine", where, last)
				}
				lastOfCall[r.Partition] = r.Offset
				byPart[r.Partition][r.Offset] = r
			}
			maps.Copy(lastOfWorker, lastOfCall)
		}
	}
	return byPart
}

// durabilityRecords covers nil and empty keys, values and header values,
// binary data and a large value.
func durabilityRecords() []*intentlog.Record {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	recs := []*intentlog.Record{
		{Key: []byte("headers"), Value: []byte("v"), Headers: []intentlog.Header{
			{Key: "a", Value: []byte("1")}, {Key: "empty", Value: []byte{}}, {Key: "nil"}, {Key: "", Value: []byte("x")}}},
		{Key: nil, Value: []byte("nil key")},
		{Key: []byte{}, Value: []byte("empty key")},
		{Key: []byte("tombstone"), Value: nil},
		{Key: []byte("empty value"), Value: []byte{}},
		{Key: all, Value: all},
		{Key: []byte("big"), Value: random(300 << 10)},
	}
	for i := range 40 {
		recs = append(recs, &intentlog.Record{Key: fmt.Appendf(nil, "k%d", i%13), Value: random(rng.IntN(200))})
	}
	return recs
}

func (s *suite) testDurability(t *testing.T) {
	const parts = 3
	dir := t.TempDir()
	l := s.openLog(t, dir)
	topic := s.topic(t, "")
	createTopic(t, l, topic, parts)
	recs := durabilityRecords()
	appendRecs(t, l, topic, recs[:len(recs)/2])
	appendRecs(t, l, topic, recs[len(recs)/2:])
	want := map[int32][]intentlog.Record{}
	for _, r := range recs {
		want[r.Partition] = append(want[r.Partition], *r)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for round := 1; round <= 2; round++ {
		l = s.openLog(t, dir)
		ctx := ctxT(t)
		if n, err := l.Partitions(ctx, topic); err != nil || n != parts {
			t.Fatalf("reopen %d: Partitions = %d, %v; want %d", round, n, err, parts)
		}
		for p := range int32(parts) {
			n := int64(len(want[p]))
			if start, end, err := l.Bounds(ctx, topic, p); err != nil || start != 0 || end != n {
				t.Fatalf("reopen %d partition %d: Bounds = %d, %d, %v; want 0, %d", round, p, start, end, err, n)
			}
			for i, got := range readRange(t, l, topic, p, 0, n) {
				if d := diffRecord(&want[p][i], &got); d != "" {
					t.Errorf("reopen %d partition %d offset %d key %s: %s", round, p, i, show(want[p][i].Key), d)
				}
			}
		}
		// Appends after a reopen continue the offsets.
		more := keyed(fmt.Sprintf("after-%d", round), "more")
		appendRecs(t, l, topic, []*intentlog.Record{more})
		if n := int64(len(want[more.Partition])); more.Offset != n {
			t.Errorf("reopen %d: append after reopen got %d/%d, want offset %d", round, more.Partition, more.Offset, n)
		}
		want[more.Partition] = append(want[more.Partition], *more)
		if err := l.Close(); err != nil {
			t.Fatalf("reopen %d: Close: %v", round, err)
		}
	}
}

func (s *suite) testBoundsAndOffsetForTime(t *testing.T) {
	l := s.openLog(t, t.TempDir())
	ctx := ctxT(t)
	topic := s.topic(t, "")
	createTopic(t, l, topic, 1)
	if off, err := l.OffsetForTime(ctx, topic, 0, time.Now()); err != nil || off != 0 {
		t.Errorf("OffsetForTime on an empty partition = %d, %v; want 0", off, err)
	}
	if _, err := l.OffsetForTime(ctx, s.topic(t, "-missing"), 0, time.Now()); !errors.Is(err, intentlog.ErrUnknownTopic) {
		t.Errorf("OffsetForTime of unknown topic: %v, want ErrUnknownTopic", err)
	}
	var recs []intentlog.Record
	for round := range 4 {
		if round > 0 {
			time.Sleep(3 * time.Millisecond) // distinct timestamps even at ms precision
		}
		batch := []*intentlog.Record{keyed("a", "1"), keyed("b", "2"), keyed("c", "3")}
		appendRecs(t, l, topic, batch)
		for _, r := range batch {
			recs = append(recs, *r)
		}
	}
	n := int64(len(recs))
	if start, end, err := l.Bounds(ctx, topic, 0); err != nil || start != 0 || end != n {
		t.Fatalf("Bounds = %d, %d, %v; want 0, %d", start, end, err, n)
	}
	if lost, err := l.Lost(ctx, topic, 0); err != nil || len(lost) != 0 {
		t.Errorf("Lost = %v, %v; want no offsets lost", lost, err)
	}
	first, last := recs[0].Timestamp, recs[n-1].Timestamp
	check := func(at time.Time, want int64, exact bool, what string) {
		t.Helper()
		got, err := l.OffsetForTime(ctx, topic, 0, at)
		switch {
		case err != nil:
			t.Errorf("OffsetForTime(%s): %v", what, err)
		case got > want || (exact && got != want):
			t.Errorf("OffsetForTime(%s = %v) = %d, want %d", what, at, got, want)
		}
	}
	check(first.Add(-time.Hour), 0, true, "before all")
	check(last.Add(time.Hour), n, true, "after all")
	monotonic := slices.IsSortedFunc(recs, func(a, b intentlog.Record) int { return a.Timestamp.Compare(b.Timestamp) })
	for _, r := range recs {
		for _, at := range []time.Time{r.Timestamp, r.Timestamp.Add(time.Nanosecond)} {
			want := int64(slices.IndexFunc(recs, func(x intentlog.Record) bool { return !x.Timestamp.Before(at) }))
			if want < 0 {
				want = n
			}
			check(at, want, monotonic, fmt.Sprintf("timestamp around offset %d", r.Offset))
		}
	}
}

func (s *suite) testCommittedOffsets(t *testing.T) {
	dir := t.TempDir()
	l := s.openLog(t, dir)
	ctx := ctxT(t)
	a, b := s.topic(t, "-a"), s.topic(t, "-b")
	createTopic(t, l, a, 3)
	createTopic(t, l, b, 3)
	// Records first, so that every committed offset is within its partition
	// (the embedded log lowers an offset beyond the end at Open).
	for _, topic := range []string{a, b} {
		recs := make([]*intentlog.Record, 100)
		for i := range recs {
			recs[i] = keyed(fmt.Sprint("k", i), "v")
		}
		appendRecs(t, l, topic, recs)
	}
	commit := func(l intentlog.Log, group, topic string, offs map[int32]int64) {
		t.Helper()
		if err := l.Commit(ctx, group, topic, offs); err != nil {
			t.Fatalf("Commit(%s, %s, %v): %v", group, topic, offs, err)
		}
	}
	commit(l, "g1", a, map[int32]int64{0: 5, 1: 7})
	commit(l, "g2", a, map[int32]int64{0: 1})
	commit(l, "g1", a, map[int32]int64{1: 9}) // merges with partition 0's
	commit(l, "g1", b, map[int32]int64{2: 3})
	want := map[string]map[int32]int64{
		"g1/" + a: {0: 5, 1: 9}, "g2/" + a: {0: 1}, "g3/" + a: {},
		"g1/" + b: {2: 3}, "g2/" + b: {},
	}
	check := func(l intentlog.Log, when string) {
		t.Helper()
		for _, key := range slices.Sorted(maps.Keys(want)) {
			group, topic, _ := strings.Cut(key, "/")
			got, err := l.Committed(ctx, group, topic)
			if err != nil {
				t.Fatalf("%s: Committed(%s, %s): %v", when, group, topic, err)
			}
			if !maps.Equal(got, want[key]) {
				t.Errorf("%s: Committed(%s, %s) = %v, want %v (never-committed partitions absent)",
					when, group, topic, got, want[key])
			}
		}
	}
	check(l, "before reopen")
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	l = s.openLog(t, dir)
	check(l, "after reopen")
	commit(l, "g2", a, map[int32]int64{2: 4})
	want["g2/"+a] = map[int32]int64{0: 1, 2: 4}
	check(l, "after reopen and commit")
}
