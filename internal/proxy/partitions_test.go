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
	w.rows["old"] = store.Row{Version: hlc.At(time.Now().Add(time.Hour))} // its write is superseded
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
}
