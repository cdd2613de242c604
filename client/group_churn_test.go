package client_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
)

// TestGroupChurn: members of a group come and go (each stops after a
// random number of events, some acknowledged, some not) while a writer
// writes: every written version reaches the group; an event whose
// acknowledgement returned is never delivered again; per member stream
// a key's versions increase.
func TestGroupChurn(t *testing.T) {
	t.Parallel()
	srv := startRestartable(t, nil)
	defer func() { srv.stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := dialTable(ctx, t, srv, 4)
	var (
		mu      sync.Mutex
		ackedTo = map[int32]int64{} // per partition, the highest next whose Ack returned
		seen    = map[string]uint64{}
		errs    []string
	)
	writes := 400
	written := map[string]uint64{}
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		for i := range writes {
			k := fmt.Sprintf("k%d", i%25)
			r, err := c.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte(k), Value: fmt.Appendf(nil, `{"i":%d}`, i)}))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			written[k] = max(written[k], r.Msg.Result.Version)
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	done := func() bool {
		select {
		case <-wdone:
		default:
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		for k, v := range written {
			if seen[k] < v {
				return false
			}
		}
		return true
	}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; !done() && ctx.Err() == nil; round++ {
				member := fmt.Sprintf("m%d-%d", w, round%3) // ids come back
				cons, err := client.NewConsumer(ctx, c.Events, client.ConsumerConfig{Table: "t", Group: "g", Member: member,
					Reconnect: client.Reconnect{MinWait: 5 * time.Millisecond, MaxWait: 50 * time.Millisecond}})
				if err != nil {
					if connect.CodeOf(err) == connect.CodeAlreadyExists {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					mu.Lock()
					errs = append(errs, fmt.Sprintf("%s: join: %v", member, err))
					mu.Unlock()
					return
				}
				last := map[string]uint64{}
				n := 1 + rand.IntN(30)
				nctx, ncancel := context.WithTimeout(ctx, 300*time.Millisecond)
				for i := 0; i < n; i++ {
					m, err := cons.Next(nctx)
					if err != nil {
						if nctx.Err() == nil {
							mu.Lock()
							errs = append(errs, fmt.Sprintf("%s: next: %v", member, err))
							mu.Unlock()
						}
						break
					}
					k := string(m.Event.Key)
					mu.Lock()
					if m.Offset < ackedTo[m.Partition] {
						errs = append(errs, fmt.Sprintf("%s: partition %d offset %d delivered again after an acknowledgement up to %d returned",
							member, m.Partition, m.Offset, ackedTo[m.Partition]))
					}
					if m.Event.Version <= last[k] {
						errs = append(errs, fmt.Sprintf("%s: key %s version %d after %d on one stream", member, k, m.Event.Version, last[k]))
					}
					last[k] = m.Event.Version
					seen[k] = max(seen[k], m.Event.Version)
					mu.Unlock()
					if rand.IntN(3) > 0 {
						if err := cons.Ack(ctx, m); err == nil {
							mu.Lock()
							ackedTo[m.Partition] = max(ackedTo[m.Partition], m.Offset+1)
							mu.Unlock()
						} else if !errors.Is(err, client.ErrAckRefused) {
							mu.Lock()
							errs = append(errs, fmt.Sprintf("%s: ack: %v", member, err))
							mu.Unlock()
						}
					}
				}
				ncancel()
				cons.Close()
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if ctx.Err() != nil {
		t.Errorf("not every written version reached the group in time")
	}
	for i, e := range errs {
		if i == 20 {
			t.Errorf("... %d more", len(errs)-20)
			break
		}
		t.Error(e)
	}
}
