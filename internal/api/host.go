package api

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"connectrpc.com/connect"

	"github.com/wail-cdc/wail/internal/config"
)

// DNS rebinding: a page of a site whose name its DNS then points at wail's
// address (127.0.0.1, say) is of that site's origin to the browser, which
// sends its requests to wail as same-origin ones: the console's origin
// checks let them through, and with auth off nothing else stops them
// (a Connect JSON call, a registry PUT). Such a request is told apart by
// its Host, the attacker's name; with auth off the API port answers only
// to the names it is reached by (hosts). Over TLS no name is refused: the
// browser checked wail's certificate against the name, which the
// attacker's is not.

// hosts are the names the API port answers to with auth off.
type hosts struct {
	any   bool
	names map[string]bool // exact, lower case, without a trailing dot
	under []string        // ".example.com": it and its subdomains
}

// newHosts returns the names of security.allowed_hosts, listen's host
// and security.metrics_listen's.
func newHosts(cfg *config.Config) hosts {
	h := hosts{names: map[string]bool{}}
	for _, l := range []string{cfg.Listen, cfg.Security.MetricsListen} {
		if host, _, err := net.SplitHostPort(l); err == nil && host != "" {
			h.names[normalHost(host)] = true
		}
	}
	for _, a := range cfg.Security.AllowedHosts {
		switch a = normalHost(a); {
		case a == "*":
			h.any = true
		case strings.HasPrefix(a, "."):
			h.under = append(h.under, a)
		default:
			h.names[a] = true
		}
	}
	return h
}

// normalHost is a host name in lower case without a trailing dot.
func normalHost(host string) string { return strings.TrimSuffix(strings.ToLower(host), ".") }

// allows reports whether a request's Host (host[:port]) is one wail
// answers to: none (HTTP/1.0, no browser's), localhost or a name under
// .localhost (browsers resolve them to loopback themselves, RFC 6761), an
// IP address, or one of h's.
func (h hosts) allows(hostport string) bool {
	if hostport == "" || h.any {
		return true
	}
	host := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		host = hh
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	host = normalHost(host)
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || h.names[host] {
		return true
	}
	for _, d := range h.under {
		if host == d[1:] || strings.HasSuffix(host, d) {
			return true
		}
	}
	return false
}

// answersTo reports whether r names the server by a name it answers to
// (hosts), or came over TLS.
func (g *Guard) answersTo(r *http.Request) bool { return r.TLS != nil || g.hosts.allows(r.Host) }

// hostHidden says why /healthz shows a request naming another host the
// state alone.
const hostHidden = "their detail is shown only to a request naming this server by localhost, an IP address, " +
	"listen's host or a name of security.allowed_hosts (a page whose site's name points at this address, DNS rebinding, " +
	"would otherwise read them)"

// MetricsHealthDetail says whether a /healthz request on
// security.metrics_listen's port may see the conditions: when it names
// the port by a name it answers to.
func (g *Guard) MetricsHealthDetail(r *http.Request) (ok bool, hidden string) {
	if !g.answersTo(r) {
		return false, hostHidden
	}
	return true, ""
}

// refuseHost answers a request to a Host the API port does not answer to:
// a Connect error to an RPC, the registry's error body on the registry,
// else plain text.
func refuseHost(w http.ResponseWriter, r *http.Request) {
	msg := fmt.Sprintf("request to host %q refused: with auth off, over plain HTTP, this server answers only to localhost, IP addresses, "+
		"listen's host and security.allowed_hosts (a page whose site's name points at this address, DNS rebinding, "+
		"would otherwise call it from a browser); if you reach it by this name, add it to security.allowed_hosts, or turn auth or TLS on", r.Host)
	if isProcedure(r.URL.Path) {
		_ = connect.NewErrorWriter().Write(w, r, connect.NewError(connect.CodePermissionDenied, errors.New(msg)))
		return
	}
	refuse(w, r, http.StatusForbidden, msg)
}
