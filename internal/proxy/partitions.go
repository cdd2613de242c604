package proxy

import (
	"sync"
	"sync/atomic"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// PartitionWrites counts each table's acknowledged writes (stored,
// superseded or unlogged: the writes of wail_proxy_mutations_total that are
// not rejected) per partition, in the process only. It is not a Prometheus
// label on purpose: a table may have up to limits.max_table_partitions
// partitions (1024 and more), and a series per partition of every table
// would swell every scrape for a number an operator looks at only when one
// partition runs hot. The console samples it (its per-partition table and
// chart); /metrics keeps the per-table counter.
type PartitionWrites struct {
	mu     sync.Mutex // serializes growing a table's counters
	tables sync.Map   // table name -> *partitionCounts
}

// partitionCounts are a table's counters in chunks, so that growing them
// (a table altered to more partitions) never moves a counter that a
// concurrent write may be adding to.
type partitionCounts struct {
	chunks atomic.Pointer[[]*[chunkSize]atomic.Uint64]
}

const chunkSize = 64

// add counts one write of key to table among partitions.
func (w *PartitionWrites) add(table string, partitions int32, key []byte) {
	if partitions <= 0 {
		return
	}
	p := int(intentlog.Partition(key, partitions))
	c, ok := w.tables.Load(table)
	if !ok {
		c, _ = w.tables.LoadOrStore(table, &partitionCounts{})
	}
	pc := c.(*partitionCounts)
	chunks := pc.chunks.Load()
	if chunks == nil || p/chunkSize >= len(*chunks) {
		chunks = w.grow(pc, int(partitions))
	}
	(*chunks)[p/chunkSize][p%chunkSize].Add(1)
}

// grow makes pc hold at least n counters, keeping the chunks it has.
func (w *PartitionWrites) grow(pc *partitionCounts, n int) *[]*[chunkSize]atomic.Uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	old := pc.chunks.Load()
	var next []*[chunkSize]atomic.Uint64
	if old != nil {
		next = append(next, *old...)
	}
	for len(next)*chunkSize < n {
		next = append(next, new([chunkSize]atomic.Uint64))
	}
	pc.chunks.Store(&next)
	return &next
}

// Table returns table's counts by partition, up to the highest partition
// written (nil: none written).
func (w *PartitionWrites) Table(table string) []uint64 {
	c, ok := w.tables.Load(table)
	if !ok {
		return nil
	}
	chunks := c.(*partitionCounts).chunks.Load()
	if chunks == nil {
		return nil
	}
	out := make([]uint64, 0, len(*chunks)*chunkSize)
	for _, ch := range *chunks {
		for i := range ch {
			out = append(out, ch[i].Load())
		}
	}
	last := len(out)
	for last > 0 && out[last-1] == 0 {
		last--
	}
	return out[:last]
}
