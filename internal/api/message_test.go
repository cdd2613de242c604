package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// TestUnavailableMessageSaysItsCodeOnce: a write the store failed answers
// code unavailable with the message docs/operations.md lists ("the store
// write's outcome is unknown, ..."), not "unavailable: the store ...": the
// client prints the code before the message, and a writer read
// "unavailable: unavailable: the store write's outcome is unknown". Put
// (the RPC's error) and Write (a result's error) alike.
func TestUnavailableMessageSaysItsCodeOnce(t *testing.T) {
	t.Parallel()
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, serve(t, &world{StErr: errStoreDown}))
	ctx := context.Background()
	_, err := pc.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "tx", Key: []byte("k"), Value: []byte("v")}))
	ce, _ := err.(*connect.Error)
	if connect.CodeOf(err) != connect.CodeUnavailable || ce == nil || !strings.HasPrefix(ce.Message(), "the store write's outcome is unknown") {
		t.Errorf("Put: %v, want unavailable: the store write's outcome is unknown ...", err)
	}
	resp, err := pc.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: []*wailv1.Mutation{{Table: "tx", Key: []byte("k"), Value: []byte("v")}}}))
	if err != nil {
		t.Fatal(err)
	}
	if e := resp.Msg.Results[0].Error; e.GetCode() != "unavailable" || !strings.HasPrefix(e.GetMessage(), "the store write's outcome is unknown") {
		t.Errorf("Write: %v, want unavailable with the store write's outcome is unknown ...", e)
	}
}
