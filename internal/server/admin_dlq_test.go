package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/server"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// toolRig is a server with one table "t" and direct access to its log and
// store, to lose events and write dead letters on purpose.
type toolRig struct {
	srv *server.Server
	clients
}

func startTools(t *testing.T, partitions int32) toolRig {
	t.Helper()
	srv, url := servertest.StartServer(t, nil)
	r := toolRig{srv: srv, clients: clients{
		url: url, producer: wailv1connect.NewProducerServiceClient(http.DefaultClient, url),
		admin: wailv1connect.NewAdminServiceClient(http.DefaultClient, url), events: wailv1connect.NewEventServiceClient(http.DefaultClient, url),
	}}
	if _, err := r.admin.CreateTable(t.Context(), connect.NewRequest(&wailv1.CreateTableRequest{Name: "t", Partitions: partitions})); err != nil {
		t.Fatal(err)
	}
	return r
}

// lose loses a key's events (see servertest.Lose).
func (r toolRig) lose(t *testing.T, key, value string, deleted bool) uint64 {
	return servertest.Lose(t, r.srv, "t", key, value, deleted)
}

func keyLetter(key string, version uint64) *wailv1.DeadLetter {
	return &wailv1.DeadLetter{
		Table: "t", Key: []byte(key), Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_READ,
		Intents:       []*wailv1.Intent{{Table: "t", Key: []byte(key), Op: wailv1.Op_OP_UPSERT, Version: version, IntentId: "x"}},
		IntentOffsets: []int64{0}, Error: "read failed", Attempts: 5, ResolverId: "r-1",
	}
}

// awaitEvent waits for an event of key at version (read from the start).
func (r toolRig) awaitEvent(t *testing.T, key string, version uint64) *wailv1.ChangeEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := r.events.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "t", From: "beginning"}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	for stream.Receive() {
		if e := stream.Msg().Event; e != nil && string(e.Key) == key && e.Version >= version {
			return e
		}
	}
	t.Fatalf("no event of %q at version %d: %v", key, version, stream.Err())
	return nil
}

func wantCode(t *testing.T, what string, err error, code connect.Code, msg string) {
	t.Helper()
	if connect.CodeOf(err) != code || !strings.Contains(err.Error(), msg) {
		t.Errorf("%s: %v, want %v with %q", what, err, code, msg)
	}
}

func TestDeadLetterRPCs(t *testing.T) {
	t.Parallel()
	r := startTools(t, 2)
	ctx := t.Context()
	put, err := r.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("lost"), Value: []byte("old")}))
	if err != nil {
		t.Fatal(err)
	}
	r.awaitEvent(t, "lost", put.Msg.Result.Version)
	stored := r.lose(t, "lost", "new", false) // its event never comes
	offs := servertest.DeadLetters(t, r.srv, "t", keyLetter("lost", stored), keyLetter("junk", 1))

	list, err := r.admin.ListDeadLetters(ctx, connect.NewRequest(&wailv1.ListDeadLettersRequest{Table: "t"}))
	if err != nil || len(list.Msg.Entries) != 2 || list.Msg.More || string(list.Msg.Entries[0].Letter.Key) != "lost" {
		t.Fatalf("list: %v, %v", list, err)
	}
	page, err := r.admin.ListDeadLetters(ctx, connect.NewRequest(&wailv1.ListDeadLettersRequest{Table: "t", Limit: 1, AfterOffset: proto.Int64(offs[0])}))
	if err != nil || len(page.Msg.Entries) != 1 || page.Msg.Entries[0].Offset != offs[1] || page.Msg.More {
		t.Fatalf("page after %d: %v, %v", offs[0], page, err)
	}
	got, err := r.admin.GetDeadLetter(ctx, connect.NewRequest(&wailv1.GetDeadLetterRequest{Table: "t", Offset: offs[1]}))
	if err != nil || string(got.Msg.Entry.Letter.Key) != "junk" || got.Msg.Entry.Resolution != nil {
		t.Fatalf("get: %v, %v", got, err)
	}

	red, err := r.admin.RedriveDeadLetters(ctx, connect.NewRequest(&wailv1.RedriveDeadLettersRequest{Table: "t", Offsets: []int64{offs[0]}}))
	if err != nil {
		t.Fatal(err)
	}
	if res := red.Msg.Resolutions; len(res) != 1 || res[0].RedriveVersion != stored || res[0].Action != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_REDRIVEN {
		t.Fatalf("redrive: %v", res)
	}
	if e := r.awaitEvent(t, "lost", stored); e.Version != stored || string(e.Value) != "new" {
		t.Errorf("event after redrive: %v, want version %d value new", e, stored)
	}
	drop, err := r.admin.DropDeadLetters(ctx, connect.NewRequest(&wailv1.DropDeadLettersRequest{Table: "t", All: true}))
	if err != nil || len(drop.Msg.Resolutions) != 1 || drop.Msg.Resolutions[0].Offset != offs[1] {
		t.Fatalf("drop --all: %v, %v", drop, err)
	}
	left, err := r.admin.ListDeadLetters(ctx, connect.NewRequest(&wailv1.ListDeadLettersRequest{Table: "t"}))
	if err != nil || len(left.Msg.Entries) != 0 {
		t.Errorf("unsettled after redrive and drop: %v, %v", left, err)
	}
	all, err := r.admin.ListDeadLetters(ctx, connect.NewRequest(&wailv1.ListDeadLettersRequest{Table: "t", IncludeSettled: true}))
	if err != nil || len(all.Msg.Entries) != 2 || all.Msg.Entries[0].Resolution.GetRedriveVersion() != stored ||
		all.Msg.Entries[1].Resolution.GetAction() != wailv1.DeadLetterAction_DEAD_LETTER_ACTION_DROPPED {
		t.Errorf("settled list: %v, %v", all, err)
	}

	// Bad input, unknown things.
	_, err = r.admin.ListDeadLetters(ctx, connect.NewRequest(&wailv1.ListDeadLettersRequest{Table: "nope"}))
	wantCode(t, "list of an unknown table", err, connect.CodeNotFound, `table "nope" does not exist`)
	_, err = r.admin.ListDeadLetters(ctx, connect.NewRequest(&wailv1.ListDeadLettersRequest{Table: "t", Limit: -1}))
	wantCode(t, "negative limit", err, connect.CodeInvalidArgument, "limit")
	_, err = r.admin.ListDeadLetters(ctx, connect.NewRequest(&wailv1.ListDeadLettersRequest{Table: "t", AfterOffset: proto.Int64(-2)}))
	wantCode(t, "after -2", err, connect.CodeInvalidArgument, "after_offset")
	_, err = r.admin.GetDeadLetter(ctx, connect.NewRequest(&wailv1.GetDeadLetterRequest{Table: "t", Offset: 999}))
	wantCode(t, "get of a missing offset", err, connect.CodeNotFound, "999")
	_, err = r.admin.GetDeadLetter(ctx, connect.NewRequest(&wailv1.GetDeadLetterRequest{Table: "t", Offset: -1}))
	wantCode(t, "get of -1", err, connect.CodeInvalidArgument, "offset -1")
	_, err = r.admin.RedriveDeadLetters(ctx, connect.NewRequest(&wailv1.RedriveDeadLettersRequest{Table: "t"}))
	wantCode(t, "redrive of nothing", err, connect.CodeInvalidArgument, "give the offsets")
	_, err = r.admin.RedriveDeadLetters(ctx, connect.NewRequest(&wailv1.RedriveDeadLettersRequest{Table: "t", Offsets: []int64{offs[0], 555}}))
	wantCode(t, "redrive of a missing offset", err, connect.CodeNotFound, "555")
	_, err = r.admin.DropDeadLetters(ctx, connect.NewRequest(&wailv1.DropDeadLettersRequest{Table: "t", All: true, Offsets: []int64{1}}))
	wantCode(t, "drop of both", err, connect.CodeInvalidArgument, "not both")
	_, err = r.admin.DropDeadLetters(ctx, connect.NewRequest(&wailv1.DropDeadLettersRequest{Table: "nope", All: true}))
	wantCode(t, "drop on an unknown table", err, connect.CodeNotFound, "nope")
}

func TestReconcileRPC(t *testing.T) {
	t.Parallel()
	r := startTools(t, 3)
	ctx := t.Context()
	for _, k := range []string{"a", "b", "c"} {
		put, err := r.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte(k), Value: []byte("v1")}))
		if err != nil {
			t.Fatal(err)
		}
		r.awaitEvent(t, k, put.Msg.Result.Version)
	}
	lostA := r.lose(t, "a", "v2", false)
	lostB := r.lose(t, "b", "", true)
	lostD := r.lose(t, "d", "fresh", false)
	want := map[string]uint64{"a": lostA, "b": lostB, "d": lostD}

	dry, err := r.admin.ReconcileTable(ctx, connect.NewRequest(&wailv1.ReconcileTableRequest{Name: "t", DryRun: true}))
	if err != nil {
		t.Fatal(err)
	}
	if m := dry.Msg; m.KeysScanned != 4 || m.KeysBehind != 3 || len(m.Keys) != 3 {
		t.Fatalf("dry run: %v", m)
	}
	for _, k := range dry.Msg.Keys {
		if want[string(k.Key)] != k.StoredVersion || (string(k.Key) == "b") != k.Deleted || (string(k.Key) == "d") != (k.LastEventVersion == 0) {
			t.Errorf("dry run key %v", k)
		}
	}
	rec, err := r.admin.ReconcileTable(ctx, connect.NewRequest(&wailv1.ReconcileTableRequest{Name: "t"}))
	if err != nil || rec.Msg.KeysBehind != 3 {
		t.Fatalf("reconcile: %v, %v", rec, err)
	}
	for k, v := range want {
		e := r.awaitEvent(t, k, v)
		if e.Version != v || (k == "b") != (e.Op == wailv1.Op_OP_DELETE) {
			t.Errorf("key %s: event %v, want version %d", k, e, v)
		}
	}
	// The resolver published them: nothing is behind any more.
	deadline := time.Now().Add(10 * time.Second)
	for {
		again, err := r.admin.ReconcileTable(ctx, connect.NewRequest(&wailv1.ReconcileTableRequest{Name: "t", DryRun: true}))
		if err != nil {
			t.Fatal(err)
		}
		if again.Msg.KeysBehind == 0 && again.Msg.KeysScanned == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still behind after reconcile: %v", again.Msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err = r.admin.ReconcileTable(ctx, connect.NewRequest(&wailv1.ReconcileTableRequest{Name: "nope"}))
	wantCode(t, "reconcile of an unknown table", err, connect.CodeNotFound, "nope")
}
