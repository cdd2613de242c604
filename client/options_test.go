package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/tlstest"
)

func TestBaseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		o       client.Options
		want    string
		wantErr string
	}{
		{o: client.Options{}, want: "http://127.0.0.1:7070"},
		{o: client.Options{CAFile: "ca.pem"}, want: "https://127.0.0.1:7070"},
		{o: client.Options{Addr: "127.0.0.1:7070"}, want: "http://127.0.0.1:7070"},
		{o: client.Options{Addr: " https://h:1/ "}, want: "https://h:1"},
		{o: client.Options{Addr: "h:1", CAFile: "ca.pem"}, want: "https://h:1"},
		{o: client.Options{Addr: "h:1", CertFile: "c", KeyFile: "k"}, want: "https://h:1"},
		{o: client.Options{Addr: "http://h:1", CAFile: "ca.pem"}, wantErr: "plain http"},
		{o: client.Options{Addr: "ftp://h:1"}, wantErr: "scheme must be http or https"},
		{o: client.Options{Addr: "http://"}, wantErr: "no host"},
		// A host without a port or a scheme (neither host:port nor a URL)
		// went to port 80, not wail's 7070.
		{o: client.Options{Addr: "wail-prod"}, wantErr: `address "wail-prod" has no port: give host:port (wail-prod:7070) or a URL (http://wail-prod)`},
		{o: client.Options{Addr: "http://wail-prod"}, want: "http://wail-prod"},
		{o: client.Options{Addr: "[::1]:7070"}, want: "http://[::1]:7070"},
	} {
		got, err := tc.o.BaseURL()
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%+v: err %v, want one saying %q", tc.o, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v: %q, %v; want %q", tc.o, got, err, tc.want)
		}
	}
}

func TestFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{client.EnvAddr: "a:1", client.EnvCA: "ca", client.EnvCert: "c", client.EnvKey: "k", client.EnvToken: "tok"}
	got := client.Options{CAFile: "mine"}.FromEnv(func(k string) string { return env[k] })
	want := client.Options{Addr: "a:1", CAFile: "mine", CertFile: "c", KeyFile: "k", Token: "tok"}
	if got.Addr != want.Addr || got.CAFile != want.CAFile || got.CertFile != want.CertFile || got.KeyFile != want.KeyFile || got.Token != want.Token {
		t.Fatalf("FromEnv = %+v, want %+v (set fields win over the environment)", got, want)
	}
}

// listTables answers ListTables with the caller's token and client
// certificate subject as table names.
type listTables struct {
	wailv1connect.UnimplementedAdminServiceHandler
}

func (listTables) ListTables(_ context.Context, req *connect.Request[wailv1.ListTablesRequest]) (*connect.Response[wailv1.ListTablesResponse], error) {
	return connect.NewResponse(&wailv1.ListTablesResponse{Tables: []*wailv1.Table{{Name: req.Header().Get("Authorization")}}}), nil
}

// TestDialTLS: Dial trusts the CA file, presents the client certificate
// and sends the token on RPCs and on plain HTTP requests alike.
func TestDialTLS(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "wail-test")
	srvPair := ca.Server(t, "server")
	clientPair := ca.Client(t, "alice")
	mux := http.NewServeMux()
	mux.Handle(wailv1connect.NewAdminServiceHandler(listTables{}))
	var subject string
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		subject = r.TLS.PeerCertificates[0].Subject.CommonName
		_, _ = w.Write([]byte(r.Header.Get("Authorization")))
	})
	srv := httptest.NewUnstartedServer(mux)
	cert, err := tls.LoadX509KeyPair(srvPair.CertFile, srvPair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")

	c, err := client.Dial(client.Options{Addr: addr, CAFile: ca.File, CertFile: clientPair.CertFile, KeyFile: clientPair.KeyFile, Token: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Admin.ListTables(context.Background(), connect.NewRequest(&wailv1.ListTablesRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Msg.Tables[0].Name; got != "Bearer s3cret" {
		t.Fatalf("the server saw Authorization %q, want the token", got)
	}
	hr, err := c.HTTP.Get(c.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	hr.Body.Close()
	if subject != "alice" {
		t.Fatalf("the server saw client certificate %q, want alice", subject)
	}

	// Without the client certificate the handshake fails; without the CA
	// the server's certificate is not trusted.
	for name, o := range map[string]client.Options{
		"no client certificate": {Addr: addr, CAFile: ca.File},
		"no CA":                 {Addr: "https://" + addr},
	} {
		c, err := client.Dial(o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Admin.ListTables(context.Background(), connect.NewRequest(&wailv1.ListTablesRequest{})); connect.CodeOf(err) != connect.CodeUnavailable {
			t.Errorf("%s: %v, want Unavailable (a failed handshake)", name, err)
		}
	}
}

func TestDialRefusesBadFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := dir + "/x.pem"
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		o    client.Options
		want string
	}{
		"missing CA":     {client.Options{CAFile: dir + "/none.pem"}, "CA file"},
		"CA not PEM":     {client.Options{CAFile: notPEM}, "no PEM certificate"},
		"cert, no key":   {client.Options{CertFile: notPEM}, "both its certificate and its key"},
		"unreadable key": {client.Options{CertFile: notPEM, KeyFile: notPEM}, "client certificate"},
	} {
		if _, err := client.Dial(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}
