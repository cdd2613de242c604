package server_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
)

// TestWriteStreamForbiddenTable: a WriteStream batch naming a table the
// caller may not write is refused whole, as Write refuses such a request
// (nothing of it written), but answered per mutation on a stream that
// stays open: permission_denied for the forbidden table's mutations,
// aborted (not written, send again) for the others. The next batch is
// served; a Producer's writers to the table allowed are not failed by a
// writer to the forbidden one.
func TestWriteStreamForbiddenTable(t *testing.T) {
	t.Parallel()
	s := startSecured(t, nil)
	ctx := context.Background()
	root := s.dial(t, client.Options{Token: s.tokens["root"]})
	if _, err := root.Admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "u"})); err != nil {
		t.Fatal(err)
	}
	p := s.dial(t, client.Options{Token: s.tokens["produce"]})
	stream := p.Producer.WriteStream(ctx)
	defer func() { _ = stream.CloseResponse() }()
	send := func(seq uint64, ms ...*wailv1.Mutation) *wailv1.WriteStreamResponse {
		t.Helper()
		if err := stream.Send(&wailv1.WriteStreamRequest{Seq: seq, Mutations: ms}); err != nil {
			t.Fatalf("batch %d: send: %v", seq, err)
		}
		resp, err := stream.Receive()
		if err != nil {
			t.Fatalf("batch %d: the stream ended: %v", seq, err)
		}
		if resp.GetSeq() != seq || resp.GetError() != nil {
			t.Fatalf("batch %d: answered %v", seq, resp)
		}
		return resp
	}
	mixed := send(1, &wailv1.Mutation{Table: "t", Key: []byte("a"), Value: []byte("1")},
		&wailv1.Mutation{Table: "u", Key: []byte("a"), Value: []byte("1")})
	if rs := mixed.GetResults(); len(rs) != 2 ||
		rs[0].GetError().GetCode() != connect.CodeAborted.String() || rs[0].GetVersion() != 0 ||
		rs[1].GetError().GetCode() != connect.CodePermissionDenied.String() ||
		!strings.Contains(rs[1].GetError().GetMessage(), `token:produce lacks the produce permission on table "u"`) {
		t.Fatalf("a batch to t and u: %v; want t's aborted unwritten and u's permission_denied", rs)
	}
	if r, err := root.Producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "t", Key: []byte("a")})); err != nil || r.Msg.Found {
		t.Fatalf("the refused batch wrote t/a: %v %v", r, err)
	}
	next := send(2, &wailv1.Mutation{Table: "t", Key: []byte("a"), Value: []byte("2")})
	if rs := next.GetResults(); len(rs) != 1 || rs[0].GetError() != nil || rs[0].GetVersion() == 0 {
		t.Fatalf("the batch after: %v; want written", rs)
	}

	prod, err := client.NewProducer(client.Options{Addr: s.url, CAFile: s.ca.File, Token: s.tokens["produce"]},
		client.ProducerConfig{Linger: 5 * time.Millisecond, RetryBackoff: 5 * time.Millisecond, DeliveryTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = prod.Close(context.Background()) }()
	var wg sync.WaitGroup
	errs := make(chan error, 8*20)
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				table := "t"
				if w == 0 {
					table = "u"
				}
				_, err := prod.Put(ctx, table, fmt.Appendf(nil, "w%d-%d", w, i), []byte("v"))
				var werr *client.WriteError
				switch {
				case table == "u" && (!errors.As(err, &werr) || werr.Code != connect.CodePermissionDenied):
					errs <- fmt.Errorf("a write to u: %v; want permission_denied", err)
				case table == "t" && err != nil:
					errs <- fmt.Errorf("a write to t, beside writes to u: %w", err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 3 {
			t.Error(err)
		}
	}
	if n > 3 {
		t.Errorf("and %d more", n-3)
	}
}
