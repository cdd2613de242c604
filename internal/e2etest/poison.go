package e2etest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"testing"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/resolver"
	"github.com/wail-cdc/wail/internal/store"
)

// Poison injects permanent per-key failures into what the resolver does:
// while On, its store reads of the Read keys fail, and its publishes of
// events of the Publish keys fail (an append that holds one fails whole,
// as a log refusing a record does). Writers write the keys while Writes.
type Poison struct {
	Read, Publish map[string]bool
	On            atomic.Bool
	Writes        atomic.Bool

	keys                []string
	readFails, pubFails atomic.Int64
	errRead, errPublish error
	eventTopic          string
}

// NewPoison poisons the reads of the read keys and the publishes of the
// publish keys of table.
func NewPoison(table string, read, publish []string) *Poison {
	p := &Poison{Read: map[string]bool{}, Publish: map[string]bool{}, eventTopic: eventbus.Topic(table),
		errRead: errors.New("injected: this row cannot be read"), errPublish: errors.New("injected: the bus refuses this record")}
	for _, k := range read {
		p.Read[k] = true
	}
	for _, k := range publish {
		p.Publish[k] = true
	}
	p.keys = append(append(p.keys, read...), publish...)
	return p
}

// Fired returns how many reads and publishes failed by injection.
func (p *Poison) Fired() (reads, publishes int64) { return p.readFails.Load(), p.pubFails.Load() }

// Store decorates the resolver's store.
func (p *Poison) Store(st store.Store) store.Store { return &poisonStore{Store: st, p: p} }

type poisonStore struct {
	store.Store
	p *Poison
}

func (s *poisonStore) Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error) {
	if s.p.On.Load() && s.p.Read[string(key)] {
		s.p.readFails.Add(1)
		return store.Row{}, false, fmt.Errorf("%w (key %q)", s.p.errRead, key)
	}
	return s.Store.Get(ctx, table, key, level)
}

// Log decorates the log under the resolver's bus (appends without a
// transaction: the embedded log).
func (p *Poison) Log(log intentlog.Log) intentlog.Log { return &poisonLog{Log: log, p: p} }

type poisonLog struct {
	intentlog.Log
	p *Poison
}

func (l *poisonLog) Append(ctx context.Context, topic string, recs []*intentlog.Record) error {
	if err := l.p.refuse(topic, recs); err != nil {
		return err
	}
	return l.Log.Append(ctx, topic, recs)
}

func (p *Poison) refuse(topic string, recs []*intentlog.Record) error {
	if !p.On.Load() || topic != p.eventTopic {
		return nil
	}
	for _, r := range recs {
		if p.Publish[string(r.Key)] {
			p.pubFails.Add(1)
			return fmt.Errorf("%w (key %q)", p.errPublish, r.Key)
		}
	}
	return nil
}

// Join decorates a resolver's group membership (Kafka): a transaction
// with a refused record aborts, as one with a record the broker refuses
// does, and nothing of it is visible.
func (p *Poison) Join(join resolver.JoinFunc) resolver.JoinFunc {
	return func(topics []string, assigned, revoked func(map[string][]int32)) (resolver.Group, error) {
		g, err := join(topics, assigned, revoked)
		if err != nil {
			return nil, err
		}
		return &poisonGroup{Group: g, p: p}, nil
	}
}

type poisonGroup struct {
	resolver.Group
	p *Poison
}

func (g *poisonGroup) Transact(ctx context.Context, shard int, recs map[string][]*intentlog.Record, offsets map[string]map[int32]int64) error {
	if err := g.p.refuse(g.p.eventTopic, recs[g.p.eventTopic]); err != nil {
		return fmt.Errorf("%w: %w", resolver.ErrAborted, err)
	}
	return g.Group.Transact(ctx, shard, recs, offsets)
}

// TransactEpochs is Transact with the intents' leader epochs, kept when
// the group takes them (resolver.EpochGroup).
func (g *poisonGroup) TransactEpochs(ctx context.Context, shard int, recs map[string][]*intentlog.Record, offsets map[string]map[int32]intentlog.EpochOffset) error {
	if err := g.p.refuse(g.p.eventTopic, recs[g.p.eventTopic]); err != nil {
		return fmt.Errorf("%w: %w", resolver.ErrAborted, err)
	}
	if eg, ok := g.Group.(resolver.EpochGroup); ok {
		return eg.TransactEpochs(ctx, shard, recs, offsets)
	}
	plain := map[string]map[int32]int64{}
	for topic, ps := range offsets {
		plain[topic] = map[int32]int64{}
		for p, o := range ps {
			plain[topic][p] = o.Offset
		}
	}
	return g.Group.Transact(ctx, shard, recs, plain)
}

// deadLetters is a table's dead-letter topic as read back.
type deadLetters struct {
	letters map[int64]*wailv1.DeadLetter // by offset in the topic
	settled map[int64]bool               // offsets redriven or dropped
}

// readDeadLetters reads a table's dead-letter topic (absent: empty).
func readDeadLetters(t *testing.T, ctx context.Context, log intentlog.Log, table string) deadLetters {
	t.Helper()
	out := deadLetters{letters: map[int64]*wailv1.DeadLetter{}, settled: map[int64]bool{}}
	topic := dlq.Topic(table)
	start, end, err := log.Bounds(ctx, topic, 0)
	if errors.Is(err, intentlog.ErrUnknownTopic) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	if start == end {
		return out
	}
	r, err := log.NewReader(topic, 0, start)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.Position() < end {
		recs, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			m, err := dlq.Decode(rec.Value)
			if err != nil {
				t.Fatalf("dead-letter record %s@%d: %v", topic, rec.Offset, err)
			}
			if l := m.GetLetter(); l != nil {
				out.letters[rec.Offset] = l
			} else {
				out.settled[m.GetResolution().Offset] = true
			}
		}
	}
	return out
}

// exempt returns the versions in the letters that are not settled.
func (d deadLetters) exempt() Exempt {
	x := Exempt{}
	for off, l := range d.letters {
		if d.settled[off] {
			continue
		}
		for _, in := range l.Intents {
			k := string(in.Key)
			if x[k] == nil {
				x[k] = map[uint64]bool{}
			}
			x[k][in.Version] = true
		}
	}
	return x
}

// keys returns the keys with letters, sorted.
func (d deadLetters) keys() []string {
	seen := map[string]bool{}
	for _, l := range d.letters {
		seen[string(l.Key)] = true
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
