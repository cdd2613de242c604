package api

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/group"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
)

// TestConsumeStreams: a member's stream on a real bus and groups (an
// embedded log): after the headers, the member gets its join (an empty
// message: a member granted nothing yet learns a snapshot before it is
// over), its partitions granted, then the events published, each with
// its epoch and next;
// the server's shutdown (Close) ends the stream cleanly.
func TestConsumeStreams(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, bus, c, svc := consumeWorld(t, time.Minute)
	publish := func(vs ...uint64) {
		t.Helper()
		var evs []intent.Event
		for _, v := range vs {
			evs = append(evs, intent.Event{Table: "t", Key: []byte("k"), Op: intent.Upsert, Version: v, Value: []byte("{}")})
		}
		if err := bus.Publish(ctx, "t", evs); err != nil {
			t.Fatal(err)
		}
	}
	publish(1, 2)
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	s, err := c.Consume(sctx, connect.NewRequest(&wailv1.ConsumeRequest{Table: "t", Group: "g", Member: "m", Start: "beginning"}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	next := func() *wailv1.ConsumeResponse {
		t.Helper()
		if !s.Receive() {
			t.Fatalf("the stream ended: %v", s.Err())
		}
		return s.Msg()
	}
	if m := next(); !proto.Equal(m, &wailv1.ConsumeResponse{}) {
		t.Fatalf("first message %v, want the join (empty)", m)
	}
	if g := next().Granted; len(g) != 1 || g[0].Partition != 0 || g[0].Offset != 0 {
		t.Fatalf("granted %v, want partition 0 from offset 0", g)
	}
	var versions []uint64
	for len(versions) < 3 {
		m := next()
		if m.Event == nil || m.Epoch == 0 || m.Next != m.Offset+1 {
			t.Fatalf("message %v, want an event with its epoch and next", m)
		}
		versions = append(versions, m.Event.Version)
		if len(versions) == 2 {
			publish(3) // delivered as it comes
		}
	}
	if versions[0] != 1 || versions[1] != 2 || versions[2] != 3 {
		t.Fatalf("versions %v, want 1, 2, 3", versions)
	}
	svc.Close()
	for s.Receive() {
	}
	if err := s.Err(); err != nil {
		t.Fatalf("the server's shutdown ended the stream with %v, want a clean end", err)
	}
}

// consumeWorld is an EventService on a real bus and groups (an embedded
// log, members' leases of lease) with a table "t" of one partition.
func consumeWorld(t *testing.T, lease time.Duration) (*embedded.Log, *eventbus.Bus, wailv1connect.EventServiceClient, *EventService) {
	t.Helper()
	return consumeWorldOf(t, lease, 1)
}

// consumeWorldOf is consumeWorld with a table "t" of n partitions.
func consumeWorldOf(t *testing.T, lease time.Duration, n int32) (*embedded.Log, *eventbus.Bus, wailv1connect.EventServiceClient, *EventService) {
	t.Helper()
	log, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	bus := eventbus.New(log)
	if err := bus.CreateTable(t.Context(), "t", n, 0); err != nil {
		t.Fatal(err)
	}
	groups := eventbus.NewService(bus, func(table string) (int32, bool) { return n, table == "t" }).WithGroups(group.New(log, lease))
	t.Cleanup(groups.Close)
	c, svc := serveEventService(t, groups)
	return log, bus, c, svc
}
