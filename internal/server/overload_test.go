package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/config"
)

// TestOverloadRefusesWrites: with no resolver publishing, a table's
// backlog reaches proxy.max_backlog; then its writes are refused with
// resource_exhausted and a retry hint (unary: a wail.v1.Error detail;
// batches: per result), nothing of them is written, and /healthz says
// degraded, naming the table and the setting.
func TestOverloadRefusesWrites(t *testing.T) {
	t.Parallel()
	c := start(t, func(cfg *config.Config) {
		cfg.Resolver.Enabled = false // nothing is resolved: the backlog only grows
		cfg.Proxy.MaxBacklog = 20
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t", Partitions: 2})); err != nil {
		t.Fatal(err)
	}
	var muts []*wailv1.Mutation
	for i := range 25 {
		muts = append(muts, &wailv1.Mutation{Table: "t", Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")})
	}
	resp, err := c.producer.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: muts}))
	if err != nil || resp.Msg.Results[24].GetError() != nil {
		t.Fatalf("the writes that fill the backlog: %v %v", err, resp)
	}
	var refused error
	var key []byte
	for i := 0; refused == nil; i++ {
		key = fmt.Appendf(nil, "late-%d", i)
		_, err := c.producer.Put(ctx, connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: key, Value: []byte("v")}))
		switch {
		case err == nil:
			time.Sleep(50 * time.Millisecond) // the backlog is measured every 250ms
		case ctx.Err() != nil:
			t.Fatal("writes were never refused")
		default:
			refused = err
		}
	}
	var ce *connect.Error
	if !errors.As(refused, &ce) || ce.Code() != connect.CodeResourceExhausted || !strings.Contains(ce.Message(), "proxy.max_backlog") {
		t.Fatalf("refused with %v; want resource_exhausted naming proxy.max_backlog", refused)
	}
	var hint int64
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if e, ok := v.(*wailv1.Error); ok {
				hint = e.RetryAfterMs
			}
		}
	}
	if hint <= 0 {
		t.Fatalf("no retry hint in %v", ce.Details())
	}
	resp, err = c.producer.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: muts[:1]}))
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Msg.Results[0]; r.GetError().GetCode() != "resource_exhausted" || r.GetError().GetRetryAfterMs() <= 0 || r.Version != 0 {
		t.Fatalf("a batch write while overloaded: %v", r)
	}
	hresp, err := http.Get(c.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hresp.Body)
	hresp.Body.Close()
	if !strings.Contains(string(body), "degraded") || !strings.Contains(string(body), "proxy/overload") || !strings.Contains(string(body), "proxy.max_backlog") {
		t.Fatalf("/healthz: %s", body)
	}
	got, err := c.producer.Get(ctx, connect.NewRequest(&wailv1.GetRequest{Table: "t", Key: key}))
	if err != nil || got.Msg.Found {
		t.Fatalf("a refused write was stored: %v %v", got, err)
	}
}
