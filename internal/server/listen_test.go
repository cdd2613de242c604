package server

import (
	"net"
	"strings"
	"testing"
)

// TestListenSaysWhatToDo: each usual cause of a failed listen names the
// setting and what to run or change.
func TestListenSaysWhatToDo(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, port, _ := net.SplitHostPort(taken.Addr().String())
	for _, tc := range []struct {
		name, addr string
		want       []string
	}{
		{"in use", taken.Addr().String(), []string{"server: listen (--listen) " + taken.Addr().String(), "address already in use", "ss -ltnp 'sport = :" + port + "'", "set listen (--listen) to a free address"}},
		// 192.0.2.0/24 is TEST-NET-1 (RFC 5737): no host has it.
		{"no such interface", "192.0.2.1:0", []string{"cannot assign requested address", "ip -brief address", "set listen (--listen) to one of them"}},
		{"other", "127.0.0.1:99999", []string{"server: listen (--listen) 127.0.0.1:99999", "invalid port"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := Listen(tc.addr, "listen (--listen)")
			if err == nil {
				ln.Close()
				t.Fatalf("Listen(%s) succeeded", tc.addr)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\ndoes not say %q", err, w)
				}
			}
		})
	}
	ln, err := Listen("127.0.0.1:0", "listen (--listen)")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}
