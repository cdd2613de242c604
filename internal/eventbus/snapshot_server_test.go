package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server"
	"github.com/wail-cdc/wail/internal/server/servertest"
	"github.com/wail-cdc/wail/internal/servicetest"
	"github.com/wail-cdc/wail/internal/store"
)

// readModel is what a consumer builds from a stream: each key's state,
// checking that its versions strictly increase.
type readModel struct {
	state    map[string]*wailv1.ChangeEvent // nil value: deleted
	row      map[string]bool                // the key's last delivery was a snapshot row
	rows     int                            // snapshot rows received
	live     int                            // events received before the snapshot ended
	over     bool                           // the snapshot's end (its first cursor) came
	backward error
}

func (m *readModel) apply(r *wailv1.SubscribeResponse) {
	if r.Event == nil {
		if r.Cursor != "" {
			m.over = true
		}
		return
	}
	e := r.Event
	k := string(e.Key)
	if prev, ok := m.state[k]; ok && e.Version <= prev.Version && m.backward == nil {
		m.backward = fmt.Errorf("key %q: version %d (snapshot=%v) after %d", k, e.Version, r.Snapshot, prev.Version)
	}
	switch {
	case r.Snapshot:
		m.rows++
		if len(e.Value) == 0 && e.Op != wailv1.Op_OP_DELETE {
			m.backward = fmt.Errorf("key %q: a snapshot row without a value", k)
		}
		if m.over {
			m.backward = errors.New("a snapshot row after the snapshot's end")
		}
	case !m.over:
		m.live++
		if r.Cursor != "" {
			m.backward = errors.New("a cursor during the snapshot")
		}
	}
	m.state[k] = e
	m.row[k] = r.Snapshot
}

// startSnapshotServer starts a server on the embedded log or Kafka
// (kind) whose snapshots read chunkKeys keys per chunk, and returns it, its
// URL and a table name of its own (prefix and a unique suffix).
func startSnapshotServer(t *testing.T, kind, prefix string, chunkKeys int) (*server.Server, string, string) {
	t.Helper()
	var brokers []string
	if kind == "kafka" {
		brokers = servicetest.KafkaBrokers(t)
	}
	uniq := fmt.Sprintf("%x", time.Now().UnixNano())
	srv, url := servertest.StartServer(t, func(c *config.Config) {
		c.API.SnapshotChunkKeys = chunkKeys
		c.API.SnapshotMaxKeys = 100_000
		if kind == "kafka" {
			c.Log.Kind, c.Log.Kafka.Brokers = "kafka", brokers
			c.Resolver.Group = "wail-test-snapshot-" + uniq // a group of its own on the shared broker
		}
	})
	return srv, url, prefix + uniq
}

// TestSnapshotThenStream: a from=snapshot stream taken while writes run
// (puts and deletes of existing and new keys) delivers every key's state,
// then the changes; per key the versions it delivers strictly increase,
// and once writes stop, what the consumer built equals the store.
func TestSnapshotThenStream(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"embedded", "kafka"} {
		t.Run(kind, func(t *testing.T) { testSnapshotThenStream(t, kind) })
	}
}

func testSnapshotThenStream(t *testing.T, kind string) {
	t.Parallel()
	srv, url, tbl := startSnapshotServer(t, kind, "s_", 8) // many chunks in flight while writes run
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
	prod := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	events := wailv1connect.NewEventServiceClient(http.DefaultClient, url)
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: tbl, Partitions: 4})); err != nil {
		t.Fatal(err)
	}
	const keys = 600 // 400 before the snapshot, 200 more created during it
	key := func(i int) []byte { return fmt.Appendf(nil, "k%04d", i) }
	// keys the writers never touch
	quiet := func(i int) []byte { return fmt.Appendf(nil, "q%04d", i) }
	var muts []*wailv1.Mutation
	for i := range 400 {
		muts = append(muts, &wailv1.Mutation{Table: tbl, Key: key(i), Op: wailv1.Op_OP_UPSERT, Value: []byte("initial")},
			&wailv1.Mutation{Table: tbl, Key: quiet(i), Op: wailv1.Op_OP_UPSERT, Value: []byte("quiet")})
	}
	if _, err := prod.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: muts})); err != nil {
		t.Fatal(err)
	}
	// Their events are on the bus before the snapshot starts: the quiet
	// keys can then only come as snapshot rows.
	for published := 0; published < len(muts); {
		if ctx.Err() != nil {
			t.Fatalf("%d of %d events published", published, len(muts))
		}
		s, err := events.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: tbl, From: "beginning", UntilEnd: true}))
		if err != nil {
			t.Fatal(err)
		}
		for published = 0; s.Receive(); {
			if s.Msg().Event != nil {
				published++
			}
		}
		s.Close()
	}

	var written atomic.Int64
	stop := make(chan struct{})
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				k := key(rng.IntN(keys))
				var err error
				if rng.IntN(5) == 0 {
					_, err = prod.Delete(ctx, connect.NewRequest(&wailv1.DeleteRequest{Table: tbl, Key: k}))
				} else {
					_, err = prod.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: tbl, Key: k, Value: fmt.Appendf(nil, "w%d-%d", w, n)}))
				}
				if err != nil {
					t.Errorf("write: %v", err)
					return
				}
				written.Add(1)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // writes run before and during the snapshot

	s, err := events.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: tbl, From: "snapshot"}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := &readModel{state: map[string]*wailv1.ChangeEvent{}, row: map[string]bool{}}
	msgs := make(chan *wailv1.SubscribeResponse, 1024)
	go func() {
		defer close(msgs)
		for s.Receive() {
			msgs <- s.Msg()
		}
	}()
	next := func(wait time.Duration) (*wailv1.SubscribeResponse, bool) {
		select {
		case r, ok := <-msgs:
			if !ok {
				t.Fatalf("the stream ended: %v", s.Err())
			}
			return r, true
		case <-time.After(wait):
			return nil, false
		}
	}
	for !m.over {
		r, ok := next(30 * time.Second)
		if !ok {
			t.Fatalf("the snapshot did not end: %d rows, %d events", m.rows, m.live)
		}
		m.apply(r)
	}
	atWrites := written.Load()
	time.Sleep(300 * time.Millisecond) // writes go on after the snapshot
	close(stop)
	writers.Wait()
	t.Logf("snapshot: %d rows, %d events during it, %d writes by its end, %d in all", m.rows, m.live, atWrites, written.Load())
	if m.live == 0 {
		t.Fatalf("%d rows and no event during the snapshot: the test needs both", m.rows)
	}
	for i := range 400 {
		if e := m.state[string(quiet(i))]; e == nil || string(e.Value) != "quiet" || !m.row[string(quiet(i))] {
			t.Fatalf("untouched key %s: consumer has %v after the snapshot, as a row: %v", quiet(i), e, m.row[string(quiet(i))])
		}
	}

	// Once writes stopped, the consumer converges on the store's state.
	want := map[string]store.Row{}
	for i := range keys {
		row, found, err := srv.Store().Get(ctx, tbl, key(i), store.Level(len(srv.Store().Levels())-1))
		if err != nil {
			t.Fatal(err)
		}
		if found {
			want[string(key(i))] = row
		}
	}
	diff := func() string {
		for k, row := range want {
			e := m.state[k]
			switch {
			case row.Deleted && e != nil && e.Op != wailv1.Op_OP_DELETE:
				return fmt.Sprintf("key %q deleted at %d, consumer has %d", k, row.Version, e.Version)
			case !row.Deleted && (e == nil || e.Version != row.Version || string(e.Value) != string(row.Value)):
				return fmt.Sprintf("key %q at %d in the store, consumer has %v", k, row.Version, e)
			}
		}
		return ""
	}
	for d := diff(); d != ""; d = diff() {
		r, ok := next(15 * time.Second)
		if !ok {
			t.Fatalf("the consumer does not reach the store's state: %s", d)
		}
		m.apply(r)
		if m.backward != nil {
			break
		}
	}
	if m.backward != nil {
		t.Fatal(m.backward)
	}
}

// TestSnapshotTooBusy: a snapshot whose filter would hold more keys than
// api.snapshot_max_keys (writes of many keys while it runs) fails with
// resource_exhausted naming the setting, and the server goes on.
func TestSnapshotTooBusy(t *testing.T) {
	t.Parallel()
	_, url := servertest.StartServer(t, func(c *config.Config) {
		c.API.SnapshotChunkKeys = 1
		c.API.SnapshotMaxKeys = 8 // the least: 8 chunks of one key
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
	prod := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	events := wailv1connect.NewEventServiceClient(http.DefaultClient, url)
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "busy", Partitions: 2})); err != nil {
		t.Fatal(err)
	}
	var muts []*wailv1.Mutation
	for i := range 200 {
		muts = append(muts, &wailv1.Mutation{Table: "busy", Key: fmt.Appendf(nil, "k%d", i), Op: wailv1.Op_OP_UPSERT, Value: []byte("v")})
	}
	if _, err := prod.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: muts})); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // new keys, each an event the snapshot's filter must hold
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := prod.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "busy", Key: fmt.Appendf(nil, "new%d", i), Value: []byte("v")})); err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	s, err := events.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "busy", From: "snapshot"}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	for s.Receive() {
		if s.Msg().Cursor != "" {
			t.Fatalf("the snapshot ended after %d messages; the test needs it to overflow", n)
		}
		n++
	}
	if err := s.Err(); connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "api.snapshot_max_keys") {
		t.Fatalf("after %d messages: %v, want resource_exhausted naming api.snapshot_max_keys", n, err)
	}
	if _, err := events.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "busy", From: "latest"})); err != nil {
		t.Fatalf("the server after the refusal: %v", err)
	}
}
