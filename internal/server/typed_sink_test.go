package server_test

import (
	"bytes"
	"context"
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
	"github.com/wail-cdc/wail/internal/server/servertest"
	"github.com/wail-cdc/wail/internal/sink"
)

// TestTypedSinkDeadLetterRedrive: a webhook sink on a typed table (key
// and value types: the bus records' keys and values are in the Confluent
// wire format, not the row's bytes) delivers the rows' events (row key,
// row value, version, the value's schema id) like an untyped table's;
// an endpoint that refuses them gets them dead-lettered (letters keyed by
// the row key), and once it accepts, redrive finds each letter's event at
// its bus offset (the bus record's key unframed: like with like) and the
// endpoint receives exactly the dead-lettered events, once each; a second
// redrive sends nothing.
func TestTypedSinkDeadLetterRedrive(t *testing.T) {
	t.Parallel()
	_, url := servertest.StartServer(t, nil)
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
	producer := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "shop", Partitions: 2,
		KeySchema: &wailv1.TypeSchema{Schema: orderKey, Message: "OrderKey"}, ValueSchema: &wailv1.TypeSchema{Schema: ordersV1, Message: "Order"}})); err != nil {
		t.Fatal(err)
	}
	v1 := latestID(t, url, "wail.events.shop-value")

	var (
		accept   atomic.Bool
		mu       sync.Mutex
		refused  []*wailv1.ChangeEvent // events of the requests answered 400
		received []*wailv1.ChangeEvent // events of the requests answered 200
	)
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var b wailv1.SinkBatch
		if err := protojson.Unmarshal(body, &b); err != nil {
			t.Errorf("the endpoint got a body that is no SinkBatch: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !accept.Load() {
			refused = append(refused, b.Events...)
			http.Error(w, "refused by the test", http.StatusBadRequest) // permanent: dead-lettered at once
			return
		}
		received = append(received, b.Events...)
	}))
	defer ep.Close()
	if _, err := admin.CreateSink(ctx, connect.NewRequest(&wailv1.CreateSinkRequest{Table: "shop", Sink: &wailv1.Sink{
		Name: "hook", Url: ep.URL, Start: "beginning", MaxAttempts: 1}})); err != nil {
		t.Fatal(err)
	}

	// Rows, one a key written twice (two letters of one key: redrive
	// sends the newer, supersedes the older).
	type row struct {
		key, value []byte
		version    uint64
	}
	var written []row
	put := func(id string, value []byte) {
		t.Helper()
		r, err := producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "shop", Key: okey(id), Value: value}))
		if err != nil {
			t.Fatalf("put %s: %v", id, err)
		}
		written = append(written, row{okey(id), value, r.Msg.Result.Version})
	}
	listLetters := func() []*wailv1.DeadLetterEntry {
		t.Helper()
		l, err := admin.ListDeadLetters(ctx, connect.NewRequest(&wailv1.ListDeadLettersRequest{Table: "shop", Sink: "hook"}))
		if err != nil {
			t.Fatal(err)
		}
		return l.Msg.Entries
	}
	waitLetters := func() []*wailv1.DeadLetterEntry {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ls := listLetters()
			if len(ls) >= len(written) {
				if len(ls) != len(written) {
					t.Fatalf("%d dead letters, want %d (one per row written)", len(ls), len(written))
				}
				return ls
			}
			if time.Now().After(deadline) {
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("%d dead letters, want %d (one per row written); the endpoint refused %d events", len(ls), len(written), len(refused))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	put("a", order("o-a", 100, "tea", 1))
	put("b", order("o-b", 200, "jam", 2))
	put("c", order("o-c", 300, "oat", 3))
	waitLetters() // each row its own event: a's second write comes after its first was lettered
	put("a", order("o-a", 150, "tea", 2))
	ls := waitLetters()
	// Each letter is a row's event as the endpoint was sent it: the row
	// key and value, not the bus record's framing.
	find := func(key []byte, version uint64) *row {
		for i := range written {
			if bytes.Equal(written[i].key, key) && written[i].version == version {
				return &written[i]
			}
		}
		return nil
	}
	for _, e := range ls {
		l := e.Letter
		w := find(l.Key, l.Event.GetVersion())
		if w == nil || !bytes.Equal(l.Event.GetKey(), w.key) || !bytes.Equal(l.Event.GetValue(), w.value) || l.Event.GetSchemaId() != v1 || l.EventOffset < 0 {
			t.Fatalf("letter %v: not a row written (%v) under schema %d", l, written, v1)
		}
	}

	accept.Store(true)
	var res []*wailv1.DeadLetterResolution
	for {
		r, err := admin.RedriveDeadLetters(ctx, connect.NewRequest(&wailv1.RedriveDeadLettersRequest{Table: "shop", Sink: "hook", All: true}))
		if err == nil {
			res = r.Msg.Resolutions
			break
		}
		// Only "not delivering here" (the sink between sessions) is
		// worth another try; a letter refused is the failure.
		if !strings.Contains(err.Error(), sink.ErrNotRunning.Error()) || ctx.Err() != nil {
			t.Fatalf("redrive: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// a's older letter is superseded by its newer one; the others are
	// redriven.
	want := map[uint64]row{}
	for _, w := range written[1:] {
		want[w.version] = w
	}
	redriven := 0
	for _, r := range res {
		switch r.Action {
		case wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN:
			redriven++
		case wailv1.DeadLetterAction_DEAD_LETTER_ACTION_SUPERSEDED:
			if r.SupersededByVersion != written[3].version {
				t.Fatalf("resolution %v: superseded by v%d, want a's newer v%d", r, r.SupersededByVersion, written[3].version)
			}
		default:
			t.Fatalf("resolution %v", r)
		}
	}
	if len(res) != len(written) || redriven != len(want) {
		t.Fatalf("resolutions %v: want %d redriven and a's older letter superseded", res, len(want))
	}
	mu.Lock()
	got := append([]*wailv1.ChangeEvent(nil), received...)
	mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("the endpoint received %d events after redrive, want %d: %v", len(got), len(want), got)
	}
	for _, e := range got {
		w, ok := want[e.Version]
		if !ok || !bytes.Equal(e.Key, w.key) || !bytes.Equal(e.Value, w.value) || e.SchemaId != v1 || e.Table != "shop" {
			t.Fatalf("the endpoint received %v, want one of %v", e, want)
		}
		delete(want, e.Version)
	}

	// A second redrive sends nothing.
	if _, err := admin.RedriveDeadLetters(ctx, connect.NewRequest(&wailv1.RedriveDeadLettersRequest{Table: "shop", Sink: "hook", All: true})); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(received) != len(got) {
		t.Fatalf("a second redrive sent %v", received[len(got):])
	}
	mu.Unlock()

	// A typed delete is a tombstone on the bus (null value, metadata in
	// headers): the sink sends it as a DELETE of the row key.
	d, err := producer.Delete(ctx, connect.NewRequest(&wailv1.DeleteRequest{Table: "shop", Key: okey("c")}))
	if err != nil {
		t.Fatal(err)
	}
	dv := d.Msg.Result.Version
	for {
		mu.Lock()
		var del *wailv1.ChangeEvent
		for _, e := range received[len(got):] {
			if e.Version == dv {
				del = e
			}
		}
		mu.Unlock()
		if del != nil {
			if del.Op != wailv1.Op_OP_DELETE || !bytes.Equal(del.Key, okey("c")) || len(del.Value) != 0 {
				t.Fatalf("the delete of c was sent as %v", del)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the sink never sent the delete of c at v%d", dv)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
