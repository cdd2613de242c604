package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// clients are the API clients of one server.
type clients struct {
	producer wailv1connect.ProducerServiceClient
	admin    wailv1connect.AdminServiceClient
	events   wailv1connect.EventServiceClient
}

// newClients returns Connect-protocol clients (HTTP/1.1) for baseURL.
func newClients(baseURL string) *clients {
	hc := &http.Client{Transport: http.DefaultTransport}
	return &clients{
		producer: wailv1connect.NewProducerServiceClient(hc, baseURL),
		admin:    wailv1connect.NewAdminServiceClient(hc, baseURL),
		events:   wailv1connect.NewEventServiceClient(hc, baseURL),
	}
}

// clients returns the clients for --addr.
func (g *globals) clients() (*clients, error) {
	u, err := baseURL(g.addr)
	if err != nil {
		return nil, usageError{err: err}
	}
	return newClients(u), nil
}

// unary bounds one request by --timeout.
func (g *globals) unary(ctx context.Context) (context.Context, context.CancelFunc) {
	if g.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, g.timeout)
}

// baseURL normalizes a server address: "host:port" becomes
// "http://host:port"; only http and https are accepted.
func baseURL(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return "", fmt.Errorf("--addr is empty")
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("--addr %q: %w", addr, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("--addr %q: scheme must be http or https", addr)
	}
	if u.Host == "" {
		return "", fmt.Errorf("--addr %q: no host", addr)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// dialAddr turns the address a server listens on into one a local client can
// dial: a missing scheme is dropped and an unspecified host (":7070",
// "0.0.0.0", "::") becomes loopback.
func dialAddr(listen string) string {
	if i := strings.Index(listen, "://"); i >= 0 {
		listen = listen[i+3:]
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch ip := net.ParseIP(host); {
	case host == "":
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified() && ip.To4() != nil:
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// writeProtoJSON prints m as compact protojson (zero fields included) and a
// newline.
func writeProtoJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}
