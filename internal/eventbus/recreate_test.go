package eventbus

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// TestStaleCursorAfterRecreate: a cursor of a table that was dropped and
// created again with the same name and partition count is refused
// (invalid_argument, saying so): it belongs to the old table. (It was
// accepted and, clamped to the new topic's end, skipped the new table's
// events silently.) A cursor without a creation time (version 1, from an
// older wail) is still taken.
func TestStaleCursorAfterRecreate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rl := openRealLog(t, "embedded")
	bus := New(rl.log)
	const table, n = "recreated", 1
	if err := bus.CreateTable(ctx, table, n, 0); err != nil {
		t.Fatal(err)
	}
	var created atomic.Int64
	created.Store(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixMicro())
	svc := NewService(bus, func(string) (int32, bool) { return n, true }).
		WithTableCreated(func(string) int64 { return created.Load() })
	mux := http.NewServeMux()
	_, closeAll := serveEvents(mux, svc, APILimits{})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { closeAll(); srv.Close() })
	c := wailv1connect.NewEventServiceClient(http.DefaultClient, srv.URL)

	publishMixed(ctx, t, rl, bus, table, 100, 10) // the old table: 10 events (+ tombstones)
	old, stale := readToEnd(ctx, t, c, table, "beginning")
	if len(old) != 10 {
		t.Fatalf("%d old events", len(old))
	}
	// Drop (the topic goes with its offsets) and create again.
	if err := rl.log.DeleteTopic(ctx, Topic(table)); err != nil {
		t.Fatal(err)
	}
	if err := bus.CreateTable(ctx, table, n, 0); err != nil {
		t.Fatal(err)
	}
	created.Add(60e6)
	publishMixed(ctx, t, rl, bus, table, 1000, 5) // the new table: 5 events
	fresh, _ := readToEnd(ctx, t, c, table, "beginning")
	if len(fresh) != 5 {
		t.Fatalf("%d new events", len(fresh))
	}
	s, err := c.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: table, From: stale, UntilEnd: true}))
	if err == nil {
		for s.Receive() {
		}
		err = s.Err()
		s.Close()
	}
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "created again") {
		t.Fatalf("a cursor of the dropped table on the new one: %v; want invalid_argument saying it was created again", err)
	}
	if _, err := ParseCursor(stale, table, n); err != nil || errors.Is(err, ErrBadCursor) {
		t.Fatalf("the stale cursor does not even parse: %v", err)
	}
	// A version 1 cursor (no creation time) is taken as before.
	v1 := Cursor{Table: table, Offsets: []int64{0}}.String()
	if got, _ := readToEnd(ctx, t, c, table, v1); len(got) != 5 {
		t.Fatalf("a version 1 cursor at 0: %d events, want 5", len(got))
	}
}
