package catalog

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// failOnce fails its first making of a table's topics (once gate, if
// any, is closed), then makes them.
type failOnce struct {
	*topics
	gate  chan struct{}
	mu    sync.Mutex
	calls int
}

func (p *failOnce) Provision(ctx context.Context, t Table) error {
	p.mu.Lock()
	p.calls++
	first := p.calls == 1
	p.mu.Unlock()
	if first {
		if p.gate != nil {
			<-p.gate
		}
		return errors.New("the log is down")
	}
	return p.topics.Provision(ctx, t)
}

// TestProvisionByRetriesAFailure: a making of a table's topics that failed
// is tried again by the next refresh, which serves the table once it
// succeeds, whether the refresh that began it took the failure or its
// wait ended first (the failure came after).
func TestProvisionByRetriesAFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		gated bool // the failure comes after the first refresh's wait ended
	}{
		{"failure taken by the refresh that began it", false},
		{"failure after its refresh's wait ended", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			p := &failOnce{topics: newTopics()}
			if tc.gated {
				p.gate = make(chan struct{})
			}
			c := &Catalog{opts: Options{Provisioner: p}, making: map[string]*making{}}
			tb := Table{Name: "t", Partitions: 1, CreatedAt: time.UnixMicro(1)}
			wait := time.Minute
			if tc.gated {
				wait = 50 * time.Millisecond
			}
			if served, err := c.provisionBy(ctx, tb, 0, time.Now().Add(wait)); served || err == nil {
				t.Fatalf("first refresh: served %v, %v; want not served, an error", served, err)
			}
			if tc.gated {
				c.makingMu.Lock()
				m := c.making[tb.Name]
				c.makingMu.Unlock()
				if m == nil {
					t.Fatal("no making after the wait ended")
				}
				close(p.gate)
				<-m.done
			}
			if served, err := c.provisionBy(ctx, tb, 0, time.Now().Add(time.Minute)); !served || err != nil {
				t.Fatalf("next refresh, the log up again: served %v, %v; want served", served, err)
			}
		})
	}
}
