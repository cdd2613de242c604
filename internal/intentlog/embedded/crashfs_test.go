package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/vfs"
)

// ack is an acknowledged record: Append returned nil for it.
type ack struct {
	p   int32
	off int64
}

// crashRun appends from several goroutines until the FS dies and records
// what was acknowledged.
type crashRun struct {
	mu    sync.Mutex
	acks  map[ack]string // key of each acknowledged record
	calls map[string]int // records per (call, partition) tag, for atomicity
	n     int            // acknowledged records this round
	cond  *sync.Cond
}

// crashKey encodes the call and partition-independent record index; the
// value repeats the key so damage shows.
func crashKey(round, w, i, j int) string { return fmt.Sprintf("r%d-w%d-%d-%d", round, w, i, j) }

// TestCrashDropsUnsynced appends concurrently, crashes the filesystem
// (dropping every byte not fsync'd and every directory entry not fsync'd,
// sometimes keeping a torn prefix of unsynced bytes) at a random point,
// reopens, and checks that every acknowledged record is there at its
// offset, intact, and that no Append call is half visible in a partition.
// Each round continues on what the previous crash left.
func TestCrashDropsUnsynced(t *testing.T) {
	t.Parallel()
	for _, syncfs := range []bool{false, true} { // an fsync per file, one syncfs per round
		t.Run(fmt.Sprintf("syncfs=%v", syncfs), func(t *testing.T) {
			t.Parallel()
			crashDropsUnsynced(t, syncfs)
		})
	}
}

func crashDropsUnsynced(t *testing.T, syncfs bool) {
	const (
		rounds  = 25
		parts   = crashParts
		writers = 4
	)
	rng := rand.New(rand.NewPCG(uint64(19), 12))
	fsys := vfs.NewMem()
	run := &crashRun{acks: map[ack]string{}, calls: map[string]int{}}
	run.cond = sync.NewCond(&run.mu)
	opts := Options{SegmentBytes: 2 << 10, IndexIntervalBytes: 256, RetentionCheckInterval: -1,
		Logger: slog.New(slog.DiscardHandler), SyncFilesystem: syncfs}
	for round := range rounds {
		opts.FS = fsys
		l := openLog(t, "/log", opts)
		if syncfs != (l.syncer != nil) {
			t.Fatalf("SyncFilesystem %v, syncer running %v", syncfs, l.syncer != nil)
		}
		if err := l.CreateTopic(context.Background(), testTopic, parts, intentlog.TopicOptions{}); err != nil {
			t.Fatalf("round %d: CreateTopic: %v", round, err)
		}
		run.check(t, l, parts, round)

		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() { run.append(l, round, w) })
		}
		// Crash after a random number of acknowledged records, with the
		// writers still appending: the crash lands mid-stream.
		want := 1 + rng.IntN(150)
		run.mu.Lock()
		for run.n < want {
			run.cond.Wait()
		}
		run.n = 0
		run.mu.Unlock()
		if round%2 == 0 {
			fsys = fsys.Crash()
		} else {
			fsys = fsys.CrashTorn(rng)
		}
		wg.Wait() // every writer stops at its first error: the dead FS
		_ = l.Close()
	}
	opts.FS = fsys
	l := openLog(t, "/log", opts)
	defer l.Close()
	total := run.check(t, l, parts, rounds)
	t.Logf("%d rounds, %d acknowledged records intact, %d records in all", rounds, len(run.acks), total)
}

func (run *crashRun) append(l *Log, round, w int) {
	for i := 0; ; i++ {
		recs := make([]*intentlog.Record, 1+(w+i)%4)
		for j := range recs {
			key := crashKey(round, w, i, j)
			recs[j] = &intentlog.Record{Key: []byte(key), Value: crashValue(key)}
		}
		run.mu.Lock()
		for j, r := range recs {
			run.calls[fmt.Sprintf("%s@%d", crashKey(round, w, i, j)[:strings.LastIndexByte(crashKey(round, w, i, j), '-')],
				intentlog.Partition(r.Key, crashParts))]++
		}
		run.mu.Unlock()
		err := l.Append(context.Background(), testTopic, recs)
		if err != nil {
			if !errors.Is(err, vfs.ErrCrashed) && !errors.Is(err, intentlog.ErrClosed) {
				panic(fmt.Sprintf("append failed for another reason than the crash: %v", err))
			}
			return
		}
		run.mu.Lock()
		for _, r := range recs {
			run.acks[ack{r.Partition, r.Offset}] = string(r.Key)
			run.n++
		}
		run.cond.Broadcast()
		run.mu.Unlock()
	}
}

// check reads every partition and checks the acknowledged records; it
// returns how many records the log holds.
func (run *crashRun) check(t *testing.T, l *Log, parts int32, round int) int {
	t.Helper()
	run.mu.Lock()
	defer run.mu.Unlock()
	found, total := 0, 0
	seen := map[string]int{}
	for p := range parts {
		for _, rec := range readAll(t, l, p) { // offsets contiguous from the start
			total++
			key := string(rec.Key)
			if string(rec.Value) != string(crashValue(key)) {
				t.Fatalf("round %d: partition %d offset %d key %q: value damaged", round, p, rec.Offset, key)
			}
			if k, ok := run.acks[ack{p, rec.Offset}]; ok {
				if k != key {
					t.Fatalf("round %d: partition %d offset %d holds %q, acknowledged %q", round, p, rec.Offset, key, k)
				}
				found++
			}
			call := key[:strings.LastIndexByte(key, '-')]
			seen[fmt.Sprintf("%s@%d", call, p)]++
		}
	}
	// Every index entry, sealed segments' read back from an .idx that a
	// crash may have cut or dropped, points at the batch it names.
	checkIndexes(t, l, fmt.Sprintf("round %d", round))
	if found != len(run.acks) {
		t.Fatalf("round %d: %d of %d acknowledged records missing after the crash", round, len(run.acks)-found, len(run.acks))
	}
	// All or nothing per Append call and partition: a call's records on a
	// partition share one batch.
	for tag, n := range seen {
		if want := run.calls[tag]; want != n {
			t.Fatalf("round %d: append call %s has %d of its %d records", round, tag, n, want)
		}
	}
	return total
}
