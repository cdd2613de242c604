package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// TestGroupMemberEndsWhenTableDropped: a group member's stream ends when
// its table is dropped, with not_found and an error that says the table
// was dropped, which a client does not retry. Before, the embedded log's
// readers failed on the deleted topic and the stream ended unavailable
// ("topic deleted"), which clients retry (and which joined a table
// created again under the name as if nothing happened); on Kafka, whose
// readers wait for a deleted topic, the stream stayed open with nothing,
// and a member joining the table created again was refused until someone
// found and stopped the old one.
func TestGroupMemberEndsWhenTableDropped(t *testing.T) {
	_, url := servertest.StartServer(t, func(c *config.Config) { c.CatalogRefresh = 50 * time.Millisecond })
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
	producer := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	events := wailv1connect.NewEventServiceClient(http.DefaultClient, url)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t", Partitions: 1, VisibilityWindowMs: 100})); err != nil {
		t.Fatal(err)
	}
	if _, err := producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")})); err != nil {
		t.Fatal(err)
	}
	st, err := events.Consume(ctx, connect.NewRequest(&wailv1.ConsumeRequest{Table: "t", Group: "g", Member: "m"}))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for st.Receive() && st.Msg().Event == nil {
	}
	if st.Msg().Event == nil {
		t.Fatalf("no event: %v", st.Err())
	}
	m := st.Msg()
	if _, err := events.Ack(ctx, connect.NewRequest(&wailv1.AckRequest{Table: "t", Group: "g", Member: "m",
		Acks: []*wailv1.PartitionAck{{Partition: m.Partition, Epoch: m.Epoch, Next: m.Next}}})); err != nil {
		t.Fatal(err)
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
	ended := make(chan error, 1)
	go func() {
		for st.Receive() {
		}
		ended <- st.Err()
	}()
	select {
	case err := <-ended:
		if connect.CodeOf(err) != connect.CodeNotFound || !strings.Contains(err.Error(), "dropped") {
			t.Fatalf("the member's stream ended with %v (%v); want not_found saying the table was dropped", connect.CodeOf(err), err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the member's stream stayed open 10s after its table was dropped")
	}
}
