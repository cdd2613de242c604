package hlc

import (
	"sync"
	"testing"
	"time"
)

func TestLayout(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 1, 10, 0, 0, 123e6, time.UTC)
	c, err := New(513, func() time.Time { return at })
	if err != nil {
		t.Fatal(err)
	}
	v := c.Now()
	if ProxyOf(v) != 513 || Logical(v) != 0 || !Time(v).Equal(at.Truncate(time.Millisecond)) {
		t.Fatalf("v=%d proxy=%d logical=%d time=%v", v, ProxyOf(v), Logical(v), Time(v))
	}
	if int64(v) < 0 {
		t.Fatal("version does not fit a signed 64-bit column")
	}
	// The layout is persisted (stores, intents, events): pin it with
	// literals, not only through this package's decoders. 199792800123 ms
	// since 2020-01-01 UTC, logical 0, proxy 513.
	// 0x02e8494317b00201 = 199792800123<<20 | 0<<10 | 513.
	if v != 0x02e8494317b00201 {
		t.Fatalf("version %#x, want 0x02e8494317b00201 (ms<<20 | logical<<10 | proxy)", v)
	}
	if v2 := c.Now(); Logical(v2) != 1 || v2 <= v || v2 != 0x02e8494317b00601 {
		t.Fatalf("same millisecond: v2 %#x (logical %d), want 0x02e8494317b00601 (logical 1) > v %#x", v2, Logical(v2), v)
	}
	if At(at) > v {
		t.Fatal("At(t) must not exceed versions stamped at t")
	}
}

func TestProxyIDRange(t *testing.T) {
	t.Parallel()
	if _, err := New(MaxProxyID+1, nil); err == nil {
		t.Fatal("proxy id above the range accepted")
	}
	c, err := New(MaxProxyID, nil)
	if err != nil {
		t.Fatalf("the largest proxy id refused: %v", err)
	}
	if v := c.Now(); ProxyOf(v) != MaxProxyID {
		t.Fatalf("version %d carries proxy id %d, want %d", v, ProxyOf(v), MaxProxyID)
	}
}

func TestStrictlyIncreasingEvenWhenTheWallClockGoesBack(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	c, _ := New(1, func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	})
	var last uint64
	steps := []time.Duration{0, time.Millisecond, -time.Second, 0, 5 * time.Millisecond, -time.Hour}
	for _, d := range steps {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
		for i := 0; i < 3000; i++ { // overflows the 10-bit logical counter
			v := c.Now()
			if v <= last {
				t.Fatalf("after a %v step: %d <= %d", d, v, last)
			}
			last = v
		}
	}
}

func TestConcurrentStampsAreUnique(t *testing.T) {
	t.Parallel()
	c, _ := New(9, nil)
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			local := make([]uint64, 5000)
			for i := range local {
				local[i] = c.Now()
			}
			mu.Lock()
			defer mu.Unlock()
			for _, v := range local {
				if seen[v] {
					t.Errorf("duplicate version %d", v)
				}
				seen[v] = true
			}
		})
	}
	wg.Wait()
}

func TestObserve(t *testing.T) {
	t.Parallel()
	c, _ := New(1, nil)
	other, _ := New(2, func() time.Time { return time.Now().Add(time.Minute) })
	ahead := other.Now()
	c.Observe(ahead)
	if v := c.Now(); v <= ahead {
		t.Fatalf("after Observe(%d), Now() = %d", ahead, v)
	}
}

// TestLead: versions observed ahead of the wall clock, and a wall clock
// set back behind the clock's own stamps, show as a lead; TakeLead
// starts over.
func TestLead(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	c, _ := New(1, func() time.Time { return now })
	c.Now()
	c.Observe(At(now.Add(-time.Second))) // behind: no lead
	if lead := c.TakeLead(); lead != 0 {
		t.Fatalf("lead %s with nothing ahead", lead)
	}
	c.Observe(At(now.Add(1500 * time.Millisecond)))
	c.Observe(At(now.Add(700 * time.Millisecond)))
	if lead := c.TakeLead(); lead != 1500*time.Millisecond {
		t.Fatalf("lead %s, want 1.5s", lead)
	}
	if lead := c.TakeLead(); lead != 0 {
		t.Fatalf("lead %s after TakeLead", lead)
	}
	now = now.Add(2 * time.Second) // past the observed version
	c.Now()
	now = now.Add(-300 * time.Millisecond) // the wall clock is set back
	if v := c.Now(); Time(v).Before(now.Add(300 * time.Millisecond)) {
		t.Fatalf("version %v went back with the wall clock", Time(v))
	}
	if lead := c.TakeLead(); lead != 300*time.Millisecond {
		t.Fatalf("lead %s after the wall clock went back 300ms, want 300ms", lead)
	}
}
