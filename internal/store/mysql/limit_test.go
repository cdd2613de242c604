package mysql

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/store"
)

// TestMutationLimit: the server refuses a parameter longer than its
// max_allowed_packet (Error 1105, "... longer than 'max_allowed_packet'
// bytes"), however often the write is tried, and the whole Apply with it
// (a merged batch: every write in it). The store tells the proxy so
// (store.MutationLimiter), which refuses such a row before it is stamped,
// as it does for Cassandra; before, it was logged, refused, aborted and
// answered "unavailable, retry" for ever. A row at the limit is written.
func TestMutationLimit(t *testing.T) {
	t.Parallel()
	// A row of max_allowed_packet (64 MiB) takes 2–5 s on a quiet machine
	// and more beside other suites (-race, a loaded CI): the query timeout
	// (5 s by default) is not what this test is about.
	s := openFresh(t, 0, func(o *Options) { o.QueryTimeout = 2 * time.Minute })
	ctx := t.Context()
	l, ok := any(s).(store.MutationLimiter)
	if !ok {
		t.Fatal("the store does not tell the proxy the largest row it takes (store.MutationLimiter)")
	}
	var packet int
	if err := s.primary.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&packet); err != nil {
		t.Fatal(err)
	}
	limit, source := l.MutationLimit()
	t.Logf("limit %d (%s)", limit, source)
	if limit != packet || source == "" {
		t.Fatalf("MutationLimit = %d (%q), want the server's max_allowed_packet %d, named", limit, source, packet)
	}
	if err := s.CreateTable(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	key := []byte("k")
	at := store.Mutation{Key: key, Value: bytes.Repeat([]byte{1}, limit-len(key)), Version: 1}
	if outs, err := s.Apply(ctx, "big", []store.Mutation{at}); err != nil || !outs[0].Applied {
		t.Fatalf("a row at the limit: %v %+v", err, outs)
	}
	over := store.Mutation{Key: key, Value: bytes.Repeat([]byte{2}, limit+1), Version: 2}
	if _, err := s.Apply(ctx, "big", []store.Mutation{over}); !errors.Is(err, store.ErrNotApplied) {
		t.Fatalf("a value over max_allowed_packet: %v, want the server's refusal (store.ErrNotApplied)", err)
	}
}
