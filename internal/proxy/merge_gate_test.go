package proxy

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/proxy/proxytest"
)

// switchTables serves "t" created at gen (1 or 2).
type switchTables struct{ gen atomic.Int64 }

func (s *switchTables) Get(name string) (catalog.Table, bool) {
	return catalog.Table{Name: "t", FailureMode: catalog.Transactional, Partitions: 1, VisibilityWindow: 2 * time.Second,
		CreatedAt: time.Unix(s.gen.Load(), 0)}, name == "t"
}

// TestMergedGate: each write of a merged batch is checked against its own
// table: one checked against the table created again goes through, one
// checked against the dropped one is refused unwritten. (The batch was
// gated by its first write's table alone: the write checked against the
// new table was refused as an unknown table because an older write
// queued first.)
func TestMergedGate(t *testing.T) {
	tabs := &switchTables{}
	tabs.gen.Store(1)
	world := &proxytest.World{}
	var once sync.Once
	release := make(chan struct{})
	world.OnApply = func() { once.Do(func() { <-release }) }
	p := New(world.Log(), world.Store(), tabs, mustClock(t), Limits{MaxKeyBytes: 8, MaxValueBytes: 16, MaxBatch: 10, WritesInFlight: 1, MaxMerge: 100}, nil)
	var wg sync.WaitGroup
	var old, fresh Result
	wg.Go(func() { p.Write(t.Context(), []Mutation{{Table: "t", Key: []byte("a"), Value: []byte("1")}}) }) // leader, stuck
	time.Sleep(50 * time.Millisecond)
	wg.Go(func() { old = p.Write(t.Context(), []Mutation{{Table: "t", Key: []byte("b"), Value: []byte("1")}})[0] }) // queued, gen 1
	time.Sleep(50 * time.Millisecond)
	tabs.gen.Store(2) // dropped and created again
	wg.Go(func() {
		fresh = p.Write(t.Context(), []Mutation{{Table: "t", Key: []byte("c"), Value: []byte("1")}})[0]
	}) // queued, gen 2
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if fresh.Err != nil {
		t.Fatalf("a write checked against the current table was refused: %v", fresh.Err)
	}
	if !errors.Is(old.Err, ErrUnknownTable) {
		t.Fatalf("a write checked against the dropped table: %v, want ErrUnknownTable", old.Err)
	}
}
