package client_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
)

// TestSnapshotThenStreamAcrossRestart: a subscription from "snapshot"
// while writers put and delete, as a client sees it; the server restarts
// after the snapshot (the consumer resumes from its cursor), and for a
// group member that took the group's snapshot. Per key the versions
// never go back, and each reader ends with the store's state.
func TestSnapshotThenStreamAcrossRestart(t *testing.T) {
	t.Parallel()
	srv := startRestartable(t, func(c *config.Config) { c.API.SnapshotChunkKeys = 7 })
	defer func() { srv.stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := dialTable(ctx, t, srv, 3)
	const keys = 80
	write := func(i int) {
		k := []byte(fmt.Sprintf("k%02d", rand.IntN(keys)))
		var err error
		if i%5 == 4 {
			_, err = c.Producer.Delete(ctx, connect.NewRequest(&wailv1.DeleteRequest{Table: "t", Key: k}))
		} else {
			_, err = c.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: k, Value: fmt.Appendf(nil, `{"i":%d}`, i)}))
		}
		_ = err // a write during the restart fails: not written, or written (either way the store says)
	}
	for i := range 200 {
		write(i)
	}
	type state struct {
		version uint64
		deleted bool
		snap    bool
	}
	var restarted atomic.Bool
	type reader struct {
		mu    sync.Mutex
		state map[string]state
		errs  []string
		ended atomic.Bool // the snapshot is over
		acked map[int32]int64
		// last is each key's version on the stream in place: a member
		// joined again gets what it did not acknowledge again (older
		// versions than it applied), the stream's own versions increase.
		last map[string]uint64
	}
	apply := func(r *reader, m client.Message) {
		r.mu.Lock()
		defer r.mu.Unlock()
		k := string(m.Event.Key)
		if !m.Snapshot && m.Offset < r.acked[m.Partition] {
			r.errs = append(r.errs, fmt.Sprintf("p%d@%d delivered again after an acknowledgement up to %d returned; restarted %v", m.Partition, m.Offset, r.acked[m.Partition], restarted.Load()))
		}
		if v, ok := r.last[k]; ok && m.Event.Version <= v {
			r.errs = append(r.errs, fmt.Sprintf("key %s version %d (snapshot %v, p%d@%d) after %d (state %+v); restarted %v", k, m.Event.Version, m.Snapshot, m.Partition, m.Offset, v, r.state[k], restarted.Load()))
		}
		r.last[k] = m.Event.Version
		r.state[k] = state{m.Event.Version, m.Event.Op == wailv1.Op_OP_DELETE, m.Snapshot}
	}
	sub, member := &reader{state: map[string]state{}, acked: map[int32]int64{}, last: map[string]uint64{}}, &reader{state: map[string]state{}, acked: map[int32]int64{}, last: map[string]uint64{}}
	rctx, stopReaders := context.WithCancel(ctx)
	var wg sync.WaitGroup
	reconnect := client.Reconnect{MinWait: 10 * time.Millisecond, MaxWait: 100 * time.Millisecond}
	for _, x := range []struct {
		r   *reader
		cfg client.ConsumerConfig
	}{
		{sub, client.ConsumerConfig{Table: "t", From: "snapshot", Reconnect: reconnect}},
		{member, client.ConsumerConfig{Table: "t", Group: "g", Member: "m", Start: "snapshot", Reconnect: reconnect}},
	} {
		if x.cfg.Group != "" {
			x.cfg.Reconnect.OnReconnect = func(error, int) {
				x.r.mu.Lock()
				x.r.last = map[string]uint64{}
				x.r.mu.Unlock()
			}
		}
		cons, err := client.NewConsumer(rctx, c.Events, x.cfg)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cons.Close()
			for {
				m, err := cons.Next(rctx)
				if err != nil {
					if rctx.Err() == nil {
						x.r.mu.Lock()
						x.r.errs = append(x.r.errs, fmt.Sprintf("next: %v", err))
						x.r.mu.Unlock()
					}
					return
				}
				if !m.Snapshot {
					x.r.ended.Store(true)
				}
				apply(x.r, m)
				err = cons.Ack(rctx, m)
				if err == nil && x.cfg.Group != "" && !m.Snapshot {
					x.r.mu.Lock()
					x.r.acked[m.Partition] = max(x.r.acked[m.Partition], m.Offset+1)
					x.r.mu.Unlock()
				}
				// Unavailable while the server restarts, refused once the
				// member joined again: the events come again.
				if err != nil && rctx.Err() == nil && connect.CodeOf(err) != connect.CodeUnavailable && !errors.Is(err, client.ErrAckRefused) {
					x.r.mu.Lock()
					x.r.errs = append(x.r.errs, fmt.Sprintf("ack: %v", err))
					x.r.mu.Unlock()
				}
			}
		}()
	}
	defer func() { stopReaders(); wg.Wait() }()
	// Writers meanwhile, until both snapshots are over and a while after
	// the restart.
	stopWriters := make(chan struct{})
	var wwg sync.WaitGroup
	for w := range 3 {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			for i := 1000 * (w + 1); ; i++ {
				select {
				case <-stopWriters:
					return
				default:
				}
				write(i)
				time.Sleep(time.Millisecond)
			}
		}()
	}
	for !sub.ended.Load() || !member.ended.Load() {
		if ctx.Err() != nil {
			t.Fatalf("the snapshots did not end: %v %v", sub.errs, member.errs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	restarted.Store(true)
	srv.stop()
	time.Sleep(100 * time.Millisecond)
	srv.start()
	time.Sleep(500 * time.Millisecond)
	close(stopWriters)
	wwg.Wait()
	// The store's state, then each reader's, until they match.
	store := map[string]state{}
	for i := range keys {
		k := fmt.Sprintf("k%02d", i)
		g, err := c.Producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "t", Key: []byte(k)}))
		if err != nil {
			t.Fatal(err)
		}
		if g.Msg.Found || g.Msg.Deleted {
			store[k] = state{g.Msg.Version, g.Msg.Deleted || !g.Msg.Found, false}
		}
	}
	diff := func(r *reader) []string {
		r.mu.Lock()
		defer r.mu.Unlock()
		var d []string
		for i := range keys {
			k := fmt.Sprintf("k%02d", i)
			s, have := store[k]
			got, ok := r.state[k]
			live := have && !s.deleted
			switch {
			case live && (!ok || got.deleted || got.version != s.version):
				d = append(d, fmt.Sprintf("%s: store v%d, reader %+v (have %v)", k, s.version, got, ok))
			case !live && ok && !got.deleted:
				d = append(d, fmt.Sprintf("%s: deleted in the store (%+v), reader v%d", k, s, got.version))
			}
		}
		return d
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, x := range []struct {
		name string
		r    *reader
	}{{"subscription", sub}, {"member", member}} {
		for d := diff(x.r); len(d) > 0; d = diff(x.r) {
			if time.Now().After(deadline) {
				t.Errorf("%s: %d keys differ from the store: %v", x.name, len(d), d[:min(len(d), 10)])
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		x.r.mu.Lock()
		for _, e := range x.r.errs[:min(len(x.r.errs), 10)] {
			t.Errorf("%s: %s", x.name, e)
		}
		x.r.mu.Unlock()
	}
}
