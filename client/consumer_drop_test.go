package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
)

// dropper is an event service whose streams send one message, then fail
// with code (or end without error when code is 0).
type dropper struct {
	wailv1connect.UnimplementedEventServiceHandler
	code  connect.Code
	sub   *wailv1.SubscribeResponse
	grp   *wailv1.ConsumeResponse
	calls atomic.Int32
}

func (d *dropper) end() error {
	if d.code == 0 {
		return nil
	}
	return connect.NewError(d.code, errors.New("dropped"))
}

func (d *dropper) Subscribe(_ context.Context, _ *connect.Request[wailv1.SubscribeRequest], s *connect.ServerStream[wailv1.SubscribeResponse]) error {
	d.calls.Add(1)
	if err := s.Send(d.sub); err != nil {
		return err
	}
	return d.end()
}

func (d *dropper) Consume(_ context.Context, _ *connect.Request[wailv1.ConsumeRequest], s *connect.ServerStream[wailv1.ConsumeResponse]) error {
	d.calls.Add(1)
	if err := s.Send(d.grp); err != nil {
		return err
	}
	return d.end()
}

// TestConsumerDrops: what Next does when a stream drops after one
// message: reconnect (unavailable, aborted, the end of the stream), or
// return the error (a snapshot half way, Reconnect.Disabled, an error
// that another attempt would meet again).
func TestConsumerDrops(t *testing.T) {
	t.Parallel()
	row := &wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Version: 1, Value: []byte("v")}
	live := &wailv1.SubscribeResponse{Event: row, Cursor: "c"}
	snapRow := &wailv1.SubscribeResponse{Event: row, Snapshot: true}
	member := &wailv1.ConsumeResponse{Event: row, Epoch: 1, Next: 1}
	memberSnap := &wailv1.ConsumeResponse{Event: row, Snapshot: true}
	for _, tc := range []struct {
		name      string
		code      connect.Code
		cfg       client.ConsumerConfig
		sub       *wailv1.SubscribeResponse
		grp       *wailv1.ConsumeResponse
		reconnect bool
		want      error
		wantCode  connect.Code
	}{
		{name: "subscription unavailable", code: connect.CodeUnavailable, sub: live, reconnect: true},
		{name: "subscription ended by the server", sub: live, reconnect: true},
		{name: "member lease expired", code: connect.CodeAborted, grp: member, reconnect: true},
		{name: "subscription mid-snapshot", code: connect.CodeUnavailable, cfg: client.ConsumerConfig{From: "snapshot"}, sub: snapRow,
			want: client.ErrSnapshotInterrupted},
		{name: "member mid-snapshot", code: connect.CodeUnavailable, cfg: client.ConsumerConfig{Start: "snapshot"}, grp: memberSnap,
			want: client.ErrSnapshotInterrupted},
		{name: "disabled", code: connect.CodeUnavailable, cfg: client.ConsumerConfig{Reconnect: client.Reconnect{Disabled: true}}, sub: live,
			wantCode: connect.CodeUnavailable},
		{name: "not retryable", code: connect.CodePermissionDenied, sub: live, wantCode: connect.CodePermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := &dropper{code: tc.code, sub: tc.sub, grp: tc.grp}
			mux := http.NewServeMux()
			mux.Handle(wailv1connect.NewEventServiceHandler(d))
			srv := httptest.NewServer(mux)
			defer srv.Close()
			cfg := tc.cfg
			cfg.Table = "t"
			if tc.grp != nil {
				cfg.Group, cfg.Member = "g", "m"
			}
			cfg.Reconnect.MinWait, cfg.Reconnect.MaxWait = time.Millisecond, 5*time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := client.NewConsumer(ctx, wailv1connect.NewEventServiceClient(http.DefaultClient, srv.URL), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Next(ctx); err != nil {
				t.Fatalf("first message: %v", err)
			}
			if tc.reconnect {
				for i := range 3 {
					if _, err := c.Next(ctx); err != nil {
						t.Fatalf("message %d after the drops: %v", i+2, err)
					}
				}
				if n := d.calls.Load(); n < 4 {
					t.Fatalf("%d streams opened, want one per message", n)
				}
				return
			}
			_, err = c.Next(ctx)
			switch {
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("after the drop: %v, want %v", err, tc.want)
			case tc.wantCode != 0 && connect.CodeOf(err) != tc.wantCode:
				t.Fatalf("after the drop: %v, want %v", err, tc.wantCode)
			}
			if n := d.calls.Load(); n != 1 {
				t.Fatalf("%d streams opened, want 1", n)
			}
		})
	}
}
