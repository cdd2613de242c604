package e2etest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// TestSinkRedriveAcrossProcesses: two `wail serve` processes share a
// PostgreSQL store and Kafka, with sinks enabled; a webhook sink whose
// endpoint refused (400) the events of poison keys has their dead letters.
// Once the endpoint takes them, both processes are asked at once to
// redrive --all (one delivers the sink, the other does not) while a drop
// of some of the letters goes through the other process. Each letter ends
// in one outcome: the endpoint took a REDRIVEN letter's event exactly
// once and a DROPPED one's never; a request that lost a letter failed
// with aborted (and named it), the redrive of the process that does not
// deliver the sink with failed_precondition; retried redrives leave the
// list empty.
func TestSinkRedriveAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wail binary")
	}
	const poison, dropped = 40, 10
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := startShared(t, ctx, "xd_", 2, 4, "sinks:\n  refresh: 200ms\n")
	admin := []wailv1connect.AdminServiceClient{
		wailv1connect.NewAdminServiceClient(http.DefaultClient, d.url(0)),
		wailv1connect.NewAdminServiceClient(http.DefaultClient, d.url(1)),
	}

	// The endpoint refuses poison keys' events while refusing is set,
	// and counts the events it took per key.
	var refusing atomic.Bool
	refusing.Store(true)
	var mu sync.Mutex
	took := map[string]int{}
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		var b wailv1.SinkBatch
		if err := protojson.Unmarshal(body, &b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, e := range b.Events {
			if refusing.Load() && strings.HasPrefix(string(e.Key), "poison-") {
				http.Error(w, "refused", http.StatusBadRequest)
				return
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, e := range b.Events {
			took[string(e.Key)]++
		}
	}))
	defer ep.Close()
	if _, err := admin[1].CreateSink(ctx, connect.NewRequest(&wailv1.CreateSinkRequest{Table: d.table, Sink: &wailv1.Sink{
		Name: "hook", Url: ep.URL + "/events", Start: "beginning", MaxBatchEvents: 1,
	}})); err != nil {
		t.Fatal(err)
	}
	var muts []*wailv1.Mutation
	for i := range poison {
		muts = append(muts, &wailv1.Mutation{Table: d.table, Key: fmt.Appendf(nil, "poison-%d", i), Value: []byte("v")},
			&wailv1.Mutation{Table: d.table, Key: fmt.Appendf(nil, "ok-%d", i), Value: []byte("v")})
	}
	d.write(t, ctx, 1, muts)
	list := func(settled bool) []*wailv1.DeadLetterEntry {
		t.Helper()
		resp, err := admin[0].ListDeadLetters(ctx, connect.NewRequest(&wailv1.ListDeadLettersRequest{Table: d.table, Sink: "hook", IncludeSettled: settled, Limit: 1000}))
		if err != nil {
			if connect.CodeOf(err) == connect.CodeNotFound { // no letter yet: no topic
				return nil
			}
			t.Fatal(err)
		}
		return resp.Msg.Entries
	}
	var letters []*wailv1.DeadLetterEntry
	waitFor(t, "the poison keys' dead letters", func() bool { letters = list(false); return len(letters) == poison })
	// The sink committed past every event: a rebalance from here on
	// (a lease lost under load) redelivers none of them, so the endpoint
	// gets a poison key's event again only from a redrive.
	last := map[int32]int64{}
	for _, e := range d.events(t, ctx) {
		last[e.Partition] = max(last[e.Partition], e.Offset)
	}
	waitFor(t, "the sink to commit past every event", func() bool {
		resp, err := wailv1connect.NewEventServiceClient(http.DefaultClient, d.url(0)).DescribeGroup(ctx, connect.NewRequest(&wailv1.DescribeGroupRequest{Table: d.table, Group: "sink.hook"}))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range resp.Msg.Partitions {
			if off, ok := last[p.Partition]; ok && p.Committed <= off {
				return false
			}
		}
		return len(resp.Msg.Partitions) == int(d.parts)
	})
	refusing.Store(false)

	// At once: redrive --all through both processes, a drop of the last
	// letters through process 0.
	var drop []int64
	for _, e := range letters[poison-dropped:] {
		drop = append(drop, e.Offset)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	var redriveErr [2]error
	for i := range admin {
		wg.Go(func() {
			<-start
			_, redriveErr[i] = admin[i].RedriveDeadLetters(ctx, connect.NewRequest(&wailv1.RedriveDeadLettersRequest{Table: d.table, Sink: "hook", All: true}))
		})
	}
	var dropErr error
	wg.Go(func() {
		<-start
		_, dropErr = admin[0].DropDeadLetters(ctx, connect.NewRequest(&wailv1.DropDeadLettersRequest{Table: d.table, Sink: "hook", Offsets: drop}))
	})
	close(start)
	wg.Wait()
	t.Logf("at once: redrive via 0: %v; via 1: %v; drop via 0: %v", redriveErr[0], redriveErr[1], dropErr)
	for i, err := range redriveErr {
		if c := connect.CodeOf(err); err != nil && c != connect.CodeFailedPrecondition && c != connect.CodeAborted {
			t.Fatalf("redrive via process %d: %v; want success, failed_precondition (not delivering, or joining) or aborted (lost to the drop)", i, err)
		}
	}
	if c := connect.CodeOf(dropErr); dropErr != nil && c != connect.CodeAborted {
		t.Fatalf("drop: %v; want success or aborted", dropErr)
	}
	// Operators retry redrive --all on both until nothing is left (the
	// sink may still have been joining its group).
	waitFor(t, "the list to end empty", func() bool {
		for _, a := range admin {
			_, err := a.RedriveDeadLetters(ctx, connect.NewRequest(&wailv1.RedriveDeadLettersRequest{Table: d.table, Sink: "hook", All: true}))
			if c := connect.CodeOf(err); err != nil && c != connect.CodeFailedPrecondition {
				t.Fatalf("redrive --all again: %v", err)
			}
		}
		return len(list(false)) == 0
	})

	all := list(true)
	if len(all) != poison {
		t.Fatalf("%d letters with the settled ones, want %d", len(all), poison)
	}
	inDrop := map[int64]bool{}
	for _, off := range drop {
		inDrop[off] = true
	}
	mu.Lock()
	defer mu.Unlock()
	var redrove, droppedN int
	parts := map[int32]int{}
	for _, e := range all {
		parts[e.Letter.Partition]++
		key, n := string(e.Letter.Key), took[string(e.Letter.Key)]
		switch a := e.Resolution.GetAction(); {
		case a == wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN:
			redrove++
			if n != 1 {
				t.Errorf("letter %d (%s) redriven, and the endpoint took it %d times, want once", e.Offset, key, n)
			}
			if inDrop[e.Offset] && (dropErr == nil || !strings.Contains(dropErr.Error(), fmt.Sprint(e.Offset))) {
				t.Errorf("letter %d was in the drop and was redriven, but the drop's error (%v) does not name it", e.Offset, dropErr)
			}
		case a == wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED:
			droppedN++
			if n != 0 || !inDrop[e.Offset] {
				t.Errorf("letter %d (%s) dropped (in the drop: %v), and the endpoint took it %d times, want never", e.Offset, key, inDrop[e.Offset], n)
			}
		default:
			t.Errorf("letter %d settled %v, want redriven or dropped", e.Offset, e.Resolution)
		}
	}
	for i := range poison {
		if k := fmt.Sprintf("ok-%d", i); took[k] != 1 {
			t.Errorf("the endpoint took %s %d times, want once", k, took[k])
		}
	}
	t.Logf("%d letters (per bus partition %v): %d redriven (each taken once), %d dropped (never sent)", len(all), parts, redrove, droppedN)
}
