package server_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"connectrpc.com/connect"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/client"
	"github.com/wail-cdc/wail/internal/auth"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/server"
	"github.com/wail-cdc/wail/internal/server/servertest"
	"github.com/wail-cdc/wail/internal/store/cassandra/cassandratest"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestTokensInCatalogShared: two servers on one PostgreSQL, MySQL or
// Cassandra store with security.auth.tokens_source catalog see the same
// tokens: a token made in the catalog (as `wail token create` does) works
// on both, and once revoked it is refused by both within tokens_refresh,
// and a stream opened with it on the other server ends Unauthenticated.
func TestTokensInCatalogShared(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) config.Store
	}{
		{"postgres", func(t *testing.T) config.Store {
			dsn := sqltest.Postgres(t)
			dsn = sqltest.WithSearchPath(t, dsn, sqltest.PostgresSchema(t, dsn))
			return config.Store{Kind: config.StorePostgres, DSN: dsn, MaxConns: 4, QueryTimeout: 5 * time.Second}
		}},
		{"mysql", func(t *testing.T) config.Store {
			return config.Store{Kind: config.StoreMySQL, DSN: sqltest.MySQLDatabase(t, sqltest.MySQL(t)), MaxConns: 4, QueryTimeout: 5 * time.Second}
		}},
		{"cassandra", func(t *testing.T) config.Store {
			hosts := cassandratest.Hosts(t)
			st := config.Default().Store
			st.Kind = config.StoreCassandra
			st.Cassandra.Hosts, st.Cassandra.Keyspace, st.Cassandra.LocalDC = hosts, cassandratest.Keyspace(t, hosts), cassandratest.DC()
			st.Cassandra.Replication = map[string]string{"class": "NetworkTopologyStrategy", cassandratest.DC(): "3"}
			return st
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testTokensInCatalogShared(t, tc.store(t))
		})
	}
}

func testTokensInCatalogShared(t *testing.T, store config.Store) {
	const refresh = 100 * time.Millisecond
	base := func(id uint32) func(*config.Config) {
		return func(c *config.Config) {
			c.ProxyID = id
			c.Tables = []config.Table{{Name: "t", Partitions: 1}}
			c.Store = store
			c.Security.Auth = config.Auth{Enabled: true, TokensSource: config.TokensFromCatalog, TokensRefresh: refresh}
			c.Security.ReloadInterval = 20 * time.Millisecond // a stream's token is checked again this often
		}
	}
	var cfg config.Config
	_, urlA := servertest.StartServer(t, func(c *config.Config) { base(1)(c); cfg = *c })
	_, urlB := servertest.StartServer(t, base(2))

	// Before any token: Unauthenticated, on both, once each has read the
	// tokens (until then every token is refused Unavailable, fail closed:
	// a loaded store can take longer than one refresh to answer the first
	// read).
	for _, u := range []string{urlA, urlB} {
		deadline := time.Now().Add(time.Minute)
		err := putWith(t, u, "wail_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		for connect.CodeOf(err) == connect.CodeUnavailable && time.Now().Before(deadline) {
			time.Sleep(refresh)
			err = putWith(t, u, "wail_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		}
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("%s: unknown token: %v, want unauthenticated", u, err)
		}
	}
	st, closeStore, err := server.OpenTokenStore(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	toks := map[string]string{}
	for name, grants := range map[string][]auth.Grant{
		"app":  {{Permission: auth.Produce, Tables: "t"}, {Permission: auth.Consume, Tables: "t"}},
		"root": {{Permission: auth.All, Tables: "*"}},
	} {
		if _, err := auth.EditTokens(t.Context(), st, func(tf *auth.TokenFile) (err error) {
			toks[name], _, err = tf.Create(name, grants, time.Now())
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{urlA, urlB} {
		waitCode(t, u, toks["app"], connect.Code(0))
	}

	// A stream on B with the token, open before the revocation.
	cB := dialToken(t, urlB, toks["app"])
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream, err := cB.Events.Subscribe(ctx, connect.NewRequest(&wailv1.SubscribeRequest{Table: "t", From: "beginning"}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if !stream.Receive() { // the put above
		t.Fatalf("no event on the stream: %v", stream.Err())
	}

	revoked := time.Now()
	if _, err := auth.EditTokens(t.Context(), st, func(tf *auth.TokenFile) error {
		if tf.Revoke("app", time.Now()) != 1 {
			return errors.New("app not revoked")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{urlA, urlB} {
		waitCode(t, u, toks["app"], connect.CodeUnauthenticated)
		t.Logf("%s refuses the revoked token %s after the revocation (tokens_refresh %s; load: see uptime)", u, time.Since(revoked).Round(time.Millisecond), refresh)
	}
	if err := putWith(t, urlB, toks["root"]); err != nil { // an event for the stream to send, and be cut at
		t.Fatal(err)
	}
	for stream.Receive() {
	}
	if connect.CodeOf(stream.Err()) != connect.CodeUnauthenticated {
		t.Fatalf("the revoked token's stream ended with %v, want unauthenticated", stream.Err())
	}
}

func dialToken(t *testing.T, url, tok string) *client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{Addr: url, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func putWith(t *testing.T, url, tok string) error {
	_, err := dialToken(t, url, tok).Producer.Put(t.Context(), connect.NewRequest(&wailv1.PutRequest{Table: "t", Key: []byte("k"), Value: []byte("v")}))
	return err
}

// waitCode waits (a minute at most: the machine may be loaded) until a Put
// with tok on url answers code (0: ok).
func waitCode(t *testing.T, url, tok string, code connect.Code) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err = putWith(t, url, tok); connect.CodeOf(err) == code || (code == 0 && err == nil) {
			return
		}
	}
	t.Fatalf("%s: Put answers %v, want %v", url, err, code)
}
