package server

import (
	"net"
	"testing"
)

// TestClientOfAddress: api.max_connections_per_client counts an IPv4
// client by its address and an IPv6 client by its /64, which one host or
// one subscriber line is usually given whole: counted by address, a
// single host cycled through its /64 (2^64 addresses) and took every
// place of api.max_connections.
func TestClientOfAddress(t *testing.T) {
	tcp := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000} }
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{tcp("127.0.0.1"), "127.0.0.1"},
		{tcp("10.1.2.3"), "10.1.2.3"},
		{tcp("::ffff:10.1.2.3"), "10.1.2.3"}, // IPv4-mapped: the IPv4 client
		{tcp("2001:db8:1:2::1"), "2001:db8:1:2::/64"},
		{tcp("2001:db8:1:2:ffff:ffff:ffff:fffe"), "2001:db8:1:2::/64"},
		{tcp("2001:db8:1:3::1"), "2001:db8:1:3::/64"},
		{tcp("::1"), "::1"}, // loopback: this host
		{&net.UnixAddr{Name: "/run/wail.sock", Net: "unix"}, "/run/wail.sock"},
	} {
		if got := hostOf(tc.addr); got != tc.want {
			t.Errorf("hostOf(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}
