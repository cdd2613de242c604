package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
)

// batches is a WriteStream's connection whose client sends the batches
// given to next.
type batches struct {
	connect.StreamingHandlerConn
	next chan *wailv1.WriteStreamRequest
}

func (b *batches) Spec() connect.Spec {
	return connect.Spec{Procedure: wailv1connect.ProducerServiceWriteStreamProcedure, StreamType: connect.StreamTypeBidi}
}
func (b *batches) Peer() connect.Peer { return connect.Peer{Addr: "127.0.0.1:1"} }
func (b *batches) Receive(m any) error {
	proto.Merge(m.(proto.Message), <-b.next)
	return nil
}

// TestNarrowedGrantOnStream: a token whose grants were narrowed (the
// tokens document edited) while its write stream is open may no longer
// write the table it lost on that stream once the change took effect,
// as a new call may not (the stream kept the grants it was opened with).
func TestNarrowedGrantOnStream(t *testing.T) {
	t.Parallel()
	g, tok, tf := newGuardWithToken(t, func(c *config.Config) { c.Security.ReloadInterval = 10 * time.Millisecond },
		"writer", auth.Grant{Permission: auth.Produce, Tables: "t"})
	r := httptest.NewRequest(http.MethodPost, wailv1connect.ProducerServiceWriteStreamProcedure, nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	id := g.authenticate(r)
	if id.err != nil {
		t.Fatal(id.err)
	}
	conn := &batches{next: make(chan *wailv1.WriteStreamRequest, 1)}
	c := &authorizedConn{StreamingHandlerConn: conn, ctx: context.WithValue(context.Background(), identityKey{}, id), g: g}
	batch := func() error {
		conn.next <- &wailv1.WriteStreamRequest{Seq: 1, Mutations: []*wailv1.Mutation{{Table: "t", Key: []byte("k"), Value: []byte("v")}}}
		return c.Receive(&wailv1.WriteStreamRequest{})
	}
	if err := batch(); err != nil {
		t.Fatalf("a batch to t: %v", err)
	}
	tf.Tokens[0].Grants = []string{"produce:u"}
	if err := tf.Write(tf.path); err != nil {
		t.Fatal(err)
	}
	for { // until the change took effect: a new call may not write t
		e, err := g.verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		if e.Grants[0] == "produce:u" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(g.recheckEvery) // the stream's next check is due
	var refused *refusedBatch
	if err := batch(); !errors.As(err, &refused) || refused.answer.Results[0].GetError().GetCode() != connect.CodePermissionDenied.String() {
		t.Fatalf("a batch to t after the grant was narrowed: %v, want it refused permission_denied", err)
	}
}

// TestNarrowedGrantEndsSubscribe: a token whose grants were narrowed
// while its Subscribe stream is open gets no event of the table it lost
// once the change took effect: the stream ends permission_denied, as a
// new call would be refused (it kept reading the table with the grants it
// was opened with).
func TestNarrowedGrantEndsSubscribe(t *testing.T) {
	t.Parallel()
	const interval = 10 * time.Millisecond
	g, tok, tf := newGuardWithToken(t, func(c *config.Config) { c.Security.ReloadInterval = interval },
		"reader", auth.Grant{Permission: auth.Consume, Tables: "t"})
	svc, stream, _ := tickingStream(t, g, tok)
	tf.Tokens[0].Grants = []string{"consume:u"}
	if err := tf.Write(tf.path); err != nil {
		t.Fatal(err)
	}
	for { // until the change took effect: a new call may not read t
		e, err := g.verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		if e.Grants[0] == "consume:u" {
			break
		}
		time.Sleep(interval / 2)
	}
	time.Sleep(2 * interval) // the stream's next check is due
	offer(svc.tick)          // the stream sends an event, unless its watch ended it first
	if stream.Receive() {
		t.Fatal("an event of t reached a token that lost consume:t")
	}
	if connect.CodeOf(stream.Err()) != connect.CodePermissionDenied {
		t.Fatalf("the stream ended with %v, want permission_denied", stream.Err())
	}
}

// TestProbeOfTableScopedProducer: a batch without writes (the producer
// client's probe, whose answer tells the server's clock) passes the guard
// for a token that may produce to some table: it writes nothing. It was
// refused permission_denied unless the token could produce to every table,
// so a producer with a least-privilege token wrote without its stamp
// bound. A token that may not produce at all is still refused.
func TestProbeOfTableScopedProducer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		grant auth.Grant
		ok    bool
	}{
		{"produce to one table", auth.Grant{Permission: auth.Produce, Tables: "orders"}, true},
		{"produce to a pattern", auth.Grant{Permission: auth.Produce, Tables: "shop_*"}, true},
		{"all on one table", auth.Grant{Permission: auth.All, Tables: "orders"}, true},
		{"read only", auth.Grant{Permission: auth.Read, Tables: "*"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, tok, _ := newGuardWithToken(t, nil, "writer", tc.grant)
			r := httptest.NewRequest(http.MethodPost, wailv1connect.ProducerServiceWriteStreamProcedure, nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			id := g.authenticate(r)
			if id.err != nil {
				t.Fatal(id.err)
			}
			conn := &batches{next: make(chan *wailv1.WriteStreamRequest, 1)}
			c := &authorizedConn{StreamingHandlerConn: conn, ctx: context.WithValue(context.Background(), identityKey{}, id), g: g}
			conn.next <- &wailv1.WriteStreamRequest{Seq: 1}
			err := c.Receive(&wailv1.WriteStreamRequest{})
			var refused *refusedBatch
			switch {
			case tc.ok && err != nil:
				t.Fatalf("the probe was refused: %v", err)
			case !tc.ok && (!errors.As(err, &refused) || refused.answer.GetError().GetCode() != connect.CodePermissionDenied.String()):
				t.Fatalf("the probe of a read-only token: %v, want it refused permission_denied", err)
			}
		})
	}
}
