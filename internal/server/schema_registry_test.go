package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/twmb/franz-go/pkg/sr"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/config"
)

// TestSchemaRegistryServed: wail serve answers the Confluent registry API
// at /registry on its port, and the registry's entry in the catalog does
// not disturb the tables kept there.
func TestSchemaRegistryServed(t *testing.T) {
	t.Parallel()
	c := start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := sr.NewClient(sr.URLs(c.url + config.SchemaRegistryPath))
	if err != nil {
		t.Fatal(err)
	}
	const text = `syntax = "proto3"; package shop; message Order { string id = 1; }`
	s, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: text, Type: sr.TypeProtobuf})
	if err != nil || s.ID != 1 || s.Version != 1 {
		t.Fatalf("register: %+v, %v", s, err)
	}
	if _, err := c.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "orders"})); err != nil {
		t.Fatalf("create a table beside the registry: %v", err)
	}
	list, err := c.admin.ListTables(ctx, connect.NewRequest(&wailv1.ListTablesRequest{}))
	if err != nil || len(list.Msg.Tables) != 1 || list.Msg.Tables[0].Name != "orders" {
		t.Fatalf("tables: %v, %v", list, err)
	}
	if got, err := cl.SchemaTextByID(ctx, 1); err != nil || got != text {
		t.Fatalf("fetch: %q, %v", got, err)
	}
}

func TestSchemaRegistryDisabled(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) { cfg.SchemaRegistry.Enabled = false })
	resp, err := http.Get(c.url + config.SchemaRegistryPath + "/subjects")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("disabled registry answered %d", resp.StatusCode)
	}
}
