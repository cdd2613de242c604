package pebble

import (
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Engine is what Pebble reports of its LSM tree, for operators: a
// compaction that falls behind shows in L0 and the compaction debt before
// Pebble stalls writes, and a stall shows in Stalls and StallTime.
type Engine struct {
	// L0Files and L0Sublevels: sstables in level 0, and how many of them
	// a read may have to consult there. Pebble compacts L0 from 4 and
	// stops writes at 12 sublevels (its L0CompactionThreshold and
	// L0StopWritesThreshold).
	L0Files     int64
	L0Sublevels int32
	// ReadAmp: sublevels a read consults, over all levels.
	ReadAmp int
	// CompactionDebtBytes estimates the bytes compactions must rewrite for
	// the tree to be in shape again.
	CompactionDebtBytes uint64
	// Compactions: finished since Open; CompactionsRunning: running now.
	Compactions, CompactionsRunning int64
	// MemtableBytes: memory of the memtables (the one being written and
	// those waiting to be flushed).
	MemtableBytes uint64
	// DiskBytes: the database's files on disk (sstables, WAL, manifest).
	DiskBytes uint64
	// Stalls counts the write stalls since Open: Pebble held writes
	// because flushes or compactions fell behind (too many memtables or L0
	// files). StallTime is their total time, the running one included.
	Stalls    int64
	StallTime time.Duration
}

// Engine reports the state of Pebble's LSM tree (zero values once the
// store is closed).
func (s *Store) Engine() Engine {
	var e Engine
	e.Stalls, e.StallTime = s.stalls.total(time.Now())
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return e
	}
	m := s.db.Metrics()
	e.L0Files, e.L0Sublevels = m.Levels[0].TablesCount, m.Levels[0].Sublevels
	e.ReadAmp = m.ReadAmp()
	e.CompactionDebtBytes = m.Compact.EstimatedDebt
	e.Compactions, e.CompactionsRunning = m.Compact.Count, m.Compact.NumInProgress
	e.MemtableBytes = m.MemTable.Size
	e.DiskBytes = m.DiskSpaceUsage()
	return e
}

// stallClock counts Pebble's write stalls and their time, from its event
// listener.
type stallClock struct {
	mu    sync.Mutex
	count int64
	spent time.Duration
	since time.Time // start of the running stall; zero: none
	now   func() time.Time
}

func newStallClock() *stallClock { return &stallClock{now: time.Now} }

// listener wires the clock into Pebble's events.
func (c *stallClock) listener() *pebble.EventListener {
	return &pebble.EventListener{
		WriteStallBegin: func(pebble.WriteStallBeginInfo) { c.begin() },
		WriteStallEnd:   c.end,
	}
}

func (c *stallClock) begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.since.IsZero() {
		c.count++
		c.since = c.now()
	}
}

func (c *stallClock) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.since.IsZero() {
		c.spent += c.now().Sub(c.since)
		c.since = time.Time{}
	}
}

// total returns the stalls and their time up to now.
func (c *stallClock) total(now time.Time) (int64, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	spent := c.spent
	if !c.since.IsZero() {
		spent += now.Sub(c.since)
	}
	return c.count, spent
}
