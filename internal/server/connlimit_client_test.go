package server_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/internal/config"
)

// fromAddr is an HTTP/1.1 client whose connections come from the loopback
// address ip (any of 127.0.0.0/8 on Linux).
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// TestConnectionLimitPerClient: one client address holds at most
// api.max_connections_per_client of the API port's connections: past it
// its new connections are told resource_exhausted naming the setting and
// its address, while another address is served, and the refusal is
// counted under limit="per_client". Without it, one client (a leak of
// connections, a slowloris from one host) took every place of
// api.max_connections and locked every other client out.
func TestConnectionLimitPerClient(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) {
		cfg.Tables = []config.Table{{Name: "t"}}
		cfg.API.MaxConnections = 8
		cfg.API.MaxConnectionsPerClient = 2
		cfg.API.ReadHeaderTimeout = time.Minute // the silent connections stay for the test
	})
	for range 2 {
		rawConn(t, c.url) // from 127.0.0.1
	}
	waitMetric(t, c.url, "wail_api_connections", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	put := func(hc *http.Client) error {
		pc := wailv1connect.NewProducerServiceClient(hc, c.url)
		_, err := pc.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")}))
		return err
	}
	err := put(fromAddr("127.0.0.1"))
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeResourceExhausted ||
		!strings.Contains(ce.Message(), "api.max_connections_per_client") || !strings.Contains(ce.Message(), "127.0.0.1") {
		t.Fatalf("a write from a client address past api.max_connections_per_client: %v; want resource_exhausted naming the setting and the address", err)
	}
	if err := put(fromAddr("127.0.0.2")); err != nil {
		t.Fatalf("a write from another address: %v", err)
	}
	if got := metric(t, c.url, `wail_api_connections_refused_total{limit="per_client"}`); got < 1 {
		t.Errorf(`wail_api_connections_refused_total{limit="per_client"} = %v, want at least 1`, got)
	}
}
