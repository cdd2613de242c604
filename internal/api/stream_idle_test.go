package api

import (
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
)

// TestIdleStreamEndsWithItsCredential: a Subscribe stream that gets no
// event ends once its token is revoked, or loses the grant on its table,
// within a few checks, not at its next event: checked only as it sent, an
// idle stream of a revoked client held its place (api.max_subscriptions,
// a consumer group's partitions) for as long as its table was quiet.
func TestIdleStreamEndsWithItsCredential(t *testing.T) {
	t.Parallel()
	const interval = 10 * time.Millisecond
	for _, tc := range []struct {
		name   string
		change func(tf tokensAt)
		code   connect.Code
	}{
		{"revoked", func(tf tokensAt) { tf.Revoke("reader", time.Now()) }, connect.CodeUnauthenticated},
		{"grant narrowed", func(tf tokensAt) { tf.Tokens[0].Grants = []string{"consume:u"} }, connect.CodePermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, tok, tf := newGuardWithToken(t, func(c *config.Config) { c.Security.ReloadInterval = interval },
				"reader", auth.Grant{Permission: auth.Consume, Tables: "t"})
			_, stream, ctx := tickingStream(t, g, tok)
			tc.change(tf)
			if err := tf.Write(tf.path); err != nil {
				t.Fatal(err)
			}
			// No more events: only the stream's own checks can end it.
			if stream.Receive() {
				t.Fatal("an event reached the stream")
			}
			if ctx.Err() != nil {
				t.Fatalf("the idle stream was still open after 10s: %v", stream.Err())
			}
			if connect.CodeOf(stream.Err()) != tc.code {
				t.Fatalf("the stream ended with %v, want %v", stream.Err(), tc.code)
			}
		})
	}
}
