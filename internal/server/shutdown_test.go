package server_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestShutdownWithUnusedConnections: a client's transport can open a
// connection it never sends a request on (a dial that lost the race to an
// idle connection). http.Server.Shutdown waits up to 5s for such a
// connection, so `wail demo` (shutdown_timeout 5s) failed on a loaded
// machine with "resolver did not drain within shutdown_timeout". Shutdown
// closes them: no request was read from them.
func TestShutdownWithUnusedConnections(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.ShutdownTimeout = 2 * time.Second
	srv := runServer(t, cfg)
	ctx := ctxT(t)
	if _, err := srv.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t"})); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(50 * time.Millisecond) // accepted
	srv.cancel()
	srv.cancel = nil
	if err := <-srv.done; err != nil {
		t.Fatalf("shutdown with an unused connection open: %v", err)
	}
}

// TestShutdownSaysWhatItWaitedFor: a request that outlives the shutdown
// budget is cut, and the error names it.
func TestShutdownSaysWhatItWaitedFor(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t.TempDir())
	cfg.ShutdownTimeout = time.Second
	srv := runServer(t, cfg)
	// A request whose body never ends: the handler waits for it.
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /wail.v1.AdminService/ListTables HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	srv.cancel()
	srv.cancel = nil
	err = <-srv.done
	if err == nil || !strings.Contains(err.Error(), "1 requests in flight: POST /wail.v1.AdminService/ListTables") {
		t.Fatalf("shutdown error %v, want it to name the request it cut", err)
	}
}
