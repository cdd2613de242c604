package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// TestRefusalOfAnInvalidTableName: a request naming a table no table can
// be named ("Orders", "", "ord*") by a caller without a grant on it is
// refused permission_denied, as any call without the grant (the handler
// would say invalid_argument to one with it), saying what a table name is
// and that no grant can help, not advising a grant ("grant
// produce:Orders", "grant produce:", "grant produce:ord*": the first and
// second can never match, the third grants a pattern). The same per
// mutation on a write stream, which goes on.
func TestRefusalOfAnInvalidTableName(t *testing.T) {
	t.Parallel()
	g, tok := newTestGuard(t) // writer: produce:t
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	ctx := context.WithValue(context.Background(), identityKey{}, g.authenticate(r))
	for _, tc := range []struct {
		table string
		code  connect.Code
		msg   string
	}{
		{"Orders", connect.CodePermissionDenied, "no grant can give it: invalid table name"},
		{"", connect.CodePermissionDenied, "no grant can give it: invalid table name"},
		{"ord*", connect.CodePermissionDenied, "no grant can give it: invalid table name"},
		{"orders", connect.CodePermissionDenied, "(grant produce:orders)"},
	} {
		err := g.authorize(ctx, wailv1connect.ProducerServicePutProcedure, &wailv1.PutRequest{Table: tc.table, Key: []byte("k")})
		if connect.CodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.msg) || tc.table != "orders" && strings.Contains(err.Error(), "(grant") {
			t.Errorf("Put to %q: %v, want %v saying %q", tc.table, err, tc.code, tc.msg)
		}
	}

	conn := &batches{next: make(chan *wailv1.WriteStreamRequest, 1)}
	c := &authorizedConn{StreamingHandlerConn: conn, ctx: ctx, g: g}
	conn.next <- &wailv1.WriteStreamRequest{Seq: 1, Mutations: []*wailv1.Mutation{
		{Table: "t", Key: []byte("k")}, {Table: "Orders", Key: []byte("k")}}}
	var refused *refusedBatch
	if err := c.Receive(&wailv1.WriteStreamRequest{}); !errors.As(err, &refused) {
		t.Fatalf("a batch naming table \"Orders\": %v, want it refused per mutation (the stream going on)", err)
	}
	res := refused.answer.GetResults()
	if len(res) != 2 || res[0].GetError().GetCode() != connect.CodeAborted.String() ||
		res[1].GetError().GetCode() != connect.CodePermissionDenied.String() || !strings.Contains(res[1].GetError().GetMessage(), "invalid table name") {
		t.Fatalf("a batch naming table \"Orders\": %v, want aborted and permission_denied saying the name is invalid", res)
	}
}
