// Package client connects to a wail server: one constructor (Dial) builds
// the Connect clients of the three API services (ProducerService,
// AdminService, EventService) and the HTTP client for /metrics and
// /healthz, with the server's address, TLS (a CA to trust, a client
// certificate for mutual TLS) and a bearer token wired once. The wail
// command line and the bench use it; so can programs of yours.
//
// Options come from code, or from the environment (FromEnv: WAIL_ADDR,
// WAIL_CA, WAIL_CERT, WAIL_KEY, and WAIL_TOKEN or else WAIL_TOKEN_FILE),
// the same variables the wail commands read.
package client

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/wail-cdc/wail/api/wail/v1/wailv1connect"
)

// DefaultAddr is the server address when none is given (http, or https
// with a CA or client certificate).
const DefaultAddr = "127.0.0.1:7070"

// The defaults of Options.PingInterval and Options.PingTimeout.
const (
	DefaultPingInterval = 10 * time.Second
	DefaultPingTimeout  = 10 * time.Second
)

// DefaultMaxReceiveBytes is Options.MaxReceiveBytes when unset: above the
// largest message a server sends at its largest limits (an event, or a
// Get, of a value at limits.max_value_bytes' maximum, 64 MiB), far below
// the 4 GiB a message's length may claim.
const DefaultMaxReceiveBytes = 128 << 20

// The environment variables FromEnv reads.
const (
	EnvAddr  = "WAIL_ADDR"  // server address
	EnvCA    = "WAIL_CA"    // PEM file of the CA(s) that signed the server's certificate
	EnvCert  = "WAIL_CERT"  // PEM file of the client certificate (mutual TLS)
	EnvKey   = "WAIL_KEY"   // PEM file of the client certificate's key
	EnvToken = "WAIL_TOKEN" // bearer token
	// EnvTokenFile names a file holding the bearer token (Options.TokenFile),
	// used when WAIL_TOKEN is not set.
	EnvTokenFile = "WAIL_TOKEN_FILE"
)

// Options say how to reach a server.
type Options struct {
	// Addr is "host:port" or a URL (http:// or https://). Without a scheme
	// it is https when a CA or client certificate is given, else http; a
	// host alone (no port, no scheme) is refused, not taken as port 80.
	// Empty: DefaultAddr.
	Addr string
	// CAFile is a PEM file of the CA(s) that signed the server's
	// certificate (empty: the system's roots).
	CAFile string
	// CertFile and KeyFile are the client certificate and its key, for a
	// server that asks for one (mutual TLS). Both or neither.
	CertFile, KeyFile string
	// Token is sent as "Authorization: Bearer <token>" on every request
	// (surrounding space trimmed; one with a space or line break inside
	// fails Dial).
	Token string
	// TokenFile is a file holding the bearer token (surrounding space
	// trimmed), read at Dial and again when it changes, looked at once a
	// second at most: for tokens that expire and are renewed by another
	// process (a JWT, a Kubernetes projected service account token). A
	// request or a stream's opening carries the token of that moment, so a
	// stream the server ended for an expired token reconnects with the
	// renewed one. If it cannot be read later, the last token read is
	// kept. At most one of Token, TokenFile and TokenSource.
	TokenFile string
	// TokenSource, if set, gives the bearer token of each request and
	// stream's opening (see TokenSource).
	TokenSource TokenSource

	// MaxConns caps the connections to the server (0: no cap).
	MaxConns int
	// H2C speaks HTTP/2 without TLS (prior knowledge) to a plain http://
	// address. Streams that send and receive at once
	// (ProducerService.WriteStream, used by Producer) need HTTP/2:
	// NewProducer sets H2C, and HTTP2 for https.
	H2C bool
	// DisableCompression stops the transport from asking for gzip on
	// plain HTTP requests (/metrics); see also ConnectOptions.
	DisableCompression bool
	// ConnectOptions are added to every service client (for example
	// connect.WithGRPC, or connect.WithAcceptCompression).
	ConnectOptions []connect.ClientOption
	// HTTP2 speaks HTTP/2 over TLS (gRPC needs it; plain http stays
	// HTTP/1.1). Off, HTTP/1.1: a refused client certificate then reads
	// as the TLS alert it is, and MaxConns counts requests in parallel.
	HTTP2 bool
	// PingInterval and PingTimeout find dead HTTP/2 connections (H2C,
	// HTTP2): a connection on which nothing came for PingInterval is sent
	// a ping, and closed if no answer comes within PingTimeout; the
	// requests and streams on it fail (unavailable) and the next ones
	// dial again. Without pings a connection whose peer is gone without
	// closing it (a crashed host, a black-holed route, a NAT that forgot
	// it) fails only when TCP gives up, about 15 minutes on Linux, and a
	// stream on it (Producer's, a subscription) waits that long. Defaults
	// 10s and 10s: a dead connection is found within 20 s, for one small
	// frame each way per idle 10 s. A negative PingInterval sends no
	// pings.
	PingInterval, PingTimeout time.Duration
	// MaxReceiveBytes bounds one message from the server (an answer, an
	// event or a batch of events of a stream), on every service client
	// Dial builds and on NewProducer's (connect.WithReadMaxBytes), and in
	// the transport of HTTPClient: a larger one fails its call or its
	// stream with resource_exhausted ("message is larger than configured
	// max M", naming MaxReceiveBytes; a Consumer does not reconnect on
	// it) as soon as its length prefix (a stream's message) or its bytes
	// past the bound (a unary answer) arrive, and the stream is reset, or
	// the HTTP/1.1 connection closed, without reading the rest (connect
	// alone would read all the bytes the message declares, up to 4 GiB,
	// for as long as the server takes to send them). So a broken or
	// hostile server can neither make the client allocate without bound
	// nor hold a call by trickling a message it will never finish.
	// Default DefaultMaxReceiveBytes (128 MiB); raise it for a server
	// whose api.subscription_buffer_bytes is larger (a batch of events
	// may be that large): raise it here, not with a
	// connect.WithReadMaxBytes in ConnectOptions, which the transport's
	// bound would still cap. Negative: no bound.
	MaxReceiveBytes int
}

// FromEnv returns o with every empty connection field (Addr, CAFile,
// CertFile, KeyFile) taken from the environment, read by getenv
// (os.Getenv when nil), and, when none of Token, TokenFile and
// TokenSource is set, Token from WAIL_TOKEN, else TokenFile from
// WAIL_TOKEN_FILE.
func (o Options) FromEnv(getenv func(string) string) Options {
	if getenv == nil {
		getenv = os.Getenv
	}
	for _, f := range []struct {
		v   *string
		env string
	}{{&o.Addr, EnvAddr}, {&o.CAFile, EnvCA}, {&o.CertFile, EnvCert}, {&o.KeyFile, EnvKey}} {
		if *f.v == "" {
			*f.v = getenv(f.env)
		}
	}
	if o.Token == "" && o.TokenFile == "" && o.TokenSource == nil {
		if o.Token = getenv(EnvToken); o.Token == "" {
			o.TokenFile = getenv(EnvTokenFile)
		}
	}
	return o
}

// tlsWanted reports whether a CA or client certificate is given.
func (o Options) tlsWanted() bool { return o.CAFile != "" || o.CertFile != "" || o.KeyFile != "" }

// BaseURL returns the normalized URL of Addr: a scheme (http or https) and
// a host, no trailing slash.
func (o Options) BaseURL() (string, error) {
	addr := strings.TrimSpace(o.Addr)
	if addr == "" {
		addr = DefaultAddr
	}
	if !strings.Contains(addr, "://") {
		if _, _, err := net.SplitHostPort(strings.TrimSuffix(addr, "/")); err != nil && !strings.Contains(addr, "/") {
			// neither host:port nor a URL: http's port 80 is not wail's
			return "", fmt.Errorf("address %q has no port: give host:port (%s:7070) or a URL (http://%[2]s)", addr, addr)
		}
		scheme := "http://"
		if o.tlsWanted() {
			scheme = "https://"
		}
		addr = scheme + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("address %q: scheme must be http or https", addr)
	}
	if u.Host == "" {
		return "", fmt.Errorf("address %q: no host", addr)
	}
	if u.Scheme == "http" && o.tlsWanted() {
		return "", fmt.Errorf("address %q is plain http, but a CA or client certificate is given: use https://", addr)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// TLSConfig returns the client's TLS configuration (nil for plain http):
// the CA file's roots, the client certificate, TLS 1.2 at least.
func (o Options) TLSConfig() (*tls.Config, error) {
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("a client certificate needs both its certificate and its key file (--cert and --key)")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate in it", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if o.CertFile != "" {
		// Read at each handshake, so a renewed certificate is used
		// without restarting the client.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("client certificate: %w", err)
			}
			return &c, nil
		}
		if _, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile); err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
	}
	return cfg, nil
}

// HTTPClient returns the HTTP client Dial uses: the TLS configuration and
// the bearer token on every request.
func (o Options) HTTPClient() (*http.Client, error) {
	base, err := o.BaseURL()
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        max(o.MaxConns, 100),
		MaxIdleConnsPerHost: max(o.MaxConns, 4),
		MaxConnsPerHost:     o.MaxConns,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		DisableCompression:  o.DisableCompression,
		ForceAttemptHTTP2:   o.HTTP2,
	}
	if o.PingInterval >= 0 {
		tr.HTTP2 = &http.HTTP2Config{SendPingTimeout: cmp.Or(o.PingInterval, DefaultPingInterval),
			PingTimeout: cmp.Or(o.PingTimeout, DefaultPingTimeout)}
	}
	if strings.HasPrefix(base, "https://") {
		if tr.TLSClientConfig, err = o.TLSConfig(); err != nil {
			return nil, err
		}
	} else if o.H2C {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	var rt http.RoundTripper = tr
	token, err := o.tokenSource()
	if err != nil {
		return nil, err
	}
	if token != nil {
		u, _ := url.Parse(base) // parsed by BaseURL
		rt = bearer{token: token, scheme: u.Scheme, host: u.Host, next: tr}
	}
	if limit := o.maxReceiveBytes(); limit >= 0 {
		rt = receiveBound{limit: int64(limit), next: rt}
	}
	return &http.Client{Transport: rt}, nil
}

// bearer adds the token to every request to the server (scheme and host
// of Addr), and to no other: a redirect elsewhere, or to plain http, does
// not carry it (net/http's client drops Authorization on such a redirect;
// a transport that sets it would put it back).
type bearer struct {
	token        TokenSource
	scheme, host string
	next         http.RoundTripper
}

func (b bearer) unwrap() http.RoundTripper { return b.next }

// CloseIdleConnections passes http.Client.CloseIdleConnections on to the
// transport.
func (b bearer) CloseIdleConnections() { closeIdle(b.next) }

// closeIdle closes rt's idle connections, if it keeps any.
func closeIdle(rt http.RoundTripper) {
	if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != b.scheme || !strings.EqualFold(r.URL.Host, b.host) {
		return b.next.RoundTrip(r)
	}
	tok, err := b.token(r.Context())
	if err == nil && checkToken(tok) != nil {
		err = fmt.Errorf("client: the TokenSource's token: %w", checkToken(tok))
	}
	if err != nil {
		if r.Body != nil {
			_ = r.Body.Close() // a RoundTripper closes the body, even on error
		}
		return nil, err
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return b.next.RoundTrip(r)
}

// Client is the API of one server.
type Client struct {
	// URL is the server's base URL.
	URL      string
	Producer wailv1connect.ProducerServiceClient
	Admin    wailv1connect.AdminServiceClient
	Events   wailv1connect.EventServiceClient
	// HTTP carries the same TLS and token, for /metrics and /healthz.
	HTTP *http.Client
}

// Dial returns the clients of the server o names. It does not connect:
// the first request does.
func Dial(o Options) (*Client, error) {
	base, err := o.BaseURL()
	if err != nil {
		return nil, err
	}
	hc, err := o.HTTPClient()
	if err != nil {
		return nil, err
	}
	co := o.connectOptions()
	return &Client{
		URL:      base,
		Producer: wailv1connect.NewProducerServiceClient(hc, base, co...),
		Admin:    wailv1connect.NewAdminServiceClient(hc, base, co...),
		Events:   wailv1connect.NewEventServiceClient(hc, base, co...),
		HTTP:     hc,
	}, nil
}

// connectOptions are the options of every service client: the bound on a
// message received (MaxReceiveBytes), then ConnectOptions (which may set
// another).
func (o Options) connectOptions() []connect.ClientOption {
	limit := o.maxReceiveBytes()
	if limit < 0 {
		return o.ConnectOptions
	}
	return append([]connect.ClientOption{connect.WithReadMaxBytes(limit)}, o.ConnectOptions...)
}

// maxReceiveBytes is MaxReceiveBytes or its default (negative: no bound).
func (o Options) maxReceiveBytes() int {
	return cmp.Or(o.MaxReceiveBytes, DefaultMaxReceiveBytes)
}
