package sink_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
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
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// TestSinkSnapshotThenStream: a sink with start "snapshot", created on a
// table with keys while writers put and delete (keys existing and new),
// against an endpoint that fails one request in five: per key the
// endpoint never receives an older version than one it had (a version
// it had may come again: a redelivery), it receives snapshot requests
// (progress shows in DescribeSink), and once writes stop it ends with
// the store's state of every key.
func TestSinkSnapshotThenStream(t *testing.T) {
	url := servertest.Start(t, func(c *config.Config) { c.CatalogRefresh = 50 * time.Millisecond; c.API.SnapshotChunkKeys = 16 })
	c, err := client.Dial(client.Options{Addr: url})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "snap", Partitions: 4})); err != nil {
		t.Fatal(err)
	}
	put := func(k int, del bool) error {
		key := []byte(fmt.Sprintf("k%03d", k))
		if del {
			_, err := c.Producer.Delete(ctx, connect.NewRequest(&wailv1.DeleteRequest{Table: "snap", Key: key}))
			return err
		}
		_, err := c.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "snap", Key: key, Value: []byte(fmt.Sprint(time.Now().UnixNano()))}))
		return err
	}
	for k := range 200 {
		if err := put(k, false); err != nil {
			t.Fatal(err)
		}
	}

	var (
		mu        sync.Mutex
		got       []*wailv1.ChangeEvent
		snapshots atomic.Int64
		rnd       = rand.New(rand.NewPCG(3, 4))
	)
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var b wailv1.SinkBatch
		if err := protojson.Unmarshal(body, &b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if rnd.IntN(5) == 0 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if b.Snapshot {
			snapshots.Add(1)
		}
		got = append(got, b.Events...)
	}))
	defer ep.Close()

	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 9))
			for !stop.Load() {
				if err := put(r.IntN(260), r.IntN(6) == 0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := c.Admin.CreateSink(ctx, connect.NewRequest(&wailv1.CreateSinkRequest{Table: "snap", Sink: &wailv1.Sink{
		Name: "snap", Url: ep.URL, Start: "snapshot", MaxBatchEvents: 10, BackoffMinMs: 5, BackoffMaxMs: 50,
	}})); err != nil {
		t.Fatal(err)
	}
	var during int64
	deadline := time.Now().Add(time.Minute)
	for snapshots.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if d, err := c.Admin.DescribeSink(ctx, connect.NewRequest(&wailv1.DescribeSinkRequest{Table: "snap", Name: "snap"})); err == nil {
		during = d.Msg.Status.SnapshotEvents
		t.Logf("during the snapshot: state %s, %d events", d.Msg.Status.State, during)
	}
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()

	want := map[string]*wailv1.GetResponse{}
	for k := range 260 {
		key := fmt.Sprintf("k%03d", k)
		g, err := c.Producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "snap", Key: []byte(key)}))
		if err != nil {
			t.Fatal(err)
		}
		if g.Msg.Found || g.Msg.Deleted {
			want[key] = g.Msg
		}
	}
	caughtUp := func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		last := map[string]*wailv1.ChangeEvent{}
		for _, e := range got {
			if l := last[string(e.Key)]; l == nil || e.Version > l.Version {
				last[string(e.Key)] = e
			}
		}
		for k, w := range want {
			e := last[k]
			switch {
			case w.Deleted && e != nil && (e.Version != w.Version || e.Op != wailv1.Op_OP_DELETE):
				return false, fmt.Sprintf("%s: deleted at %d, last event %v", k, w.Version, e)
			case !w.Deleted && (e == nil || e.Version != w.Version || string(e.Value) != string(w.Value)):
				return false, fmt.Sprintf("%s: version %d, last event %v", k, w.Version, e)
			}
		}
		return true, ""
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		ok, why := caughtUp()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the endpoint does not hold the store's state: %s", why)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// After the snapshot: the group, from the snapshot's end.
	for deadline := time.Now().Add(time.Minute); ; {
		d, err := c.Admin.DescribeSink(ctx, connect.NewRequest(&wailv1.DescribeSinkRequest{Table: "snap", Name: "snap"}))
		if err != nil {
			t.Fatal(err)
		}
		if d.Msg.Status.State != "snapshot" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the snapshot is not over: %v", d.Msg.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for k := range 10 {
		if err := put(k, false); err != nil {
			t.Fatal(err)
		}
		g, err := c.Producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "snap", Key: []byte(fmt.Sprintf("k%03d", k))}))
		if err != nil {
			t.Fatal(err)
		}
		want[fmt.Sprintf("k%03d", k)] = g.Msg
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		ok, why := caughtUp()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes after the snapshot did not reach the endpoint: %s", why)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]map[uint64]bool{}
	top := map[string]uint64{}
	for _, e := range got {
		k := string(e.Key)
		if seen[k] == nil {
			seen[k] = map[uint64]bool{}
		}
		if e.Version <= top[k] && !seen[k][e.Version] {
			t.Errorf("key %s: version %d after %d, never received before: went back", k, e.Version, top[k])
		}
		seen[k][e.Version], top[k] = true, max(top[k], e.Version)
	}
	d, err := c.Admin.DescribeSink(ctx, connect.NewRequest(&wailv1.DescribeSinkRequest{Table: "snap", Name: "snap"}))
	if err != nil {
		t.Fatal(err)
	}
	if snapshots.Load() == 0 || d.Msg.Status.SnapshotEvents == 0 || d.Msg.Status.DeliveredEvents <= d.Msg.Status.SnapshotEvents {
		t.Errorf("%d snapshot requests taken, status %v: want some, and events delivered after it", snapshots.Load(), d.Msg.Status)
	}
	t.Logf("%d events received (%d snapshot requests; %d snapshot events, %d while it ran); %d keys in the store",
		len(got), snapshots.Load(), d.Msg.Status.SnapshotEvents, during, len(want))
}

// TestSinkGroupReserved: no member may join a sink's group over the API
// (it would take partitions from the sink's deliveries).
func TestSinkGroupReserved(t *testing.T) {
	url := servertest.Start(t, nil)
	c, err := client.Dial(client.Options{Addr: url})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "r"})); err != nil {
		t.Fatal(err)
	}
	cons, err := client.NewConsumer(ctx, c.Events, client.ConsumerConfig{Table: "r", Group: "sink.hook", Member: "m"})
	if err == nil { // the error may come with the stream's first answer
		_, err = cons.Next(ctx)
		cons.Close()
	}
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "belong to webhook sinks") {
		t.Fatalf("consume as group sink.hook: %v, want invalid_argument", err)
	}
}

// TestSinkFromConfig: a sink of sinks.webhooks is saved at start and
// delivers.
func TestSinkFromConfig(t *testing.T) {
	got := make(chan *wailv1.SinkBatch, 16)
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var b wailv1.SinkBatch
		if err := protojson.Unmarshal(body, &b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got <- &b
	}))
	defer ep.Close()
	url := servertest.Start(t, func(c *config.Config) {
		c.Tables = []config.Table{{Name: "cfgt"}}
		c.Sinks.Webhooks = []config.Webhook{{Table: "cfgt", Name: "fromcfg", URL: ep.URL, Start: "beginning"}}
	})
	c, err := client.Dial(client.Options{Addr: url})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "cfgt", Key: []byte("k"), Value: []byte("v")})); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if b.Sink != "fromcfg" || len(b.Events) != 1 || string(b.Events[0].Key) != "k" {
			t.Fatalf("received %v", b)
		}
	case <-time.After(time.Minute):
		t.Fatal("the configured sink delivered nothing")
	}
	l, err := c.Admin.ListSinks(ctx, connect.NewRequest(&wailv1.ListSinksRequest{Table: "cfgt"}))
	if err != nil || len(l.Msg.Sinks) != 1 || l.Msg.Sinks[0].Sink.Name != "fromcfg" {
		t.Fatalf("list: %v, %v", l, err)
	}
}
