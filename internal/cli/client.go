package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
	"github.com/wail-cdc/wail/client"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// clients are the API clients of one server.
type clients struct {
	producer wailv1connect.ProducerServiceClient
	admin    wailv1connect.AdminServiceClient
	events   wailv1connect.EventServiceClient
	http     *http.Client // /healthz, /metrics
	url      string
}

// newClients returns Connect-protocol clients (HTTP/1.1) for o
// (client.Dial: address, TLS and token).
func newClients(o client.Options) (*clients, error) {
	c, err := client.Dial(o)
	if err != nil {
		return nil, err
	}
	return &clients{producer: c.Producer, admin: c.Admin, events: c.Events, http: c.HTTP, url: c.URL}, nil
}

// clients returns the clients for --addr and the connection flags.
func (g *globals) clients() (*clients, error) {
	if g.timeout < 0 {
		return nil, usageErrorf("--timeout %s is negative: give a bound, or 0 for none", g.timeout)
	}
	o, err := g.connOptions()
	if err != nil {
		return nil, err
	}
	cl, err := newClients(o)
	if err != nil {
		return nil, usageError{err: err}
	}
	return cl, nil
}

// connOptions are the connection flags, completed from the environment
// (WAIL_CA, WAIL_CERT, WAIL_KEY, WAIL_TOKEN, WAIL_TOKEN_FILE) and
// --token-file (read again when it changes: a long tail or subscribe
// outlives a token that is renewed).
func (g *globals) connOptions() (client.Options, error) {
	o := g.conn
	if g.tokenFile != "" {
		if _, err := os.Stat(g.tokenFile); err != nil {
			return o, usageErrorf("--token-file: %v", err)
		}
		o.TokenFile = g.tokenFile
	}
	return o.FromEnv(g.getenv), nil
}

// unary bounds one request by --timeout.
func (g *globals) unary(ctx context.Context) (context.Context, context.CancelFunc) {
	if g.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, g.timeout)
}

// baseURL normalizes a server address: "host:port" becomes
// "http://host:port" (https with --ca, --cert or --key); only http and
// https are accepted.
func (g *globals) baseURL() (string, error) {
	o, err := g.connOptions()
	if err != nil {
		return "", err
	}
	u, err := o.BaseURL()
	if err != nil {
		return "", fmt.Errorf("--addr: %w", err)
	}
	return u, nil
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
