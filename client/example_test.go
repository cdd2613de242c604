package client_test

import (
	"context"
	"fmt"
	"log"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
)

// A program that writes to a server with TLS and a token, from the same
// environment variables as the wail commands (WAIL_ADDR, WAIL_CA,
// WAIL_TOKEN, ...).
func ExampleDial() {
	c, err := client.Dial(client.Options{}.FromEnv(nil))
	if err != nil {
		log.Fatal(err)
	}
	resp, err := c.Producer.Put(context.Background(), connect.NewRequest(&wailv1.PutRequest{
		Table: "orders", Key: []byte("o-1"), Value: []byte(`{"status":"placed"}`),
	}))
	if err != nil {
		log.Fatal(err) // permission_denied, unauthenticated, ... with a message to act on
	}
	fmt.Println(resp.Msg.GetResult().GetVersion())
}
