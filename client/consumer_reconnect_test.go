package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server"
)

// restartable is a server on one data dir and address that a test stops
// and starts again.
type restartable struct {
	t    *testing.T
	cfg  config.Config
	addr string
	stop func()
}

func (r *restartable) start() {
	r.t.Helper()
	srv, err := server.New(r.cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- srv.Run(ctx, func(a string) { ready <- a }) }()
	select {
	case a := <-ready:
		r.addr = a
		r.cfg.Listen = a // the same address when it starts again
	case err := <-done:
		cancel()
		r.t.Fatalf("server: %v", err)
	}
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			r.t.Errorf("server shutdown: %v", err)
		}
	}
}

// startRestartable starts a server on a temporary data dir, without
// fsync, its configuration changed by mutate (if not nil); the caller
// stops it.
// dialTable dials srv and creates its table "t" of partitions partitions.
func dialTable(ctx context.Context, t *testing.T, srv *restartable, partitions int32) *client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{Addr: srv.addr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t", Partitions: partitions})); err != nil {
		t.Fatal(err)
	}
	return c
}

func startRestartable(t *testing.T, mutate func(*config.Config)) *restartable {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.Log.NoSync, cfg.Store.NoSync = true, true
	if mutate != nil {
		mutate(&cfg)
	}
	r := &restartable{t: t, cfg: cfg}
	r.start()
	return r
}

// consumed is what one consumer of TestConsumerReconnects got.
type consumed struct {
	mu         sync.Mutex
	msgs       []client.Message
	reconnects int
	err        error
}

func (c *consumed) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// TestConsumerReconnects: the server restarts under a subscription and a
// group member while a writer writes: both reconnect by themselves; the
// subscription resumes from its cursor (every event of the bus exactly
// once, in order), the member joins again (every event at least once);
// every acknowledged write reaches both.
func TestConsumerReconnects(t *testing.T) {
	t.Parallel()
	srv := startRestartable(t, nil)
	defer func() { srv.stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.Dial(client.Options{Addr: srv.addr})
	if err != nil {
		t.Fatal(err)
	}
	for _, tbl := range []string{"t", "u"} {
		if _, err := c.Admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: tbl, Partitions: 3})); err != nil {
			t.Fatal(err)
		}
	}

	// A subscription from "latest" started before any event, a group
	// member, and a subscription from "latest" of a table written only
	// after the restart (it resumes at its stream's start).
	reconnect := client.Reconnect{MinWait: 20 * time.Millisecond, MaxWait: 200 * time.Millisecond}
	sub, member, idle := &consumed{}, &consumed{}, &consumed{}
	cctx, stopConsumers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, x := range []struct {
		got *consumed
		cfg client.ConsumerConfig
	}{
		{sub, client.ConsumerConfig{Table: "t", From: "latest"}},
		{member, client.ConsumerConfig{Table: "t", Group: "g", Member: "m1"}},
		{idle, client.ConsumerConfig{Table: "u", From: "latest"}},
	} {
		x.cfg.Reconnect = reconnect
		x.cfg.Reconnect.OnReconnect = func(error, int) {
			x.got.mu.Lock()
			x.got.reconnects++
			x.got.mu.Unlock()
		}
		cons, err := client.NewConsumer(cctx, c.Events, x.cfg)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cons.Close()
			for {
				m, err := cons.Next(cctx)
				if err == nil {
					if aerr := cons.Ack(cctx, m); aerr != nil && !errors.Is(aerr, client.ErrAckRefused) && connect.CodeOf(aerr) != connect.CodeUnavailable {
						err = aerr // refused (the member joined again) or unavailable (the server restarts): the events come again
					}
				}
				x.got.mu.Lock()
				if err != nil {
					if cctx.Err() == nil {
						x.got.err = err
					}
					x.got.mu.Unlock()
					return
				}
				x.got.msgs = append(x.got.msgs, m)
				x.got.mu.Unlock()
			}
		}()
	}
	defer func() { stopConsumers(); wg.Wait() }()
	time.Sleep(200 * time.Millisecond) // both streams are up

	// A writer writes 30 keys until told to stop, again after a failure
	// (the server is down); acked is each key's highest acknowledged version.
	var amu sync.Mutex
	acked := map[string]uint64{} // "table/key"
	restarted := make(chan struct{})
	stopWriter := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; ; i++ {
			select {
			case <-stopWriter:
				return
			case <-time.After(5 * time.Millisecond):
			}
			tbl := "t"
			select {
			case <-restarted:
				if i%2 == 0 {
					tbl = "u"
				}
			default:
			}
			k := fmt.Sprintf("k%d", i%30)
			r, err := c.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: tbl, Key: []byte(k), Value: fmt.Appendf(nil, "%d", i)}))
			if err != nil {
				continue
			}
			amu.Lock()
			acked[tbl+"/"+k] = max(acked[tbl+"/"+k], r.Msg.Result.Version)
			amu.Unlock()
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("waiting for %s: %v (subscription: %v; member: %v)", what, ctx.Err(), sub.err, member.err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("events before the restart", func() bool { return sub.count() >= 30 && member.count() >= 30 })
	srv.stop()
	before := [2]int{sub.count(), member.count()}
	time.Sleep(300 * time.Millisecond) // the consumers retry against a closed port
	srv.start()
	close(restarted)
	waitFor("events after the restart", func() bool { return sub.count() >= before[0]+30 && member.count() >= before[1]+30 })
	close(stopWriter)
	<-writerDone

	// Everything on the buses, read from the beginning once they hold
	// every acknowledged write.
	type pos struct {
		table string
		p     int32
		off   int64
	}
	var bus []pos
	waitFor("every acknowledged write on the bus", func() bool {
		bus = bus[:0]
		version := map[string]uint64{}
		for _, tbl := range []string{"t", "u"} {
			all, err := client.NewConsumer(ctx, c.Events, client.ConsumerConfig{Table: tbl, From: "beginning", UntilEnd: true})
			if err != nil {
				t.Fatal(err)
			}
			for {
				m, err := all.Next(ctx)
				if err != nil {
					break
				}
				bus = append(bus, pos{tbl, m.Partition, m.Offset})
				version[tbl+"/"+string(m.Event.Key)] = max(version[tbl+"/"+string(m.Event.Key)], m.Event.Version)
			}
			all.Close()
		}
		for k, v := range acked {
			if version[k] < v {
				return false
			}
		}
		return true
	})
	// covered is how many of the events of table's bus x got.
	covered := func(x *consumed, table string) (n, of int) {
		x.mu.Lock()
		defer x.mu.Unlock()
		got := map[pos]bool{}
		for _, m := range x.msgs {
			got[pos{m.Event.Table, m.Partition, m.Offset}] = true
		}
		for _, b := range bus {
			if b.table == table {
				of++
				if got[b] {
					n++
				}
			}
		}
		return n, of
	}
	all := func(x *consumed, table string) bool { n, of := covered(x, table); return n == of }
	waitFor("every event of the bus to reach its consumers", func() bool { return all(sub, "t") && all(member, "t") && all(idle, "u") })
	stopConsumers()
	wg.Wait()

	for _, x := range []struct {
		name, table string
		got         *consumed
	}{{"subscription", "t", sub}, {"member", "t", member}, {"idle subscription", "u", idle}} {
		if x.got.err != nil {
			t.Fatalf("%s: %v", x.name, x.got.err)
		}
		if x.got.reconnects == 0 {
			t.Fatalf("%s: no reconnection: the test needs the server to restart under it", x.name)
		}
		last := map[int32]int64{}
		version := map[string]uint64{}
		for _, m := range x.got.msgs {
			if o, ok := last[m.Partition]; ok && m.Offset <= o && x.got != member {
				t.Fatalf("%s: partition %d: offset %d after %d", x.name, m.Partition, m.Offset, o)
			}
			last[m.Partition] = m.Offset
			k := m.Event.Table + "/" + string(m.Event.Key)
			version[k] = max(version[k], m.Event.Version)
		}
		for k, v := range acked {
			if strings.HasPrefix(k, x.table+"/") && version[k] < v {
				t.Fatalf("%s: key %s: write at %d acknowledged, received up to %d", x.name, k, v, version[k])
			}
		}
		_, of := covered(x.got, x.table)
		if x.got != member && len(x.got.msgs) != of {
			t.Fatalf("%s: %d deliveries of %d events: resuming repeated some", x.name, len(x.got.msgs), of)
		}
		t.Logf("%s: %d deliveries of %d events, %d reconnection attempts", x.name, len(x.got.msgs), of, x.got.reconnects)
	}
}

// TestConsumerServerEndsEveryStream: a server that ends every stream at
// once, without an error (shutting down for good, or broken), is
// reconnected to with a wait that grows, though each stream sent a
// message (a member's join), and Next fails with ErrStreamEnded after
// Reconnect.MaxEnds reconnections (DefaultMaxEnds when unset), instead of
// reconnecting for ever; streams that deliver an event before they end
// are reconnected to without a bound.
func TestConsumerServerEndsEveryStream(t *testing.T) {
	t.Parallel()
	ev := func(v uint64) *wailv1.ChangeEvent {
		return &wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Version: v}
	}
	subs := func(first *wailv1.SubscribeResponse, then func(i int) *wailv1.SubscribeResponse) []scriptedStream[wailv1.SubscribeResponse] {
		out := []scriptedStream[wailv1.SubscribeResponse]{{msgs: []*wailv1.SubscribeResponse{first}}}
		for i := range 100 {
			var msgs []*wailv1.SubscribeResponse
			if m := then(i); m != nil {
				msgs = append(msgs, m)
			}
			out = append(out, scriptedStream[wailv1.SubscribeResponse]{msgs: msgs})
		}
		return out
	}
	joins := make([]scriptedStream[wailv1.ConsumeResponse], 100)
	for i := range joins {
		joins[i] = scriptedStream[wailv1.ConsumeResponse]{msgs: []*wailv1.ConsumeResponse{{}}} // the join, then the end
	}
	for _, tc := range []struct {
		name    string
		s       *scripted
		group   bool
		maxEnds int
		events  int // Next returns this many events, then (ends > 0) ErrStreamEnded
		ends    int // streams opened: the first and the reconnections
	}{
		{name: "subscription", maxEnds: 5, events: 1, ends: 6,
			s: &scripted{subs: subs(&wailv1.SubscribeResponse{Event: ev(1), Cursor: "c1"}, func(int) *wailv1.SubscribeResponse { return nil })}},
		{name: "group member", group: true, maxEnds: 5, ends: 6, s: &scripted{grps: joins}},
		{name: "default bound", group: true, ends: client.DefaultMaxEnds + 1, s: &scripted{grps: joins}},
		{name: "an event each time", maxEnds: 5, events: 50,
			s: &scripted{subs: subs(&wailv1.SubscribeResponse{Event: ev(1), Cursor: "c1"}, func(i int) *wailv1.SubscribeResponse {
				return &wailv1.SubscribeResponse{Event: ev(uint64(i + 2)), Cursor: fmt.Sprint("c", i+2)}
			})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var attempts []int
			cfg := client.ConsumerConfig{Table: "t", From: "beginning", Reconnect: client.Reconnect{MinWait: time.Millisecond, MaxWait: 16 * time.Millisecond,
				MaxEnds: tc.maxEnds, OnReconnect: func(err error, attempt int) {
					if err != nil {
						t.Errorf("reconnection after %v, want after a clean end", err)
					}
					attempts = append(attempts, attempt)
				}}}
			if tc.group {
				cfg.From, cfg.Group, cfg.Member = "", "g", "m"
			}
			c, err := client.NewConsumer(ctx, tc.s.serve(t), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for i := range tc.events {
				if _, err := c.Next(ctx); err != nil {
					t.Fatalf("event %d: %v", i+1, err)
				}
			}
			if tc.ends == 0 {
				return
			}
			_, err = c.Next(ctx)
			if !errors.Is(err, client.ErrStreamEnded) || !strings.Contains(err.Error(), "MaxEnds") {
				t.Fatalf("Next after %d streams, reconnection attempts %v: %v; want ErrStreamEnded naming Reconnect.MaxEnds", len(tc.s.opened()), attempts, err)
			}
			if n := len(tc.s.opened()); n != tc.ends {
				t.Fatalf("%d streams opened, want %d", n, tc.ends)
			}
			for i, a := range attempts {
				if a != i+1 {
					t.Fatalf("reconnection attempts %v: the attempt (and the wait) started again though no stream delivered an event", attempts)
				}
			}
		})
	}
}

// silent serves requests as a server that takes them and never answers
// (no response headers) while hang says so, and passes the others to next.
func silent(t *testing.T, h2c bool, hang func() bool, next http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang() {
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
			return
		}
		next.ServeHTTP(w, r)
	}))
	if h2c {
		srv.Config.Protocols = new(http.Protocols)
		srv.Config.Protocols.SetHTTP1(true)
		srv.Config.Protocols.SetUnencryptedHTTP2(true)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// TestConsumerOpenTimeout: a server that takes the request of a stream
// and never answers it makes NewConsumer fail with ErrOpenTimeout within
// ConsumerConfig.OpenTimeout, over HTTP/1.1 (where nothing else bounds
// the wait) as over HTTP/2; a reconnection it leaves unanswered is
// tried again.
func TestConsumerOpenTimeout(t *testing.T) {
	t.Parallel()
	const bound = 200 * time.Millisecond
	for _, tc := range []struct {
		name string
		h2c  bool
	}{{"HTTP/1.1", false}, {"HTTP/2", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := silent(t, tc.h2c, func() bool { return true }, nil)
			c, err := client.Dial(client.Options{Addr: srv.URL, H2C: tc.h2c})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for _, cfg := range []client.ConsumerConfig{{Table: "t", OpenTimeout: bound}, {Table: "t", Group: "g", Member: "m", OpenTimeout: bound}} {
				start := time.Now()
				cons, err := client.NewConsumer(ctx, c.Events, cfg)
				if err == nil {
					cons.Close()
				}
				if took := time.Since(start); !errors.Is(err, client.ErrOpenTimeout) || took > bound+2*time.Second {
					t.Fatalf("group %q: NewConsumer against a server that never answers: %v after %s; want ErrOpenTimeout after %s", cfg.Group, err, took, bound)
				}
			}
		})
	}
	t.Run("reconnection", func(t *testing.T) {
		t.Parallel()
		ev := func(v uint64) *wailv1.ChangeEvent {
			return &wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Version: v}
		}
		s := &scripted{subs: []scriptedStream[wailv1.SubscribeResponse]{
			{msgs: []*wailv1.SubscribeResponse{{Event: ev(1), Cursor: "c1"}}, code: connect.CodeUnavailable},
			{msgs: []*wailv1.SubscribeResponse{{Event: ev(2), Cursor: "c2"}}, hold: true},
		}}
		mux := http.NewServeMux()
		mux.Handle(wailv1connect.NewEventServiceHandler(s))
		var requests atomic.Int32
		srv := silent(t, false, func() bool { n := requests.Add(1); return n == 2 || n == 3 }, mux) // the first two attempts
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var seen []error
		c, err := client.NewConsumer(ctx, wailv1connect.NewEventServiceClient(srv.Client(), srv.URL), client.ConsumerConfig{Table: "t", OpenTimeout: bound,
			Reconnect: client.Reconnect{MinWait: time.Millisecond, MaxWait: time.Millisecond, OnReconnect: func(err error, _ int) { seen = append(seen, err) }}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for v := uint64(1); v <= 2; v++ {
			if m, err := c.Next(ctx); err != nil || m.Event.Version != v {
				t.Fatalf("event %d: %v, %v (reconnections after %v)", v, m.Event, err, seen)
			}
		}
		if len(seen) != 3 || !errors.Is(seen[1], client.ErrOpenTimeout) || !errors.Is(seen[2], client.ErrOpenTimeout) {
			t.Fatalf("reconnections after %v; want unavailable, then two unanswered openings", seen)
		}
	})
}
