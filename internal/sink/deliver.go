package sink

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// Request headers.
const (
	// HeaderSignature: "t=<unix seconds>,v1=<hex HMAC-SHA256>" over
	// "<t>.<body>" with the sink's secret (only with a secret). Verify by
	// computing the same HMAC, comparing in constant time, and refusing a
	// t too far from now (replays): client.VerifyWebhook does.
	HeaderSignature = "Wail-Signature"
	// HeaderDelivery: "<table>/<partition>/<first offset>-<next offset>",
	// the same on every attempt and redelivery of the batch; a snapshot's
	// requests "<table>/snapshot/<run>-<n>" (run: when that snapshot run
	// started, Unix µs), the halves of one answered 413 its name with
	// ".1" and ".2" (a batch's halves have their own ranges).
	HeaderDelivery = "Wail-Delivery"
	// HeaderAttempt: 1 for the first attempt of a batch.
	HeaderAttempt = "Wail-Attempt"
	// HeaderSink: the sink's name.
	HeaderSink = "Wail-Sink"
)

// Bounds on what an answer may make the sink read.
const (
	// maxErrorBody: the start of an error answer's body kept as the
	// sink's last error (and of a Location not followed).
	maxErrorBody = 512
	// maxDrainBody: the most of an answer's body read at all (to reuse
	// the connection); a larger one closes the connection instead.
	maxDrainBody = 64 << 10
	// maxRedirects to the same host (307 and 308 only).
	maxRedirects = 3
	// drainTimeout bounds the read of an answer's body once its head
	// came: the answer is known by then, and an endpoint that trickles
	// its body held every batch for the whole request timeout. The
	// connection of a body not read by then is closed.
	drainTimeout = time.Second
)

// ErrForbiddenAddress: a sink's request would connect to an address it
// never posts to: link-local ones (169.254.0.0/16, fe80::/10), where
// clouds serve instance metadata and credentials, and AWS's fd00:ec2::254.
// Whoever has admin on one table may create a sink; without this, they
// could make the server post there and read the start of the answer in
// the sink's last error. Loopback and private addresses stay allowed:
// internal endpoints are the common case.
var ErrForbiddenAddress = errors.New("refused address")

var awsMetadataV6 = netip.MustParseAddr("fd00:ec2::254")

// forbiddenAddr: a sink never connects to ip (ErrForbiddenAddress).
func forbiddenAddr(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	return ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip == awsMetadataV6
}

// checkHost fails with ErrForbiddenAddress for a URL host that is a
// forbidden IP literal (a name is checked as it is dialled), in any
// spelling inet_aton takes (2852039166, 0xA9.0xFE.0xA9.0xFE, 169.254.43518):
// behind an HTTP(S)_PROXY the proxy resolves the host, and getaddrinfo
// reads those as the address, where the dialer sees only the proxy's.
func checkHost(hostname string) error {
	ip, err := netip.ParseAddr(hostname)
	if err != nil {
		ip, err = looseIPv4(hostname)
	}
	if err == nil && forbiddenAddr(ip) {
		return fmt.Errorf("%w %s: link-local or cloud instance metadata; sinks never post there", ErrForbiddenAddress, hostname)
	}
	return nil
}

var errNotIPv4 = errors.New("not an IPv4 address")

// looseIPv4 parses an IPv4 address as inet_aton does: one to four parts
// (the last fills the bytes left: a, a.b (8.24 bits), a.b.c (8.8.16)),
// each decimal, octal (a leading 0) or hex (0x), and a trailing dot as a
// resolver may take it.
func looseIPv4(host string) (netip.Addr, error) {
	parts := strings.Split(strings.TrimSuffix(host, "."), ".")
	if len(parts) > 4 {
		return netip.Addr{}, errNotIPv4
	}
	var v uint64
	for i, p := range parts {
		base := 10
		switch {
		case len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X"):
			base, p = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		if p == "" || p[0] == '+' || p[0] == '-' {
			return netip.Addr{}, errNotIPv4
		}
		n, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, errNotIPv4
		}
		bits := 8
		if i == len(parts)-1 {
			bits = 8 * (4 - i)
		}
		if n >= 1<<bits {
			return netip.Addr{}, errNotIPv4
		}
		v = v<<bits | n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), nil
}

// dialControl refuses a connection to a forbidden address, whatever name
// resolved to it (behind an HTTP proxy of HTTP_PROXY/HTTPS_PROXY, the
// proxy resolves names: refuse link-local destinations there).
func dialControl(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil
	}
	return checkHost(host)
}

// Sign returns the hex HMAC-SHA256 of "<ts>.<body>" with secret.
func Sign(secret []byte, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// encode makes a request body and its content type.
func encode(format string, b *wailv1.SinkBatch) ([]byte, string, error) {
	if format == FormatProtobuf {
		body, err := proto.Marshal(b)
		return body, "application/x-protobuf", err
	}
	body, err := protojson.Marshal(b)
	return body, "application/json", err
}

// NewHTTPClient is the client sinks post with: it follows only 307 and
// 308 redirects (which resend the body) to the same scheme and host, at
// most maxRedirects; any other redirect is answered as is (a 3xx: the
// batch is retried, never counted as delivered by a redirect that turned
// the POST into a GET). Per-request deadlines come from each sink's
// timeout. tlsConf is how https:// endpoints are reached (nil: the
// system's roots, no client certificate).
func NewHTTPClient(tlsConf *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tlsConf != nil {
		tr.TLSClientConfig = tlsConf.Clone() // the transport writes into it
	}
	tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: dialControl}).DialContext
	tr.MaxResponseHeaderBytes = 64 << 10
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{Transport: tr, CheckRedirect: checkRedirect}
}

// sameOrigin: u has the scheme and host of base (a redirect the client
// follows).
func sameOrigin(u, base *url.URL) bool { return u.Scheme == base.Scheme && u.Host == base.Host }

func checkRedirect(req *http.Request, via []*http.Request) error {
	first := via[0]
	if len(via) > maxRedirects || !sameOrigin(req.URL, first.URL) ||
		req.Method != http.MethodPost || req.Response == nil ||
		(req.Response.StatusCode != http.StatusTemporaryRedirect && req.Response.StatusCode != http.StatusPermanentRedirect) {
		return http.ErrUseLastResponse
	}
	return nil
}

// attempt is the outcome of one request.
type attempt struct {
	status     int
	retryAfter time.Duration
	err        error // a transport error, or what a non-2xx answer said
}

// maxTimeout bounds timeout_ms (Validate).
const maxTimeout = 10 * time.Minute

// requestTimeout is def's request timeout. A definition is read from the
// store, not checked as a create checks it: a timeout_ms below 1 takes
// the default (else every deadline passed before the request was sent,
// and milliseconds beyond 2^53 overflow a time.Duration to 0 or less),
// one above maxTimeout that bound (else an endpoint that never answers
// held its partition for good).
func requestTimeout(def *wailv1.Sink) time.Duration {
	switch ms := def.TimeoutMs; {
	case ms < 1:
		return DefaultTimeout
	case ms > maxTimeout.Milliseconds():
		return maxTimeout
	default:
		return time.Duration(ms) * time.Millisecond
	}
}

// excerpt is an endpoint's text (its answer's body, a Location) as an
// error quotes it: at most maxErrorBody bytes of it, valid UTF-8, on one
// line, printable (whitespace as a space, other control and format
// characters, bidi overrides among them, as '?'). The error is shown as
// is by `wail sink describe` and `dlq show`, and on /healthz: an
// endpoint's line breaks forged lines there, its escape sequences drove
// the operator's terminal, and a Location of 60 KiB (net/http reads
// headers up to 64 KiB) was copied into the dead letter of every event
// of the batch.
func excerpt(s string) string {
	cut := len(s) > maxErrorBody
	if cut {
		s = s[:maxErrorBody] // a rune cut in two: '?' below
	}
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return ' '
		case !unicode.IsPrint(r):
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	s = strings.TrimSpace(s)
	if cut {
		s += "…"
	}
	return s
}

// post sends one request within timeout; it reads at most maxDrainBody
// of the answer, whatever the endpoint sends.
func post(ctx context.Context, c *http.Client, def *wailv1.Sink, delivery string, n int, body []byte, contentType string, now time.Time) attempt {
	timeout := requestTimeout(def)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, def.Url, bytes.NewReader(body))
	if err != nil {
		return attempt{err: err}
	}
	if err := checkHost(req.URL.Hostname()); err != nil { // a definition stored before Validate checked it
		return attempt{err: err}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "wail-sink/1")
	req.Header.Set(HeaderSink, def.Name)
	req.Header.Set(HeaderDelivery, delivery)
	req.Header.Set(HeaderAttempt, strconv.Itoa(n))
	if def.Secret != "" {
		ts := now.Unix()
		req.Header.Set(HeaderSignature, "t="+strconv.FormatInt(ts, 10)+",v1="+Sign([]byte(def.Secret), ts, body))
	}
	resp, err := c.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return attempt{err: fmt.Errorf("no answer within %s (sink timeout): %w", timeout, err)}
		}
		if errors.As(err, new(x509.UnknownAuthorityError)) {
			err = fmt.Errorf("%w (an endpoint whose certificate a private CA signed needs that CA in sinks.tls.ca_file)", err)
		}
		return attempt{err: err}
	}
	defer resp.Body.Close()
	// The body is read for the error's excerpt and to reuse the
	// connection: for at most drainTimeout (cancel ends the read, and
	// the connection with it).
	drain := time.AfterFunc(drainTimeout, cancel)
	defer drain.Stop()
	a := attempt{status: resp.StatusCode, retryAfter: retryAfter(resp.Header)}
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBody-maxErrorBody))
	if judge(a.status) != accepted {
		msg := excerpt(string(head))
		if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode/100 == 3 {
			msg = "redirect to " + excerpt(loc) + " not followed (only 307/308 to the same host are): set the sink's URL to where it points"
			if u, err := resp.Location(); err == nil && sameOrigin(u, req.URL) &&
				(resp.StatusCode == http.StatusTemporaryRedirect || resp.StatusCode == http.StatusPermanentRedirect) {
				msg = fmt.Sprintf("more than %d redirects (the last to %s)", maxRedirects, excerpt(loc))
			}
		}
		a.err = fmt.Errorf("HTTP %d: %s", a.status, msg)
	}
	return a
}
