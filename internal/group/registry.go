package group

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/wail-cdc/wail/internal/intentlog"
)

// register lists the group in the registry, with the id of its table's
// topic (pin; zero: the log has none) and the table's creation time.
func (g *Groups) register(ctx context.Context, t Table, name string, pin intentlog.TopicID) error {
	if err := g.log.CreateTopic(ctx, registryTopic, 1, intentlog.TopicOptions{Compact: true}); err != nil {
		return fmt.Errorf("group registry: %w", err)
	}
	if err := g.log.Append(ctx, registryTopic, []*intentlog.Record{{Key: []byte(t.Name + "/" + name), Value: registryValue(t, pin)}}); err != nil {
		return fmt.Errorf("group registry: %w", err)
	}
	g.setRecorded(t, name, pin)
	return nil
}

// setRecorded notes that the group's registry record holds pin.
func (g *Groups) setRecorded(t Table, name string, pin intentlog.TopicID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.recorded[[2]string{t.Name, name}] = pin
}

// registerLater records the topic id of a group loaded with positions
// (pin, read before them) in the registry, for a group listed by an older
// wail, without one: when the topic is deleted and created again behind
// wail's back, Kafka drops the positions with it, and the id tells the
// next load that the group is not new (positionsLost). Once per process
// and id (recorded), not at every load. Best effort: a group whose record
// lacks it starts as a new one then, as before.
func (g *Groups) registerLater(ctx context.Context, t Table, name string, pin intentlog.TopicID) {
	if pin == (intentlog.TopicID{}) {
		return
	}
	g.mu.Lock()
	done := g.recorded[[2]string{t.Name, name}] == pin
	g.mu.Unlock()
	if done {
		return
	}
	err := g.log.Append(ctx, registryTopic, []*intentlog.Record{{Key: []byte(t.Name + "/" + name), Value: registryValue(t, pin)}})
	if err == nil {
		g.setRecorded(t, name, pin)
	}
	if err != nil && ctx.Err() == nil {
		g.logger.Warn("consumer group: could not record the event topic's id in the group registry; should the topic be deleted and "+
			"created again behind wail's back, a group starting at \"latest\" would start at the new topic's end",
			"table", t.Name, "group", name, "err", err)
	}
}

// registryValue is a registry record's value: the topic id and the
// table's creation time (big-endian), or nothing without an id.
func registryValue(t Table, pin intentlog.TopicID) []byte {
	if pin == (intentlog.TopicID{}) {
		return []byte{}
	}
	return binary.BigEndian.AppendUint64(append([]byte(nil), pin[:]...), uint64(t.Created))
}

// positionsLost tells whether a group that has no positions had some on
// a topic of its table that was deleted and created again behind wail's
// back (Kafka drops a group's offsets with its topic): its registry
// record names this table (the same creation time, known) and another
// topic id than pin. Such a group is not new: it starts at the new topic's start
// (every event of it came after the group's positions), never at its
// end (TestLatestGroupAfterTopicCreatedAgain: the events the new topic
// took before the group was loaded again were never sent).
func (g *Groups) positionsLost(ctx context.Context, t Table, name string, pin intentlog.TopicID) (bool, error) {
	if pin == (intentlog.TopicID{}) || t.Created == 0 { // no ids; the table's identity unknown
		return false, nil
	}
	var last []byte
	found := false
	err := g.scanRegistry(ctx, func(rec intentlog.Record) {
		if n, ok := registryName(rec.Key, t.Name); ok && n == name {
			last, found = rec.Value, true
		}
	})
	if err != nil || !found || len(last) != 24 {
		return false, err
	}
	was := intentlog.TopicID(last[:16])
	if int64(binary.BigEndian.Uint64(last[16:])) != t.Created || was == pin {
		return false, nil
	}
	g.logger.Warn("consumer group: the event topic was deleted and created again behind wail's back, and the group's positions went with it; "+
		"the group starts at the new topic's start, not at its end (\"latest\": it is not a new group)",
		"table", t.Name, "group", name, "topic", t.Topic, "was", hexID(was), "now", hexID(pin))
	return true, nil
}

// scanRegistry calls f with each record of the registry, in order (none
// when there is no registry).
func (g *Groups) scanRegistry(ctx context.Context, f func(intentlog.Record)) error {
	n, err := g.log.Partitions(ctx, registryTopic)
	if errors.Is(err, intentlog.ErrUnknownTopic) {
		return nil
	}
	if err != nil || n != 1 {
		return fmt.Errorf("group registry: %d partitions, %w", n, err)
	}
	start, end, err := g.log.Bounds(ctx, registryTopic, 0)
	if err != nil {
		return fmt.Errorf("group registry: %w", err)
	}
	if start >= end {
		return nil
	}
	r, err := g.log.NewReader(registryTopic, 0, start)
	if err != nil {
		return fmt.Errorf("group registry: %w", err)
	}
	defer r.Close()
	for r.Position() < end {
		recs, err := r.Next(ctx)
		if err != nil {
			return fmt.Errorf("group registry: %w", err)
		}
		for _, rec := range recs {
			f(rec)
		}
	}
	return nil
}

// registryName is the group a registry record's key names for table
// (false: another table's, or not a group name wail takes: the registry
// is a topic of the log, which other clients and older versions write,
// and one bad key must not fail every List of the table).
func registryName(key []byte, table string) (string, bool) {
	tbl, name, ok := strings.Cut(string(key), "/")
	return name, ok && tbl == table && ValidateName("group", name) == nil
}

// List returns the names of the groups of a table that have committed
// offsets, sorted.
func (g *Groups) List(ctx context.Context, t Table) ([]string, error) {
	names := map[string]bool{}
	if err := g.scanRegistry(ctx, func(rec intentlog.Record) {
		if name, ok := registryName(rec.Key, t.Name); ok {
			names[name] = true
		}
	}); err != nil {
		return nil, err
	}
	var out []string
	for name := range names {
		c, err := g.log.Committed(ctx, LogGroup(name), t.Topic)
		if err != nil {
			return nil, fmt.Errorf("group %s of %s: committed offsets: %w", name, t.Name, err)
		}
		if len(c) > 0 { // a dropped table took them
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}
