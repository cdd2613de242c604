package proxy

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/store"
)

// TestPartitionWrites: each write counts on its key's partition (Kafka's
// partitioner), tables apart; a table altered to more partitions (1024)
// while writers add keeps every count; no table, no counts.
func TestPartitionWrites(t *testing.T) {
	t.Parallel()
	var w PartitionWrites
	if got := w.Table("none"); got != nil {
		t.Fatalf("a table never written: %v", got)
	}
	want := make([]uint64, 1024)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				key := fmt.Appendf(nil, "k-%d-%d", g, i)
				parts := int32(8)
				if i >= 1000 { // altered from 8 to 1024 partitions halfway
					parts = 1024
				}
				w.add("t", parts, key)
				mu.Lock()
				want[intentlog.Partition(key, parts)]++
				mu.Unlock()
			}
		})
	}
	w.add("u", 4, []byte("x"))
	wg.Wait()
	got := w.Table("t")
	last := len(want)
	for last > 0 && want[last-1] == 0 {
		last--
	}
	if !slices.Equal(got, want[:last]) {
		t.Errorf("counts by partition differ: got %d partitions, want %d", len(got), last)
	}
	var sum uint64
	for _, n := range got {
		sum += n
	}
	if sum != 16000 {
		t.Errorf("%d writes counted, want 16000", sum)
	}
	if u := w.Table("u"); len(u) != int(intentlog.Partition([]byte("x"), 4))+1 || u[len(u)-1] != 1 {
		t.Errorf("table u: %v", u)
	}
}

// TestWritePathCountsPartitions: the write path counts the writes it
// acknowledges (stored, superseded) per partition, not those it refuses,
// as wail_proxy_mutations_total counts them.
func TestWritePathCountsPartitions(t *testing.T) {
	t.Parallel()
	w := &world{}
	m := NewMetrics(nil)
	p := newMeteredProxy(t, w, time.Second, m)
	w.Rows["old"] = store.Row{Version: hlc.At(time.Now().Add(time.Hour))} // its write is superseded
	res := p.Write(t.Context(), []Mutation{
		{Table: "tx", Key: []byte("a"), Value: []byte("1")},
		{Table: "tx", Key: []byte("b"), Value: []byte("2")},
		{Table: "tx", Key: []byte("old"), Value: []byte("3")},
		{Table: "tx", Key: []byte("too-long-key"), Value: []byte("4")}, // refused
		{Table: "nope", Key: []byte("a")},                              // refused
	})
	if res[2].Err != nil || !res[2].Superseded || res[3].Err == nil || res[4].Err == nil {
		t.Fatalf("results %+v", res)
	}
	if got := m.PartitionWrites().Table("tx"); !slices.Equal(got, []uint64{3}) {
		t.Errorf("tx by partition %v, want [3]", got)
	}
	if got := m.PartitionWrites().Table("nope"); got != nil {
		t.Errorf("an unknown table counted: %v", got)
	}
	// Writes that failed after they were checked are not counted either.
	for _, fail := range []func(){
		func() { w.StErr = errStoreDown },
		func() { w.StErr, w.LogFails = nil, true },
	} {
		w.Mu.Lock()
		fail()
		w.Mu.Unlock()
		if r := p.Write(t.Context(), []Mutation{{Table: "tx", Key: []byte("c"), Value: []byte("5")}})[0]; r.Err == nil {
			t.Fatalf("result %+v, want a failed write", r)
		}
		if got := m.PartitionWrites().Table("tx"); !slices.Equal(got, []uint64{3}) {
			t.Errorf("tx by partition %v after a failed write, want [3]", got)
		}
	}
}

// keyIn returns a key that Kafka's partitioner puts at partition p or
// above of n.
func keyIn(t *testing.T, p, n int32) []byte {
	t.Helper()
	for i := range 100000 {
		if k := fmt.Appendf(nil, "k%d", i); intentlog.Partition(k, n) >= p {
			return k
		}
	}
	t.Fatalf("no key at partition %d or above of %d", p, n)
	return nil
}

// TestPartitionWritesGrowth: a table altered from one chunk's worth of
// partitions (64) to two (128) grows its counters at the first write to
// the second chunk; the counters take one chunk per 64 partitions, no
// more (a table of 1024 partitions holds 16 chunks, not one more, not a
// chunk per partition); a table whose counters exist while no write has
// landed yet (Table racing the first add, between its grow and its Add)
// reads as no counts, before its grow too; the first write of a table
// makes the counters of all its partitions.
func TestPartitionWritesGrowth(t *testing.T) {
	t.Parallel()
	var w PartitionWrites
	w.add("t", 64, []byte("a"))
	k := keyIn(t, 64, 128)
	w.add("t", 128, k) // the first write to partition 64 or above
	got := w.Table("t")
	if p := intentlog.Partition(k, 128); len(got) != int(p)+1 || got[p] != 1 {
		t.Fatalf("after the table grew to 128 partitions: %v, want a count at partition %d", got, p)
	}

	for _, tc := range []struct{ partitions, chunks int }{{1, 1}, {63, 1}, {64, 1}, {65, 2}, {128, 2}, {1024, 16}} {
		pc := &partitionCounts{}
		if n := len(*w.grow(pc, tc.partitions)); n != tc.chunks {
			t.Errorf("%d partitions: %d chunks of %d counters, want %d", tc.partitions, n, chunkSize, tc.chunks)
		}
	}

	pc := &partitionCounts{}
	w.tables.Store("racing", pc)
	if got := w.Table("racing"); got != nil {
		t.Errorf("counters not grown yet: %v, want none", got)
	}
	w.grow(pc, 8)
	if got := w.Table("racing"); len(got) != 0 {
		t.Errorf("counters grown, nothing added: %v, want none", got)
	}

	// The first write makes the counters of every partition of the table
	// (16 chunks for 1024 partitions), whichever partition it counts on:
	// later writes never grow them (lock, allocation), whatever their key.
	w.add("first", 1024, []byte("a"))
	c, _ := w.tables.Load("first")
	if n := len(*c.(*partitionCounts).chunks.Load()); n != 16 {
		t.Errorf("after the first write of a table of 1024 partitions: %d chunks, want 16", n)
	}
}

// TestPartitionWritesAllocs: once a table's counters exist, counting a
// write allocates nothing (and takes no lock: only growing does), and a
// read of the counts allocates its one slice. Every acknowledged write
// counts, and the console reads every table each tick.
func TestPartitionWritesAllocs(t *testing.T) {
	var w PartitionWrites
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("c"), keyIn(t, 512, 1024)}
	for _, k := range keys {
		w.add("t", 1024, k)
	}
	if n := testing.AllocsPerRun(100, func() {
		for _, k := range keys {
			w.add("t", 1024, k)
		}
	}); n != 0 {
		t.Errorf("add allocates %.1f times once the counters exist, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { w.Table("t") }); n != 1 {
		t.Errorf("Table allocates %.1f times, want 1", n)
	}
}
