package e2etest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/hlc"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog/kafka"
	"github.com/wail-cdc/wail/internal/intentlog/kafka/kafkatest"
	"github.com/wail-cdc/wail/internal/proxy"
	"github.com/wail-cdc/wail/internal/resolver"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// TestHangEndedWhileRunning: a hanging transaction on the event partition
// of a running resolver, which none of its producers ends (a broker lost
// the markers of a transaction, and nothing more is published there), is
// found and ended by the resolver without a take-over. Seen in CI after a
// broker restart: the resolver had committed every intent, and every
// read_committed consumer of the partition stopped at the hang for good.
// Writes after the hang reach consumers, and the hang's records do not.
func TestHangEndedWhileRunning(t *testing.T) {
	brokers := kafkaBrokers(t)
	b := kafkaBackendsWith(brokers, func(o *kafka.Options) { o.HangingAfter = time.Second })(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bus := eventbus.New(b.Log)
	cat := openCatalog(ctx, t, b, bus, catalog.Table{FailureMode: catalog.Transactional, VisibilityWindow: 2 * time.Second, Partitions: 1})
	tb, _, err := cat.Create(ctx, catalog.Table{Name: sqltest.Name("hang_")})
	if err != nil {
		t.Fatal(err)
	}
	clock, _ := hlc.New(9, nil)
	px := proxy.New(b.Log, b.Store, cat, clock, proxy.Limits{MaxKeyBytes: 4096, MaxValueBytes: 1 << 20, MaxBatch: 1000}, nil)
	res := startResolverWith(ctx, b, bus, tb, "first", func(c *resolver.Config) { c.HangCheck = 200 * time.Millisecond })
	defer res.stop(t)
	var writes []Write
	write := func(key, value string) {
		t.Helper()
		r := px.Write(ctx, []proxy.Mutation{{Table: tb.Name, Key: []byte(key), Value: []byte(value)}})[0]
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		writes = append(writes, Write{Key: key, Version: r.Version, Value: value, Acked: true})
	}
	write("before", "1")
	waitResolved(t, ctx, b.Log, groupOf(tb.Name), tb)

	if _, err := kafkatest.Hang(ctx, brokers, sqltest.Name("hang_txn_"), eventbus.Topic(tb.Name), 0, "hung"); err != nil {
		t.Fatal(err)
	}
	write("after", "2") // its event lands behind the hang
	waitResolved(t, ctx, b.Log, groupOf(tb.Name), tb)

	rctx, rcancel := context.WithTimeout(ctx, time.Minute)
	defer rcancel()
	events := readEvents(t, rctx, b.Log, tb)
	final := finalState(t, ctx, b.Store, tb.Name, []string{"before", "after"})
	stored := func(e *intent.Event) error { // every write here was stored
		for _, w := range writes {
			if w.Key == string(e.Key) && w.Version == e.Version && w.Value == string(e.Value) {
				return nil
			}
		}
		return fmt.Errorf("no write of %q at %d with this value", e.Key, e.Version)
	}
	Check(t, writes, events, stored, final, nil)
	for _, e := range events {
		if string(e.Key) == "hung" {
			t.Errorf("a record of the hanging transaction reached readers: %+v", e)
		}
	}
}
