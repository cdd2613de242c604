package server_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
)

// TestWriteOverOneAppend: a Write within the request cap (5,000 keys of
// 4,000 bytes: 20 MB, under api.max_write_request_bytes) whose intents
// exceed what the embedded intent log takes in one append (16 MiB) is
// answered invalid_argument for each mutation, naming the limit and what
// to do, nothing written. It was answered "unavailable ... retry" (the
// log refused the append as a whole), which no retry could cure. The
// same keys in smaller Writes are written.
func TestWriteOverOneAppend(t *testing.T) {
	t.Parallel()
	c := start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := c.admin.CreateTable(ctx, connect.NewRequest(&wailv1.CreateTableRequest{Name: "t"})); err != nil {
		t.Fatal(err)
	}
	muts := make([]*wailv1.Mutation, 5000)
	for i := range muts {
		k := bytes.Repeat([]byte{'k'}, 4000)
		copy(k, fmt.Sprint(i, "-"))
		muts[i] = &wailv1.Mutation{Table: "t", Key: k, Op: wailv1.Op_OP_UPSERT, Value: []byte("v")}
	}
	resp, err := c.producer.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: muts}))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.Msg.Results {
		if r.Error.GetCode() != "invalid_argument" || !strings.Contains(r.Error.GetMessage(), "in one append") || r.Version != 0 {
			t.Fatalf("mutation %d: %v; want invalid_argument naming the append limit, unstamped", i, r)
		}
	}
	for lo := 0; lo < len(muts); lo += 1000 {
		resp, err := c.producer.Write(ctx, connect.NewRequest(&wailv1.WriteRequest{Mutations: muts[lo : lo+1000]}))
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range resp.Msg.Results {
			if r.Error != nil || !r.Stored || !r.IntentLogged {
				t.Fatalf("mutation %d of a write of 1,000: %v", lo+i, r)
			}
		}
	}
}
