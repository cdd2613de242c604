package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// leasedServer runs a server on a fresh PostgreSQL schema, reached through
// a door, with a 3 s proxy id lease and the table t.
func leasedServer(t *testing.T) (base, dsn string, d *door, done <-chan error) {
	t.Helper()
	dsn = sqltest.Postgres(t)
	dsn = sqltest.WithSearchPath(t, dsn, sqltest.PostgresSchema(t, dsn))
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	d = newDoor(t, u.Host)
	d.open(t)
	u.Host = d.addr
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.ProxyID = 5
	cfg.Proxy.LeaseTTL = 3 * time.Second
	cfg.Tables = []config.Table{{Name: "t", Partitions: 1}}
	cfg.Store = config.Store{Kind: config.StorePostgres, DSN: u.String(), MaxConns: 4, QueryTimeout: time.Second}
	base, done, ready := starting(t, cfg)
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("server: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("not ready within a minute")
	}
	return base, dsn, d, done
}

func putT(base string) error {
	pc := wailv1connect.NewProducerServiceClient(http.DefaultClient, base)
	_, err := pc.Put(context.Background(), connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")}))
	return err
}

// TestWritesStopWhenTheLeaseLapses: when the store cannot be reached to
// renew the proxy id's lease, writes are refused (before stamping) once
// the lease is no longer valid, /healthz says why, and both recover when
// the store answers again.
func TestWritesStopWhenTheLeaseLapses(t *testing.T) {
	t.Parallel()
	base, _, d, _ := leasedServer(t)
	if err := putT(base); err != nil {
		t.Fatal(err)
	}
	d.shut()
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err = putT(base); err != nil && strings.Contains(err.Error(), "lease was not renewed") {
			break
		}
	}
	if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "proxy id 5: the lease was not renewed") {
		t.Fatalf("a write once the lease lapsed: %v", err)
	}
	// /healthz follows at the next renewal attempt (every TTL/12 while
	// they fail).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		status, body := healthz(t, base)
		if status == http.StatusServiceUnavailable && strings.Contains(body, "proxy/lease: the lease on proxy id 5 lapsed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz once the lease lapsed: %d %q", status, body)
		}
	}
	d.open(t)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err = putT(base); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes did not resume after the store came back: %v", err)
		}
	}
	if status, body := healthz(t, base); status != http.StatusOK {
		t.Fatalf("/healthz after the lease was renewed: %d %q", status, body)
	}
}

// TestLeaseLostEndsTheServer: when another process took the proxy id, the
// server stops with an error naming it.
func TestLeaseLostEndsTheServer(t *testing.T) {
	t.Parallel()
	base, dsn, _, done := leasedServer(t)
	if err := putT(base); err != nil {
		t.Fatal(err)
	}
	sqltest.ExecPostgres(t, dsn, `UPDATE wail__leases SET holder = 'intruder', host = 'elsewhere', pid = 1 WHERE name = 'proxy/5'`)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "proxy id 5: this process's lease lapsed and host elsewhere, pid 1 took it") {
			t.Fatalf("server ended with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server kept running with its proxy id taken")
	}
}
