package cli

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// silentAddr is a loopback address that takes connections and requests
// and never answers them.
func silentAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return l.Addr().String()
}

// TestTailServerSilent: tail against a server that takes the request and
// never answers it fails within the opening's bound, saying so, instead of
// waiting for ever (tail has no --timeout: its stream runs until Ctrl-C).
// Not parallel: it shortens streamOpenTimeout.
func TestTailServerSilent(t *testing.T) {
	defer func(d time.Duration) { streamOpenTimeout = d }(streamOpenTimeout)
	streamOpenTimeout = 300 * time.Millisecond
	addr := silentAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tail", "orders"}, "did not answer"},
		{[]string{"tail", "orders", "--from", "beginning", "--until-end"}, "did not answer"},
	} {
		start := time.Now()
		code, _, errOut := runCLI(ctx, addr, "", tc.args...)
		if took := time.Since(start); code != 1 || took > 5*time.Second || !strings.Contains(errOut, tc.want) {
			t.Errorf("wail %q against a silent server: code %d after %s, stderr %q; want code 1 within the bound, stderr with %q",
				tc.args, code, took.Round(time.Millisecond), errOut, tc.want)
		}
	}
}

// TestClientPlainToTLS: a client command that asks a TLS server in plain
// http is told to give the server's CA, not only "internal: 400 Bad
// Request".
func TestClientPlainToTLS(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	code, _, errOut := runCLI(context.Background(), strings.TrimPrefix(srv.URL, "https://"), "", "table", "ls")
	if code != 1 || !strings.Contains(errOut, "--ca") {
		t.Fatalf("table ls in plain http against a TLS server: code %d, stderr %q; want code 1 and a hint to give --ca", code, errOut)
	}
}
