package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
)

// muting forwards TCP to a server; mute drops what the server sends from
// then on (it never reaches the client), cut resets the connections so
// far (and connections after go through).
type muting struct {
	ln    net.Listener
	mu    sync.Mutex
	muted bool
	conns []net.Conn // client sides
}

func newMuting(t *testing.T, addr string) *muting {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &muting{ln: ln}
	t.Cleanup(func() { ln.Close(); m.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			m.mu.Lock()
			m.conns = append(m.conns, c, u)
			m.mu.Unlock()
			go func() { _, _ = io.Copy(u, c) }()
			go func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := u.Read(buf)
					m.mu.Lock()
					muted := m.muted
					m.mu.Unlock()
					if n > 0 && !muted {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return m
}

func (m *muting) addr() string { return m.ln.Addr().String() }

func (m *muting) mute() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.muted = true
}

func (m *muting) cut() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
	m.conns = nil
	m.muted = false // new connections go through
}

// endDropper is a group member's EventService whose streams go through
// a muting proxy: once the member acknowledges its snapshot's end, what
// the server sends on the stream no longer reaches it, and once the
// server committed that end as the group's positions, the stream's
// connection is reset.
type endDropper struct {
	wailv1connect.EventServiceClient // through the proxy
	direct                           *client.Client
	proxy                            *muting
	t                                *testing.T
	table, group                     string
	after                            func() // once the stream was cut
}

func (d *endDropper) Ack(ctx context.Context, req *connect.Request[wailv1.AckRequest]) (*connect.Response[wailv1.AckResponse], error) {
	if !req.Msg.SnapshotEnd {
		return d.direct.Events.Ack(ctx, req)
	}
	d.proxy.mute()
	resp, err := d.direct.Events.Ack(ctx, req)
	if err != nil {
		return resp, err
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		g, err := d.direct.Events.DescribeGroup(ctx, connect.NewRequest(&wailv1.DescribeGroupRequest{Table: d.table, Group: d.group}))
		if err != nil {
			d.t.Errorf("describe: %v", err)
			break
		}
		committed := len(g.Msg.Partitions) > 0
		for _, p := range g.Msg.Partitions {
			committed = committed && p.Committed >= 0
		}
		if committed {
			break
		}
		if time.Now().After(deadline) {
			d.t.Errorf("the snapshot's end was not committed: %v", g.Msg.Partitions)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	d.proxy.cut()
	if d.after != nil {
		d.after()
	}
	return resp, nil
}

// TestConsumerStreamDropsAfterSnapshotEndCommitted: a group member takes
// the group's snapshot, acknowledges every row and the end, and the server
// commits that end as the group's positions; the stream then drops before
// the member's join (the message that says the snapshot is over) reaches
// it. The snapshot is over: Next joins again and goes on with the changes.
// It failed with ErrSnapshotInterrupted, which says to discard what the
// snapshot built and open a new consumer, which takes the snapshot again:
// but the group resumes after the snapshot, and the rows were lost to
// the application that did so.
func TestConsumerStreamDropsAfterSnapshotEndCommitted(t *testing.T) {
	t.Parallel()
	srv := startRestartable(t, nil)
	defer func() { srv.stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	direct := dialTable(ctx, t, srv, 2)
	for _, k := range []string{"a", "b", "c"} {
		if _, err := direct.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte(k), Value: []byte(`{}`)})); err != nil {
			t.Fatal(err)
		}
	}
	proxy := newMuting(t, srv.addr)
	via, err := client.Dial(client.Options{Addr: proxy.addr()})
	if err != nil {
		t.Fatal(err)
	}
	// A change after the snapshot (its end committed): the member gets it,
	// once it joined again.
	events := &endDropper{EventServiceClient: via.Events, direct: direct, proxy: proxy, t: t, table: "t", group: "g", after: func() {
		if _, err := direct.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("d"), Value: []byte(`{}`)})); err != nil {
			t.Error(err)
		}
	}}
	cons, err := client.NewConsumer(ctx, events, client.ConsumerConfig{Table: "t", Group: "g", Member: "m", Start: "snapshot",
		Reconnect: client.Reconnect{MinWait: 10 * time.Millisecond, MaxWait: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	rows := map[string]bool{}
	for len(rows) < 3 {
		m, err := cons.Next(ctx)
		if err != nil {
			t.Fatalf("snapshot row %d: %v", len(rows)+1, err)
		}
		if !m.Snapshot {
			t.Fatalf("got %s, not a snapshot row", m.Event.Key)
		}
		rows[string(m.Event.Key)] = true
		if err := cons.Ack(ctx, m); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	m, err := cons.Next(ctx)
	if err != nil {
		if errors.Is(err, client.ErrSnapshotInterrupted) {
			// What the error asks for: a new consumer, which should take the snapshot again.
			again, nerr := client.NewConsumer(ctx, direct.Events, client.ConsumerConfig{Table: "t", Group: "g", Member: "m2", Start: "snapshot"})
			if nerr != nil {
				t.Fatal(nerr)
			}
			defer again.Close()
			first, nerr := again.Next(ctx)
			if nerr != nil {
				t.Fatal(nerr)
			}
			t.Fatalf("Next after the snapshot's end was committed: %v; the new consumer it asks for gets %s (snapshot %v), not the snapshot again",
				err, first.Event.Key, first.Snapshot)
		}
		t.Fatalf("Next after the snapshot's end was committed: %v", err)
	}
	if m.Snapshot || string(m.Event.Key) != "d" {
		t.Fatalf("got %s (snapshot %v), want the change of d", m.Event.Key, m.Snapshot)
	}
}

// ackingScripted is a scripted event service that takes every Ack.
type ackingScripted struct{ *scripted }

func (ackingScripted) Ack(context.Context, *connect.Request[wailv1.AckRequest]) (*connect.Response[wailv1.AckResponse], error) {
	return connect.NewResponse(&wailv1.AckResponse{}), nil
}

// TestConsumerSnapshotEndToldNotCommitted: the member acknowledged its
// snapshot's end, the stream dropped, and the server had not committed
// the end (it died first): joined again, the member gets the snapshot's
// rows again. Next fails with ErrSnapshotInterrupted there (the group
// takes the snapshot again), and a member whose stream drops before it
// told the end fails at once, as before.
func TestConsumerSnapshotEndToldNotCommitted(t *testing.T) {
	t.Parallel()
	row := &wailv1.ChangeEvent{Table: "t", Key: []byte("a"), Version: 1}
	for _, tc := range []struct {
		name  string
		grps  []scriptedStream[wailv1.ConsumeResponse]
		ack   bool // acknowledge the row, so that the end is told
		joins int  // streams opened
	}{
		{"told, taken again", []scriptedStream[wailv1.ConsumeResponse]{
			{msgs: []*wailv1.ConsumeResponse{{Event: row, Snapshot: true}, {SnapshotEnd: true, SnapshotId: 7}}, code: connect.CodeUnavailable, last: 100 * time.Millisecond},
			{msgs: []*wailv1.ConsumeResponse{{Event: row, Snapshot: true}}, hold: true},
		}, true, 2},
		{"not told", []scriptedStream[wailv1.ConsumeResponse]{
			{msgs: []*wailv1.ConsumeResponse{{Event: row, Snapshot: true}, {SnapshotEnd: true, SnapshotId: 7}}, code: connect.CodeUnavailable, last: 100 * time.Millisecond},
		}, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &scripted{grps: tc.grps}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c := snapshotMember(ctx, t, serveEvents(t, ackingScripted{s}))
			m, err := c.Next(ctx)
			if err != nil || !m.Snapshot {
				t.Fatalf("snapshot row: %v, %v", m, err)
			}
			if tc.ack {
				if err := c.Ack(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			_, err = c.Next(ctx)
			if !errors.Is(err, client.ErrSnapshotInterrupted) {
				t.Fatalf("Next: %v, want ErrSnapshotInterrupted", err)
			}
			if got := len(s.opened()); got != tc.joins {
				t.Fatalf("%d streams opened, want %d", got, tc.joins)
			}
			if _, err := c.Next(ctx); !errors.Is(err, client.ErrConsumerClosed) && !errors.Is(err, client.ErrSnapshotInterrupted) {
				t.Fatalf("Next after: %v", err)
			}
		})
	}
}
