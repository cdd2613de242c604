package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/server/servertest"
	"github.com/wail-cdc/wail/internal/store"
)

// TestSnapshotDriftGuard: a snapshot's rows of a typed table go through
// the drift guard of live events: a row that fits its schema is delivered
// under the id it would be published with (its own, or for a row without
// one the newest version that reads it); rows changed in the store behind
// wail that fit no schema (an unknown field under the id they claim,
// bytes that are no message) are never delivered and are dead-lettered
// (SNAPSHOT letters with the row's key and version), once per process
// however many snapshots read them; a sink's snapshot (the same stream,
// eventbus.Service.Stream) sends the good rows and never the drifted ones.
func TestSnapshotDriftGuard(t *testing.T) {
	t.Parallel()
	srv, url := servertest.StartServer(t, nil)
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
	producer := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	events := wailv1connect.NewEventServiceClient(http.DefaultClient, url)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "shop", Partitions: 2,
		ValueSchema: &wailv1.TypeSchema{Schema: ordersV1, Message: "Order"}})); err != nil {
		t.Fatal(err)
	}
	v1 := latestID(t, url, "wail.events.shop-value")
	if _, err := producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "shop", Key: []byte("a"), Value: order("o-a", 1, "tea", 1)})); err != nil {
		t.Fatal(err)
	}
	// Behind wail: rows the proxy never saw (no intent, no live event).
	unknownField := protowire.AppendVarint(protowire.AppendTag(order("o-y", 2, "jam", 2), 9, protowire.VarintType), 7)
	behind := []store.Mutation{
		{Key: []byte("b"), Value: order("o-b", 3, "oat", 3)},        // no schema id: the newest version reads it
		{Key: []byte("y"), Value: unknownField, SchemaID: v1},       // field 9: not a v1 Order
		{Key: []byte("z"), Value: []byte{0xff, 0xff}, SchemaID: v1}, // not a message at all
	}
	versions := map[string]uint64{}
	for i := range behind {
		behind[i].Version = hlc.At(time.Now()) + uint64(i)
		versions[string(behind[i].Key)] = behind[i].Version
	}
	if out, err := srv.Store().Apply(ctx, "shop", behind); err != nil || !out[0].Applied || !out[1].Applied || !out[2].Applied {
		t.Fatalf("write behind wail: %v %v", out, err)
	}

	snapshot := func() map[string]*wailv1.ChangeEvent {
		t.Helper()
		stream, err := events.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "shop", From: "snapshot"}))
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		got := map[string]*wailv1.ChangeEvent{}
		for stream.Receive() {
			m := stream.Msg()
			// a's row, or its live event when the resolver published it
			// after the stream began (then the row, not newer, is not
			// sent): both before the snapshot's cursor.
			if m.Event != nil {
				got[string(m.Event.Key)] = m.Event
			}
			if m.Cursor != "" {
				return got
			}
		}
		t.Fatalf("the snapshot ended without its cursor: %v", stream.Err())
		return nil
	}
	letters := func() []*wailv1.DeadLetter {
		t.Helper()
		list, err := admin.ListDeadLetters(ctx, connect.NewRequest(&wailv1.ListDeadLettersRequest{Table: "shop"}))
		if err != nil {
			t.Fatal(err)
		}
		var out []*wailv1.DeadLetter
		for _, e := range list.Msg.Entries {
			out = append(out, e.Letter)
		}
		return out
	}
	for round := range 2 {
		got := snapshot()
		for _, k := range []string{"a", "b"} {
			if e := got[k]; e == nil || e.SchemaId != v1 {
				t.Fatalf("round %d: the snapshot's %s: %+v, want it under schema %d", round, k, e, v1)
			}
		}
		for _, k := range []string{"y", "z"} {
			if e := got[k]; e != nil {
				t.Fatalf("round %d: the snapshot delivered the drifted row %s: %+v", round, k, e)
			}
		}
		ls := letters()
		if len(ls) != 2 {
			t.Fatalf("round %d: %d dead letters, want one per drifted row: %v", round, len(ls), ls)
		}
		for _, l := range ls {
			k := string(l.Key)
			if l.Kind != wailv1.DeadLetterKind_DEAD_LETTER_KIND_SNAPSHOT || (k != "y" && k != "z") || l.SnapshotVersion != versions[k] ||
				!l.Permanent || len(l.Intents) != 0 || !strings.Contains(l.Error, "snapshot: ") || !strings.Contains(l.Error, "fit") {
				t.Fatalf("round %d: letter %+v", round, l)
			}
		}
		if !bytes.Equal(got["b"].Value, order("o-b", 3, "oat", 3)) {
			t.Fatalf("b's value %x", got["b"].Value)
		}
	}

	// A sink's snapshot is the same stream: the endpoint gets a and b, in
	// snapshot requests, never y or z, and no letter is added (this
	// process lettered them already).
	var mu sync.Mutex
	sent := map[string]uint32{}
	snapshotReqs := 0
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var b wailv1.SinkBatch
		if err := protojson.Unmarshal(body, &b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if b.Snapshot {
			snapshotReqs++
		}
		for _, e := range b.Events {
			sent[string(e.Key)] = e.SchemaId
		}
	}))
	defer ep.Close()
	if _, err := admin.CreateSink(ctx, connect.NewRequest(&wailv1.CreateSinkRequest{Table: "shop", Sink: &wailv1.Sink{
		Name: "hook", Url: ep.URL, Start: "snapshot"}})); err != nil {
		t.Fatal(err)
	}
	for {
		d, err := admin.DescribeSink(ctx, connect.NewRequest(&wailv1.DescribeSinkRequest{Table: "shop", Name: "hook"}))
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		done := snapshotReqs > 0 && d.Msg.Status.State != "snapshot" && len(d.Msg.Status.Partitions) > 0 && sent["a"] != 0 && sent["b"] != 0
		mu.Unlock()
		if done {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the sink's snapshot did not end: %+v, sent %v", d.Msg.Status, sent)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if _, ok := sent["y"]; ok {
		t.Fatal("the sink's snapshot delivered the drifted row y")
	}
	if _, ok := sent["z"]; ok {
		t.Fatal("the sink's snapshot delivered the drifted row z")
	}
	t.Logf("the sink got %v in %d snapshot requests", sent, snapshotReqs)
	if sent["a"] != v1 || sent["b"] != v1 {
		t.Fatalf("the sink's snapshot sent %v, want a and b under schema %d", sent, v1)
	}
	if ls := letters(); len(ls) != 2 {
		t.Fatalf("after the sink's snapshot: %d letters, want the same 2", len(ls))
	}
}
