package server_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
)

// TestSinkURLHiddenWithoutAdmin: a sink's URL often is a credential (a
// token in its path or query, as Validate advises instead of user:pass@;
// a Slack-style webhook URL whole). Listing and describing sinks take
// only the consume permission, so a caller without admin on the table
// sees the URL as scheme://host/… in the definition and in the last
// error (as /healthz shows it); a caller with admin sees it whole.
func TestSinkURLHiddenWithoutAdmin(t *testing.T) {
	s := startSecured(t, nil)
	root := s.dial(t, client.Options{Token: s.tokens["root"]})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // connection refused: the sink's last error quotes its URL
	const secret = "SECRETPATH"
	if _, err := root.Admin.CreateSink(ctx, connect.NewRequest(&wailv1.CreateSinkRequest{Table: "t", Sink: &wailv1.Sink{
		Name: "hook", Url: "http://" + addr + "/services/" + secret + "?key=SECRETQ", Start: "beginning",
		BackoffMinMs: 5, BackoffMaxMs: 20}})); err != nil {
		t.Fatal(err)
	}
	for {
		d, err := root.Admin.DescribeSink(ctx, connect.NewRequest(&wailv1.DescribeSinkRequest{Table: "t", Name: "hook"}))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(d.Msg.Status.GetLastError(), secret) {
			break // the admin sees the URL in the last error
		}
		if ctx.Err() != nil {
			t.Fatalf("the sink never failed with its URL in the error: %v", d.Msg.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, tc := range []struct {
		who   string
		token string
		whole bool
	}{{"root", s.tokens["root"], true}, {"consume", s.tokens["consume"], false}} {
		c := s.dial(t, client.Options{Token: tc.token})
		d, err := c.Admin.DescribeSink(ctx, connect.NewRequest(&wailv1.DescribeSinkRequest{Table: "t", Name: "hook"}))
		if err != nil {
			t.Fatalf("%s: describe: %v", tc.who, err)
		}
		l, err := c.Admin.ListSinks(ctx, connect.NewRequest(&wailv1.ListSinksRequest{Table: "t"}))
		if err != nil {
			t.Fatalf("%s: list: %v", tc.who, err)
		}
		sts := append([]*wailv1.SinkStatus{d.Msg.Status}, l.Msg.Sinks...)
		for _, st := range sts {
			if st.GetSink().GetName() != "hook" {
				continue
			}
			shown := st.GetSink().GetUrl() + " " + st.GetLastError()
			if got := strings.Contains(shown, secret) || strings.Contains(shown, "SECRETQ"); got != tc.whole {
				t.Errorf("%s sees the URL's path and query: %v, want %v: %s", tc.who, got, tc.whole, shown)
			}
			if !strings.Contains(st.GetSink().GetUrl(), "http://"+addr) {
				t.Errorf("%s: url %q does not name the endpoint's host", tc.who, st.GetSink().GetUrl())
			}
		}
	}
}
