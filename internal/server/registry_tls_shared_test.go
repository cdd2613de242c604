package server

import (
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/tlstest"
)

// TestRegistryClientsLeaveTheirTLSAlone: the two clients of the external
// registry (schema lookups, and the reads the API passes on) share one
// schema_registry.tls configuration. An http.Transport writes the ALPN
// protocols into the configuration it is given at its first request:
// both wrote the shared one, a data race between their first requests
// (each also reads it at every dial).
func TestRegistryClientsLeaveTheirTLSAlone(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "private")
	pair := ca.Server(t, "registry")
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		_, _ = io.WriteString(w, "[]")
	}))
	upstream.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	upstream.Config.ErrorLog = log.New(io.Discard, "", 0)
	upstream.StartTLS()
	defer upstream.Close()
	var cfg config.Config
	cfg.SchemaRegistry = config.SchemaRegistry{URL: upstream.URL, TLS: config.ClientTLS{CAFile: ca.File}}
	tlsConf, err := registryTLS(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	remote, err := newRemote(cfg.SchemaRegistry, tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	reads, err := externalReads(cfg.SchemaRegistry, tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := remote.Versions(t.Context(), "s", false); err != nil {
			t.Errorf("the registry client: %v", err)
		}
	})
	wg.Go(func() {
		rec := httptest.NewRecorder()
		reads.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, config.SchemaRegistryPath+"/subjects", nil))
		if rec.Code != http.StatusOK {
			t.Errorf("a read passed on: %d %s", rec.Code, rec.Body)
		}
	})
	wg.Wait()
	if tlsConf.NextProtos != nil {
		t.Errorf("a client wrote the shared TLS configuration: NextProtos %q", tlsConf.NextProtos)
	}
}
