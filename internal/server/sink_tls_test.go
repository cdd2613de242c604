package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server/servertest"
	"github.com/wail-cdc/wail/internal/tlstest"
)

// TestSinkTLS: with sinks.tls, a sink delivers to an https endpoint
// signed by a private CA that wants a client certificate (mutual TLS):
// the endpoint receives the event from wail's certificate. (Sinks had
// only the system's roots and no client certificate: such an endpoint
// could not be reached.)
func TestSinkTLS(t *testing.T) {
	t.Parallel()
	ca, clients := tlstest.NewCA(t, "private"), tlstest.NewCA(t, "clients")
	got := make(chan string, 16)
	ep := tlstest.MutualServer(t, ca, clients, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- r.TLS.PeerCertificates[0].Subject.CommonName
	}))
	wail := clients.Client(t, "wail-sinks")
	_, url := servertest.StartServer(t, func(c *config.Config) {
		c.Sinks.TLS = config.ClientTLS{CAFile: ca.File, CertFile: wail.CertFile, KeyFile: wail.KeyFile}
	})
	admin := wailv1connect.NewAdminServiceClient(http.DefaultClient, url)
	producer := wailv1connect.NewProducerServiceClient(http.DefaultClient, url)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t", Partitions: 1})); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateSink(ctx, connect.NewRequest(&wailv1.CreateSinkRequest{Table: "t", Sink: &wailv1.Sink{
		Name: "hook", Url: ep.URL, Start: "beginning"}})); err != nil {
		t.Fatal(err)
	}
	if _, err := producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")})); err != nil {
		t.Fatal(err)
	}
	select {
	case cn := <-got:
		if cn != "wail-sinks" {
			t.Fatalf("the endpoint saw client certificate %q; want wail-sinks", cn)
		}
	case <-ctx.Done():
		st, _ := admin.ListSinks(context.Background(), connect.NewRequest(&wailv1.ListSinksRequest{Table: "t"}))
		t.Fatalf("nothing delivered over mutual TLS: %v", st)
	}
}

// TestExternalRegistryTLS: schema_registry.tls reaches an external
// registry signed by a private CA that wants a client certificate:
// /registry's reads pass through with wail's certificate.
func TestExternalRegistryTLS(t *testing.T) {
	t.Parallel()
	ca, clients := tlstest.NewCA(t, "private"), tlstest.NewCA(t, "clients")
	upstream := tlstest.MutualServer(t, ca, clients, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		fmt.Fprintf(w, "[%q]", r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	wail := clients.Client(t, "wail-registry")
	_, url := servertest.StartServer(t, func(c *config.Config) {
		c.SchemaRegistry.URL = upstream.URL
		c.SchemaRegistry.TLS = config.ClientTLS{CAFile: ca.File, CertFile: wail.CertFile, KeyFile: wail.KeyFile}
	})
	resp, err := http.Get(url + "/registry/subjects")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != `["wail-registry"]` {
		t.Fatalf("GET /registry/subjects: %d %s; want the upstream's answer to wail's client certificate", resp.StatusCode, body)
	}
}
