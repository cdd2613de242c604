package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
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

// TestRegistryBodyRefusals: a registry request whose body is past
// api.max_admin_request_bytes by its Content-Length, or that does not
// arrive within api.read_timeout, is answered as the Confluent registry
// answers (413 with error_code 42209; 408), in its error body, which its
// clients parse: it was 429 resource_exhausted in a Connect body (a
// client retries a 429 as rate limited) and 422 "Invalid schema" naming
// a Connect error. Another HTTP endpoint gets 413 in plain text.
func TestRegistryBodyRefusals(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) { cfg.API.ReadTimeout = 300 * time.Millisecond })
	big := `{"schemaType":"PROTOBUF","schema":"` + strings.Repeat(" ", 2<<20) + `"}`
	for _, tc := range []struct {
		name, path string
		want       int
		says       string
	}{
		{"registry", config.SchemaRegistryPath + "/subjects/x/versions", 413, `"error_code":42209`},
		{"metrics", "/metrics", 413, "api.max_admin_request_bytes"},
	} {
		req, _ := http.NewRequest(http.MethodPost, c.url+tc.path, strings.NewReader(big))
		req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || !strings.Contains(string(b), tc.says) {
			t.Errorf("%s: %d %s, want %d saying %s", tc.name, resp.StatusCode, b, tc.want, tc.says)
		}
	}
	conn := rawConn(t, c.url)
	fmt.Fprintf(conn, "POST %s/subjects/x/versions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", config.SchemaRegistryPath)
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	got, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(got), "HTTP/1.1 408") || !strings.Contains(string(got), `"error_code":408`) || !strings.Contains(string(got), "api.read_timeout") {
		t.Errorf("a slow registry body: %q, want 408 with error_code 408 naming api.read_timeout", got)
	}
}
