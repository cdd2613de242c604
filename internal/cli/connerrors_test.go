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

// TestServerAnswersPrinted: what a server (or whatever answers at --addr)
// says goes to stderr as one printable line of bounded length: a message
// with line breaks forged "error:" lines, its escape sequences drove the
// terminal, and a message of a megabyte was printed whole. An answer
// that is not wail's (a web page) says that --addr may not be a wail
// server's, not only "invalid content-type".
func TestServerAnswersPrinted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		want string
	}{
		{"line breaks and escapes", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"code":"invalid_argument","message":"bad\nerror: forged\u001b[2J\u202eevil"}`)
		}, "error: invalid_argument: bad error: forged?[2J?evil\n"},
		{"a megabyte", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"code":"internal","message":"`+strings.Repeat("x", 1<<20)+`"}`)
		}, "error: internal: " + strings.Repeat("x", serverMessageLimit) + "...\n"},
		{"a web page", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html><body><h1>Welcome to nginx!</h1></body></html>")
		}, "(the answer at --addr is not a wail server's: is --addr / WAIL_ADDR the address of one?)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.h)
			t.Cleanup(srv.Close)
			code, _, errOut := runCLI(context.Background(), strings.TrimPrefix(srv.URL, "http://"), "", "table", "ls")
			if code != 1 || !strings.HasSuffix(errOut, tc.want) {
				t.Fatalf("code %d, stderr (%d bytes) %.300q; want code 1 and stderr ending %.300q", code, len(errOut), errOut, tc.want)
			}
		})
	}
}

// TestInterrupted: a client command stopped by Ctrl-C (or SIGTERM) before
// its answer exits 130 saying it was interrupted and that the server may
// still carry the request out (a drop it began, it finishes), not
// "canceled: context canceled" with the exit code of a failure.
func TestInterrupted(t *testing.T) {
	t.Parallel()
	addr := silentAddr(t)
	for _, args := range [][]string{{"table", "ls"}, {"table", "drop", "orders"}} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		code, _, errOut := runCLI(ctx, addr, "", args...)
		cancel()
		if code != 130 || errOut != "error: interrupted before the server answered: it may still carry the request out; check before running it again\n" {
			t.Errorf("wail %q interrupted: code %d, stderr %q; want 130 and the interruption", args, code, errOut)
		}
	}
}

// TestNegativeTimeout: --timeout -1s was taken as no bound at all (as
// 0); it is a usage error.
func TestNegativeTimeout(t *testing.T) {
	t.Parallel()
	code, _, errOut := runCLI(context.Background(), closedAddr(t), "", "table", "ls", "--timeout", "-1s")
	if code != 2 || !strings.Contains(errOut, "--timeout -1s is negative: give a bound, or 0 for none") {
		t.Fatalf("table ls --timeout -1s: code %d, stderr %q; want a usage error", code, errOut)
	}
}

// TestClientTimeout: a request that --timeout cut says so, with the
// bound, not only "deadline_exceeded: context deadline exceeded".
func TestClientTimeout(t *testing.T) {
	t.Parallel()
	code, _, errOut := runCLI(context.Background(), silentAddr(t), "", "table", "ls", "--timeout", "300ms")
	if code != 1 || !strings.Contains(errOut, "(no answer within --timeout 300ms: is the server at --addr overloaded or stuck? a slow request needs a longer --timeout)") {
		t.Fatalf("table ls against a silent server: code %d, stderr %q; want the bound named", code, errOut)
	}
}

// TestUnavailableHint: the hint that no server may be running at --addr
// follows an unavailable that no server sent (nothing listens), not one a
// wail server answered (a reconcile whose resolver has not caught up, a
// server starting): that one says what is wrong itself, and the hint sent
// the operator looking for a server that runs.
func TestUnavailableHint(t *testing.T) {
	t.Parallel()
	const hint = "(is a wail server running at --addr / WAIL_ADDR?"
	answered := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"code":"unavailable","message":"the resolver has not caught up: partition 0 of table t"}`)
	}))
	t.Cleanup(answered.Close)
	for _, tc := range []struct {
		name     string
		addr     string
		wantHint bool
	}{
		{"a server's answer", strings.TrimPrefix(answered.URL, "http://"), false},
		{"nothing listens", closedAddr(t), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(context.Background(), tc.addr, "", "table", "ls")
			if code != 1 || !strings.Contains(errOut, "error: unavailable: ") || strings.Contains(errOut, hint) != tc.wantHint {
				t.Fatalf("code %d, stderr %q; want code 1, unavailable, the hint %v", code, errOut, tc.wantHint)
			}
		})
	}
}
