package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// TestSinkLettersDroppedWithTable: a drop takes the table's sinks and
// their dead letters with it, so that a table created again under the
// name has neither. (The sink's definition and dead-letter topic were
// left: the old table's letters were listed under the new table.)
func TestSinkLettersDroppedWithTable(t *testing.T) {
	_, url := servertest.StartServer(t, func(c *config.Config) { c.CatalogRefresh = 50 * time.Millisecond })
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
	producer := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "refused by the test", http.StatusBadRequest)
	}))
	defer ep.Close()
	create := func() {
		t.Helper()
		if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t", Partitions: 1, VisibilityWindowMs: 100})); err != nil {
			t.Fatal(err)
		}
	}
	letters := func() ([]*wailv1.DeadLetterEntry, error) {
		l, err := admin.ListDeadLetters(ctx, connect.NewRequest(&wailv1.ListDeadLettersRequest{Table: "t", Sink: "hook"}))
		if err != nil {
			return nil, err
		}
		return l.Msg.Entries, nil
	}
	create()
	if _, err := admin.CreateSink(ctx, connect.NewRequest(&wailv1.CreateSinkRequest{Table: "t", Sink: &wailv1.Sink{
		Name: "hook", Url: ep.URL, Start: "beginning", MaxAttempts: 1}})); err != nil {
		t.Fatal(err)
	}
	if _, err := producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("old")})); err != nil {
		t.Fatal(err)
	}
	for {
		ls, err := letters()
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no dead letter")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		_, err := admin.DropTable(ctx, connect.NewRequest(&wailv1.DropTableRequest{Name: "t"}))
		if err == nil {
			break
		}
		if connect.CodeOf(err) != connect.CodeFailedPrecondition || ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // the resolver commits its offset
	}
	create()
	ls, err := letters()
	if err == nil && len(ls) > 0 {
		t.Fatalf("after drop and create, the new table %q lists %d dead letter(s) of the dropped one: %v", "t", len(ls), ls[0].Letter)
	}
	sinks, err := admin.ListSinks(ctx, connect.NewRequest(&wailv1.ListSinksRequest{Table: "t"}))
	if err != nil || len(sinks.Msg.Sinks) != 0 {
		t.Fatalf("the new table's sinks: %v, %v; want none", sinks, err)
	}
}
