package server

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/sink"
	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqltest"
)

// pinHookStore calls afterPin once, after the swap that saves a deleting
// entry with its topics' ids (a drop's pin).
type pinHookStore struct {
	store.Store
	once     sync.Once
	afterPin func(ctx context.Context)
}

func (s *pinHookStore) SwapTable(ctx context.Context, name string, old, new []byte) ([]byte, bool, error) {
	cur, ok, err := s.Store.SwapTable(ctx, name, old, new)
	if err != nil || !ok || new == nil {
		return cur, ok, err
	}
	var t wailv1.Table
	if proto.Unmarshal(new, &t) == nil && t.GetState() == wailv1.TableState_TABLE_STATE_DELETING && t.GetDeletingTopicIds() != nil {
		s.once.Do(func() { s.afterPin(ctx) })
	}
	return cur, ok, err
}

// TestKafkaDropDeletesSinkLettersMadeAfterThePin: on Kafka the first drop
// saves the ids of the table's topics, its sinks' dead letters' topics
// included, and deletes by those. A sink that dead-letters for the first
// time after that (between the pin and the deletion) makes its topic
// then: the drop left it, and a sink of the same name of a table created
// again under the name took it over, listing and redriving the dropped
// table's letters. The drop deletes the dead letters' topics of the
// dropped table's sinks that are left, by the ids they have while the
// catalog still holds the deleting entry.
func TestKafkaDropDeletesSinkLettersMadeAfterThePin(t *testing.T) {
	t.Parallel()
	cfg, adm, _, _ := kafkaRetentionConfig(t, "pinlet_")
	cfg.CatalogRefresh = 50 * time.Millisecond
	name := sqltest.Name("dl")
	topic := sink.DeadLetterTopic("t", name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, topic)
	})
	st := &pinHookStore{}
	var r *running
	made := make(chan error, 1)
	st.afterPin = func(ctx context.Context) {
		// The sink dead-letters for the first time.
		err := r.srv.log.CreateTopic(ctx, topic, dlq.Partitions, intentlog.TopicOptions{})
		if err == nil {
			var rec *intentlog.Record
			if rec, err = dlq.LetterRecord(&wailv1.DeadLetter{Table: "t", Sink: name, Key: []byte("k"),
				Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_SINK, Error: "refused", EventOffset: 0,
				Event: &wailv1.ChangeEvent{Table: "t", Key: []byte("k"), Version: 1}}); err == nil {
				err = r.srv.log.Append(ctx, topic, []*intentlog.Record{rec})
			}
		}
		made <- err
	}
	r = runServer(t, cfg, seams{wrapStore: func(s store.Store) store.Store { st.Store = s; return st }})
	defer stopRun(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hook := &wailv1.Sink{Table: "t", Name: name, Url: "http://127.0.0.1:9/x", Start: "beginning"}
	if _, _, err := r.srv.sinks.Create(ctx, proto.Clone(hook).(*wailv1.Sink)); err != nil {
		t.Fatal(err)
	}
	if err := r.srv.catalog.Drop(ctx, "t", true, r.srv.dropHooks()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-made:
		if err != nil {
			t.Fatalf("the sink's dead letters' topic, made after the pin: %v", err)
		}
	default:
		t.Fatal("the drop saved no topic ids")
	}
	gone := false
	for deadline := time.Now().Add(20 * time.Second); !gone && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		_, err := r.srv.log.Partitions(ctx, topic)
		gone = errors.Is(err, intentlog.ErrUnknownTopic)
	}
	if !gone {
		t.Errorf("after the drop, the dead letters' topic %s of its sink, made after the pin, is left", topic)
	}
	// The table created again, with a sink of the same name, which
	// dead-letters (its topic made on first use).
	if _, _, err := r.srv.catalog.Create(ctx, catalog.Table{Name: "t", Partitions: 1}); err != nil {
		t.Fatalf("create again: %v", err)
	}
	if _, _, err := r.srv.sinks.Create(ctx, proto.Clone(hook).(*wailv1.Sink)); err != nil {
		t.Fatal(err)
	}
	for {
		err := r.srv.log.CreateTopic(ctx, topic, dlq.Partitions, intentlog.TopicOptions{})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the dead letters' topic of the sink of the table created again: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // still being deleted
	}
	q, err := r.srv.sinks.DeadLetters(ctx, "t", name)
	if err != nil {
		t.Fatal(err)
	}
	ls, _, err := q.List(ctx, dlq.ListOptions{After: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) > 0 {
		t.Errorf("the sink %s of the table created again lists %d dead letter(s) of the dropped table's: %v", name, len(ls), ls[0].GetLetter())
	}
}
