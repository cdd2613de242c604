package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// TestCommitBeyondEnd: a commit of an offset beyond its partition's end
// (the next offset to be written) is refused whole with
// ErrOffsetOutOfRange naming the end, and changes nothing: committed, it
// would make the group skip the records appended later at the offsets
// below it. An offset at the end is taken, and a partition's end grows
// with its appends. A commit that reaches a topic deleted and created
// again with offsets of the old one (whose records the new one does not
// have) is refused too: the new topic's records are all read.
func TestCommitBeyondEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := openLog(t, "/log", Options{FS: vfs.NewMem()})
	defer l.Close()
	createTestTopic(t, l, 2, intentlog.TopicOptions{})
	for range 5 {
		noErr(t, l.Append(ctx, testTopic, []*intentlog.Record{{Key: keyOf(0, 2, "a"), Value: []byte("v")}}))
	}
	ends := map[int32]int64{}
	for p := range int32(2) {
		_, end, err := l.Bounds(ctx, testTopic, p)
		noErr(t, err)
		ends[p] = end
	}
	if ends[0] == 0 || ends[1] != 0 {
		t.Fatalf("ends %v: the test wants records in partition 0 only", ends)
	}
	committed := func(want map[int32]int64) {
		t.Helper()
		if got, err := l.Committed(ctx, "g", testTopic); err != nil || !maps.Equal(got, want) {
			t.Fatalf("Committed = %v, %v; want %v", got, err, want)
		}
	}
	noErr(t, l.Commit(ctx, "g", testTopic, map[int32]int64{0: ends[0], 1: 0}))
	committed(map[int32]int64{0: ends[0], 1: 0})
	for _, bad := range []struct {
		offsets map[int32]int64
		p       int32
	}{
		{map[int32]int64{0: ends[0] + 1}, 0},
		{map[int32]int64{0: ends[0] - 1, 1: 1}, 1},
		{map[int32]int64{1: 1 << 40}, 1},
	} {
		err := l.Commit(ctx, "g", testTopic, bad.offsets)
		want := fmt.Sprintf("partition %d offset %d: beyond the partition's end %d", bad.p, bad.offsets[bad.p], ends[bad.p])
		if !errors.Is(err, intentlog.ErrOffsetOutOfRange) || !strings.Contains(err.Error(), want) {
			t.Fatalf("Commit(%v): %v; want ErrOffsetOutOfRange saying %q", bad.offsets, err, want)
		}
	}
	committed(map[int32]int64{0: ends[0], 1: 0})
	noErr(t, l.Append(ctx, testTopic, []*intentlog.Record{{Key: keyOf(1, 2, "b"), Value: []byte("v")}}))
	noErr(t, l.Commit(ctx, "g", testTopic, map[int32]int64{1: 1}))
	committed(map[int32]int64{0: ends[0], 1: 1})

	// The topic is deleted and created again while a consumer of the old
	// one still commits its position.
	noErr(t, l.DeleteTopic(ctx, testTopic))
	createTestTopic(t, l, 2, intentlog.TopicOptions{})
	if err := l.Commit(ctx, "g", testTopic, map[int32]int64{0: ends[0]}); !errors.Is(err, intentlog.ErrOffsetOutOfRange) {
		t.Fatalf("a commit of the old topic's offset %d on the new one: %v; want ErrOffsetOutOfRange", ends[0], err)
	}
	committed(map[int32]int64{})
	var want []intentlog.Record
	for i := range ends[0] + 2 {
		rec := &intentlog.Record{Key: keyOf(0, 2, fmt.Sprint("new-", i)), Value: []byte("v")}
		noErr(t, l.Append(ctx, testTopic, []*intentlog.Record{rec}))
		want = append(want, *rec)
	}
	sameRecords(t, "the new topic read from its start", readFrom(t, l, 0, 0, int64(len(want))), want)
}

// TestCommitNeverBeyondRecoveredEnd: consumers that commit the positions
// their readers reached (the resolver, the event groups) never commit
// past what a crash keeps, since readers see only fsync'd records: after
// a power loss at a random point, with appends and commits under way,
// every committed offset is within the recovered partition (Open had
// none to lower: no warning), and the records appended after the
// restart are all read from it. Each round continues on what the
// previous crash left.
func TestCommitNeverBeyondRecoveredEnd(t *testing.T) {
	t.Parallel()
	for _, syncfs := range []bool{false, true} {
		t.Run(fmt.Sprintf("syncfs=%v", syncfs), func(t *testing.T) {
			t.Parallel()
			commitNeverBeyondRecoveredEnd(t, syncfs)
		})
	}
}

func commitNeverBeyondRecoveredEnd(t *testing.T, syncfs bool) {
	const (
		rounds = 15
		parts  = 2
	)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, uint64(map[bool]int{false: 1, true: 2}[syncfs])))
	fsys := vfs.NewMem()
	opts := Options{SegmentBytes: 1 << 10, IndexIntervalBytes: 128, RetentionCheckInterval: -1,
		Logger: slog.New(slog.DiscardHandler), SyncFilesystem: syncfs}
	for round := 0; ; round++ {
		opts.FS = fsys
		l := openLog(t, "/log", opts)
		if w := l.Warnings(); len(w) > 0 {
			t.Fatalf("round %d: Open lowered committed offsets: %q", round, w)
		}
		if round == 0 {
			createTestTopic(t, l, parts, intentlog.TopicOptions{})
		}
		committed, err := l.Committed(ctx, "g", testTopic)
		noErr(t, err)
		// Records appended now are read from the committed offsets.
		for p := range int32(parts) {
			start, end, err := l.Bounds(ctx, testTopic, p)
			noErr(t, err)
			from, ok := committed[p]
			if !ok {
				from = start
			}
			if from > end {
				t.Fatalf("round %d: partition %d committed %d beyond the recovered end %d", round, p, from, end)
			}
			rec := &intentlog.Record{Key: keyOf(p, parts, fmt.Sprintf("after-crash-%d", round)), Value: []byte("v")}
			noErr(t, l.Append(ctx, testTopic, []*intentlog.Record{rec}))
			got := readFrom(t, l, p, from, rec.Offset+1)
			if len(got) == 0 || string(got[len(got)-1].Key) != string(rec.Key) {
				t.Fatalf("round %d: partition %d read from the committed offset %d does not reach the record appended at %d",
					round, p, from, rec.Offset)
			}
		}

		if round == rounds {
			noErr(t, l.Close())
			return
		}
		// Appenders and, per partition, a consumer that commits the
		// position its reader reached, until the power loss, after a
		// random number of commits.
		var wg sync.WaitGroup
		var mu sync.Mutex
		n, want := 0, 1+rng.IntN(40)
		enough := make(chan struct{})
		for w := range 2 {
			wg.Go(func() {
				for i := 0; ; i++ {
					recs := make([]*intentlog.Record, 1+i%3)
					for j := range recs {
						recs[j] = &intentlog.Record{Key: fmt.Appendf(nil, "r%d-w%d-%d-%d", round, w, i, j), Value: []byte("value")}
					}
					if l.Append(ctx, testTopic, recs) != nil {
						return
					}
				}
			})
		}
		for p := range int32(parts) {
			wg.Go(func() {
				start, _, err := l.Bounds(ctx, testTopic, p)
				if err != nil {
					return
				}
				from, ok := committed[p]
				if !ok {
					from = start
				}
				r, err := l.NewReader(testTopic, p, from)
				if err != nil {
					return
				}
				defer r.Close()
				for {
					if _, err := r.Next(ctx); err != nil {
						return
					}
					if l.Commit(ctx, "g", testTopic, map[int32]int64{p: r.Position()}) != nil {
						return
					}
					mu.Lock()
					if n++; n == want {
						close(enough)
					}
					mu.Unlock()
				}
			})
		}
		<-enough
		if round%2 == 0 {
			fsys = fsys.Crash()
		} else {
			fsys = fsys.CrashTorn(rng)
		}
		_ = l.Close() // ends the readers waiting at the end
		wg.Wait()
	}
}

// keyOf returns a key starting with prefix that a topic of n partitions
// puts in partition p.
func keyOf(p, n int32, prefix string) []byte {
	for i := 0; ; i++ {
		if k := fmt.Appendf(nil, "%s-%d", prefix, i); intentlog.Partition(k, n) == p {
			return k
		}
	}
}
