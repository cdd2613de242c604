package group

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/readahead"
)

// TestReadAheadChurn: members of several groups join, rebalance, read
// fast, slowly or not at all, and leave, over a full process budget;
// meanwhile a member that reads gets every record, and once all left the
// pool is back at 0.
func TestReadAheadChurn(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l := openLog(t)
	const parts, perPart = 4, 300
	if err := l.CreateTopic(ctx, "ev", parts, intentlog.TopicOptions{}); err != nil {
		t.Fatal(err)
	}
	var recs []*intentlog.Record
	for i := range parts * perPart {
		recs = append(recs, &intentlog.Record{Key: fmt.Appendf(nil, "k%d", i), Value: make([]byte, 2<<10)})
	}
	if err := l.Append(ctx, "ev", recs); err != nil {
		t.Fatal(err)
	}
	tb := Table{Name: "t", Topic: "ev", Partitions: parts}
	pool := readahead.NewPool(64 << 10)
	g := New(l, time.Minute).WithReadAhead(32<<10, pool)
	defer g.Close()

	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 2))
			time.Sleep(time.Duration(r.IntN(300)) * time.Millisecond)
			s, err := g.Join(ctx, tb, fmt.Sprint("g", i%5), fmt.Sprint("m", i), false)
			if err != nil {
				t.Error(err)
				return
			}
			mode := r.IntN(3) // 0 fast, 1 slow, 2 stalled
			until := time.Now().Add(time.Duration(100+r.IntN(900)) * time.Millisecond)
			for time.Now().Before(until) {
				if mode == 2 {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				nctx, c := context.WithDeadline(ctx, until)
				_, err := s.Next(nctx)
				c()
				if err != nil {
					break
				}
				if mode == 1 {
					time.Sleep(time.Duration(r.IntN(5)) * time.Millisecond)
				}
			}
			s.Leave()
		}()
	}
	s, err := g.Join(ctx, tb, "reads", "m", false)
	if err != nil {
		t.Fatal(err)
	}
	for got := 0; got < parts*perPart; {
		m, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("a member that reads, after %d records of %d: %v", got, parts*perPart, err)
		}
		got += len(m.Records)
	}
	s.Leave()
	wg.Wait()
	if n := pool.Used(); n != 0 {
		t.Fatalf("every member left and the pool holds %d", n)
	}
}
