package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server"
	"github.com/wail-cdc/wail/internal/server/servertest"
)

// TestExternalRegistry: with schema_registry.url a wail uses an external
// Confluent-compatible registry for its typed tables — here another
// wail's, over mutual TLS (its CA, a client certificate) with basic auth
// (a token as the password): creating a typed table registers its schema
// there, writes are checked against it, events carry its ids, an alter
// registers a new version there and an incompatible one is refused with
// the external registry's reasons. wail's /registry passes reads,
// lookups and compatibility tests on to it with wail's credentials (not
// the client's Authorization) and refuses changes naming it; wail doctor
// checks it.
// Wrong credentials, or no client certificate, fail the create with
// Unavailable naming the registry; nothing is created.
func TestExternalRegistry(t *testing.T) {
	t.Parallel()
	ext := startSecured(t, func(c *config.Config) { c.Security.TLS.RequireClientCert = true })
	registryURL := ext.url + config.SchemaRegistryPath
	withRegistry := func(password string, cert bool) func(c *config.Config) {
		return func(c *config.Config) {
			r := &c.SchemaRegistry
			r.URL, r.Username, r.Password = registryURL, "admin", password
			r.TLS.CAFile = ext.ca.File
			if cert {
				r.TLS.CertFile, r.TLS.KeyFile = ext.svcCert.CertFile, ext.svcCert.KeyFile
			}
		}
	}
	_, url := servertest.StartServer(t, withRegistry(ext.tokens["admin"], true))
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
	producer := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	events := wailv1connect.NewEventServiceClient(http.DefaultClient, url)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The external registry, read as its admin.
	extc := ext.dial(t, client.Options{CertFile: ext.svcCert.CertFile, KeyFile: ext.svcCert.KeyFile})
	latest := func(subject string) (id, version int) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, registryURL+"/subjects/"+subject+"/versions/latest", nil)
		req.SetBasicAuth("admin", ext.tokens["admin"])
		resp, err := extc.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v struct{ ID, Version int }
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s in the external registry: %d %v", subject, resp.StatusCode, err)
		}
		return v.ID, v.Version
	}

	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "orders",
		ValueSchema: &wailv1.TypeSchema{Schema: ordersV1, Message: "Order"}})); err != nil {
		t.Fatalf("create with the external registry: %v", err)
	}
	v1, n := latest("wail.events.orders-value")
	if n != 1 {
		t.Fatalf("the external registry holds version %d", n)
	}
	r, err := producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("o-1"), ValueJson: `{"id":"o-1","cents":"5"}`}))
	if err != nil {
		t.Fatalf("JSON put: %v", err)
	}
	if _, err := producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("bad"), ValueJson: `{"colour":"red"}`})); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("a value that fits no schema: %v", err)
	}
	stream, err := events.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "orders", From: "beginning"}))
	if err != nil {
		t.Fatal(err)
	}
	for stream.Receive() {
		if e := stream.Msg().Event; e != nil && e.Version >= r.Msg.Result.Version {
			if e.SchemaId != uint32(v1) {
				t.Fatalf("the event's schema id %d, want the external registry's %d", e.SchemaId, v1)
			}
			break
		}
	}
	stream.Close()

	if _, err := admin.AlterTable(ctx, connect.NewRequest(&wailv1.AlterTableRequest{Name: "orders", ValueSchema: &wailv1.TypeSchema{Schema: ordersV2}})); err != nil {
		t.Fatalf("compatible alter: %v", err)
	}
	if _, n := latest("wail.events.orders-value"); n != 2 {
		t.Fatalf("after the alter the external registry holds version %d", n)
	}
	if _, err := producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "orders", Key: []byte("o-2"), ValueJson: `{"id":"o-2","note":"v2"}`})); err != nil {
		t.Fatalf("a put of v2's field: %v", err)
	}
	bad := strings.Replace(ordersV2, "int64 cents = 2;", "string cents = 2;", 1)
	_, err = admin.AlterTable(ctx, connect.NewRequest(&wailv1.AlterTableRequest{Name: "orders", ValueSchema: &wailv1.TypeSchema{Schema: bad}}))
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "FIELD_SCALAR_KIND_CHANGED") || !strings.Contains(err.Error(), registryURL) {
		t.Fatalf("incompatible alter: %v", err)
	}

	// wail's /registry passes reads on to the external registry with
	// wail's credentials for it (not the client's), and refuses changes.
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url+config.SchemaRegistryPath+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer not-for-the-external-registry")
		req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	v2, _ := latest("wail.events.orders-value")
	if code, body := call(http.MethodGet, "/subjects", ""); code != 200 || !strings.Contains(body, `"wail.events.orders-value"`) {
		t.Fatalf("subjects through wail: %d %s", code, body)
	}
	if code, body := call(http.MethodGet, "/subjects/wail.events.orders-value/versions/latest", ""); code != 200 || !strings.Contains(body, fmt.Sprintf(`"id":%d`, v2)) {
		t.Fatalf("latest through wail: %d %s", code, body)
	}
	req, _ := json.Marshal(map[string]string{"schemaType": "PROTOBUF", "schema": bad})
	if code, body := call(http.MethodPost, "/compatibility/subjects/wail.events.orders-value/versions/latest", string(req)); code != 200 || !strings.Contains(body, `"is_compatible":false`) {
		t.Fatalf("compatibility test through wail: %d %s", code, body)
	}
	if code, body := call(http.MethodPost, "/subjects/other-value/versions", string(req)); code != http.StatusMethodNotAllowed || !strings.Contains(body, registryURL) {
		t.Fatalf("a registration through wail: %d %s", code, body)
	}

	// wail doctor checks the external registry with wail's credentials.
	for _, tc := range []struct {
		password, want string
	}{{ext.tokens["admin"], "registry     ok (external " + registryURL}, {"nope", "registry     FAIL: schema registry " + registryURL + " refused wail's credentials"}} {
		cfg := config.Default()
		cfg.DataDir = t.TempDir()
		withRegistry(tc.password, true)(&cfg)
		var out strings.Builder
		err := server.Doctor(ctx, cfg, nil, "", 0, &out)
		if !strings.Contains(out.String(), tc.want) || (err != nil) != strings.Contains(tc.want, "FAIL") {
			t.Errorf("doctor with password %q: %v\n%s", tc.password, err, out.String())
		}
	}

	for name, mutate := range map[string]func(*config.Config){
		"a wrong password":      withRegistry("wail_0123456789abcdef_"+strings.Repeat("A", 43), true),
		"no client certificate": withRegistry(ext.tokens["admin"], false),
	} {
		_, url := servertest.StartServer(t, mutate)
		admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
		_, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "other",
			ValueSchema: &wailv1.TypeSchema{Schema: ordersV1, Message: "Order"}}))
		if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), registryURL) {
			t.Errorf("%s: create: %v, want Unavailable naming the registry", name, err)
		}
		if _, err := admin.DescribeTable(ctx, connect.NewRequest(&wailv1.DescribeTableRequest{Name: "other"})); connect.CodeOf(err) != connect.CodeNotFound {
			t.Errorf("%s: the table was created: %v", name, err)
		}
	}
}
