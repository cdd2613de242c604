package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/api"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/tlstest"
)

// TestProducerRenewedCertificate: a producer whose client certificate
// expires while its write stream is open. The server ends the stream
// unauthenticated at the expiry ("renew it and call again"). Renewed on
// disk beforehand (as Options.CertFile allows: it is read at each
// handshake), the producer writes on a new connection, with the renewed
// certificate, the writes of the ended stream too (they failed with it).
// (It opened every later stream on the same HTTP/2 connection, whose
// handshake carried the expired certificate: each was ended
// unauthenticated in turn, and every write failed for as long as writes
// kept the connection from going idle.) Not renewed, the write is not
// written, and fails at its delivery timeout saying the write stream
// failed: each new connection's handshake is refused (the certificate may
// be renewed any time: the producer tries until then; with TLS 1.3 the
// client learns only that the connection could not be established), and
// the server's word that the certificate expired.
func TestProducerRenewedCertificate(t *testing.T) {
	t.Parallel()
	for _, renew := range []bool{true, false} {
		t.Run(fmt.Sprintf("renewed=%v", renew), func(t *testing.T) {
			t.Parallel()
			ca := tlstest.NewCA(t, "ca")
			server := ca.Server(t, "wail")
			expires := time.Now().Add(3 * time.Second)
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
			ca.ClientUntil(t, "writer", expires).CopyTo(t, certFile, keyFile)

			cfg := config.Default()
			cfg.DataDir = t.TempDir()
			cfg.Security.Auth.Enabled = true
			cfg.Security.ReloadInterval = 10 * time.Millisecond // the stream's credential is checked again that often
			cfg.Security.Auth.Grants = []config.Grant{{Principal: "cert:writer", Allow: []string{"produce:tx"}}}
			g, err := api.NewGuard(&cfg, api.GuardOptions{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			w, px := realProxy(t)
			mux := api.NewMux()
			api.Mount(mux, api.Services{Producer: api.NewProducerService(px), Admin: wailv1connect.UnimplementedAdminServiceHandler{},
				Events: wailv1connect.UnimplementedEventServiceHandler{}}, g.Options()...)
			srv := httptest.NewUnstartedServer(g.Middleware(mux))
			pair, err := tls.LoadX509KeyPair(server.CertFile, server.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			pool := x509.NewCertPool()
			pool.AddCert(ca.Cert)
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}
			srv.EnableHTTP2 = true
			srv.StartTLS()
			t.Cleanup(srv.Close)

			p, err := NewProducer(Options{Addr: srv.URL, CAFile: ca.File, CertFile: certFile, KeyFile: keyFile},
				ProducerConfig{Linger: time.Millisecond, RetryBackoff: 10 * time.Millisecond, DeliveryTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_ = p.Close(ctx)
			})
			ctx := context.Background()
			if _, err := p.Put(ctx, "tx", []byte("before"), []byte("1")); err != nil {
				t.Fatalf("a write with a valid certificate: %v", err)
			}
			if renew {
				ca.Client(t, "writer").CopyTo(t, certFile, keyFile) // valid for a day
			}
			time.Sleep(time.Until(expires.Truncate(time.Second)) + 500*time.Millisecond)
			_, err = p.Put(ctx, "tx", []byte("after"), []byte("2"))
			if renew {
				if err != nil {
					t.Fatalf("the first write after the certificate was renewed: %v", err)
				}
				if row := w.Row("after"); string(row.Value) != "2" {
					t.Fatalf("key after holds %q", row.Value)
				}
				return
			}
			var werr *WriteError
			if !errors.As(err, &werr) || werr.Code != connect.CodeDeadlineExceeded || !strings.Contains(werr.Message, "the last write stream failed") ||
				!strings.Contains(werr.Message, "expired at") {
				t.Fatalf("a write with the expired certificate: %v; want deadline_exceeded saying the stream failed and why", err)
			}
			if row := w.Row("after"); row.Value != nil {
				t.Fatalf("key after holds %q, written with an expired certificate", row.Value)
			}
		})
	}
}
