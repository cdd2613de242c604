package server

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/intentlog/embedded"
	"github.com/wail-cdc/wail/internal/sink"
)

// nopTopics is the Provisioner of another process: its log is not this
// process's (embedded), so it makes and deletes nothing here.
type nopTopics struct{}

func (nopTopics) Provision(context.Context, catalog.Table) error   { return nil }
func (nopTopics) Unprovision(context.Context, catalog.Table) error { return nil }

// dropElsewhere drops table t through another process's catalog on the
// store of cfg (this process down), and creates it again when again, with
// partitions (0: the default).
func dropElsewhere(t *testing.T, cfg config.Config, again bool, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := openStore(ctx, cfg, slog.New(slog.DiscardHandler), seams{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	defaults, err := cfg.TableDefaults()
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Open(ctx, st, catalog.Options{Defaults: defaults, Provisioner: nopTopics{}, Refresh: cfg.CatalogRefresh})
	if err != nil {
		t.Fatal(err)
	}
	stopped := func(context.Context, catalog.Table) error { return nil }
	if err := c.Drop(ctx, "t", true, catalog.DropHooks{Stopped: stopped}); err != nil {
		t.Fatalf("drop elsewhere: %v", err)
	}
	if again {
		if _, _, err := c.Create(ctx, catalog.Table{Name: "t", Partitions: partitions}); err != nil {
			t.Fatalf("create again elsewhere: %v", err)
		}
	}
}

// eventsOf returns the count of records the event topic of t holds here.
func eventsOf(ctx context.Context, t *testing.T, l intentlog.Log) int64 {
	t.Helper()
	topic := eventbus.Topic("t")
	n, err := l.Partitions(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for p := range n {
		start, end, err := l.Bounds(ctx, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		sum += end - start
	}
	return sum
}

// TestDroppedElsewhereWhileDown: a process serves table t on its embedded
// log, with events; it stops; another process drops t (and creates it
// again); the process starts again. Its log must not keep the dropped
// table's topics: left, they stayed for good (the name gone), or the table
// created again took them over here, the dropped table's events at the
// head of its event stream.
func TestDroppedElsewhereWhileDown(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		// again: created again elsewhere; config: by this process's
		// start (its configuration lists it).
		again, config bool
		partitions    int32
		// crashed: a release here began before a crash: the intent
		// topic is deleted, the others not.
		crashed bool
		// noneHeld: the store holds no table after the drop (unless
		// the case says, another table is kept in it).
		noneHeld bool
	}{
		{name: "dropped"},
		// Not told from a wrong store: the start is refused, the
		// topics kept (catalog.ErrNoTableHeld).
		{name: "dropped, the store holds no table", noneHeld: true},
		{name: "created again here, the store held no table", config: true, noneHeld: true},
		{name: "created again elsewhere", again: true, config: true},
		{name: "created again here", config: true},
		// Failed before too: the topics had another partition count.
		{name: "created again elsewhere with other partitions", again: true, partitions: 3},
		{name: "dropped, release crashed", crashed: true},
		{name: "created again, release crashed", again: true, config: true, crashed: true},
	} {
		again := c.again || c.config
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			cfg.CatalogRefresh = 50 * time.Millisecond
			cfg.Resolver.CommitInterval = 10 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			b := runServer(t, cfg, seams{})
			if _, err := b.put(ctx, "k", "v"); err != nil {
				t.Fatal(err)
			}
			for eventsOf(ctx, t, b.srv.log) == 0 {
				if ctx.Err() != nil {
					t.Fatal("the write was not resolved")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if !c.again && !c.noneHeld {
				if _, _, err := b.srv.catalog.Create(ctx, catalog.Table{Name: "keep"}); err != nil {
					t.Fatal(err)
				}
			}
			// A sink of t dead-lettered here (its topic made for t), and
			// one of another table of the name (made for it).
			served, _ := b.srv.catalog.Get("t")
			mine, theirs := sink.DeadLetterTopic("t", "hook"), sink.DeadLetterTopic("t", "hook2")
			for topic, us := range map[string]int64{mine: served.CreatedAt.UnixMicro(), theirs: served.CreatedAt.UnixMicro() + 1} {
				o := b.srv.sinks.LetterOwner("t", us)
				if o == "" {
					t.Fatal("a sink's dead-letter topic records no owner")
				}
				if err := b.srv.log.CreateTopic(ctx, topic, dlq.Partitions, intentlog.TopicOptions{Owner: o}); err != nil {
					t.Fatal(err)
				}
			}
			b.stop()
			if err := <-b.done; err != nil {
				t.Fatal(err)
			}
			b.done <- nil // for the cleanup
			dropElsewhere(t, cfg, c.again, c.partitions)
			if c.crashed {
				l, err := embedded.Open(filepath.Join(cfg.DataDir, "log"), embedded.Options{NoSync: true})
				if err != nil {
					t.Fatal(err)
				}
				if err := l.DeleteTopic(ctx, intent.Topic("t")); err != nil {
					t.Fatal(err)
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if !c.config {
				cfg.Tables = nil // not created again by this process's start
			}
			if c.noneHeld {
				srv, err := newServer(cfg, slog.New(slog.DiscardHandler), seams{})
				if err == nil {
					err = srv.Run(ctx, func(string) { t.Error("the server started") })
				}
				if !errors.Is(err, catalog.ErrNoTableHeld) || !strings.Contains(err.Error(), "t (created") {
					t.Fatalf("start on a store that holds no table = %v; want catalog.ErrNoTableHeld naming t", err)
				}
				l, err := embedded.Open(filepath.Join(cfg.DataDir, "log"), embedded.Options{NoSync: true})
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				for _, topic := range tableTopics("t") {
					if _, err := l.Partitions(ctx, topic); err != nil {
						t.Errorf("topic %s after the refused start: %v, want it kept", topic, err)
					}
				}
				return
			}
			b = runServer(t, cfg, seams{})
			// The dropped table's sink's dead letters went with it (they
			// stayed for good: the dropping process deletes the sinks'
			// definitions, not the topics on this log), not another's.
			if _, err := b.srv.log.Partitions(ctx, mine); !errors.Is(err, intentlog.ErrUnknownTopic) {
				t.Errorf("the dead-letter topic of a sink of the table dropped elsewhere while down: %v, want it deleted", err)
			}
			if _, err := b.srv.log.Partitions(ctx, theirs); err != nil {
				t.Errorf("the dead-letter topic of a sink of another table of the name: %v, want it kept", err)
			}
			if !again {
				for _, topic := range tableTopics("t") {
					if _, err := b.srv.log.Partitions(ctx, topic); !errors.Is(err, intentlog.ErrUnknownTopic) {
						t.Errorf("topic %s of the table dropped elsewhere while down: %v, want it deleted", topic, err)
					}
				}
				return
			}
			if _, ok := b.srv.catalog.Get("t"); !ok {
				t.Fatal("the table created again is not served")
			}
			if n := eventsOf(ctx, t, b.srv.log); n != 0 {
				t.Errorf("the event stream of the table created again holds %d events: the dropped table's", n)
			}
		})
	}
}
