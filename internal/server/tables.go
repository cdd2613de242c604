package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/config"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/health"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"
	"github.com/wail-cdc/wail/internal/sink"
)

// topics is the catalog's Provisioner: a table's intent, event and
// dead-letter topics on this process's log.
type topics struct{ s *Server }

// Provision makes t's topics, each recorded as made for t (its name and
// created_at: topicOwner) on the embedded log: a table created again
// under the name while this process did not see the drop of the one it
// served does not take over that one's topics, records and committed
// offsets included (intentlog.ErrOwnedElsewhere; catalog.OwnedReader).
func (p topics) Provision(ctx context.Context, t catalog.Table) error {
	owner := topicOwner(t)
	opts := intentTopicOptions(p.s.cfg)
	opts.Owner = owner
	if err := p.s.log.CreateTopic(ctx, intent.Topic(t.Name), t.Partitions, opts); err != nil {
		return err
	}
	if err := p.s.bus.CreateTableFor(ctx, t.Name, t.Partitions, p.s.cfg.Log.EventRetention, owner); err != nil {
		return err
	}
	// Never compacted: a key can be dead-lettered more than once.
	if err := p.s.log.CreateTopic(ctx, dlq.Topic(t.Name), dlq.Partitions, intentlog.TopicOptions{Retention: p.s.cfg.Log.DLQRetention, Owner: owner}); err != nil {
		return fmt.Errorf("dead-letter topic of %s: %w", t.Name, err)
	}
	// Kafka's topics keep their configs: check that the events outlive
	// the intents (the embedded log's took the configured retentions).
	p.s.checkRetention(ctx, t.Name)
	return nil
}

// ownerPrefix starts what a table's topics record they were made for
// (topicOwner).
const ownerPrefix = "table:"

// topicOwner is what t's topics are made for: "table:<name>:<created_at
// in Unix microseconds>"; empty (no owner) for a table without created_at
// (the zero time, or created_at_us 0 as an entry saved without one reads):
// "table:<name>:0" named a table parseOwner takes none from, so the topics
// were claimed for good, never released, and refused to a table created
// again under the name.
func topicOwner(t catalog.Table) string {
	if t.CreatedAt.IsZero() || t.CreatedAt.UnixMicro() <= 0 {
		return ""
	}
	return ownerPrefix + t.Name + ":" + strconv.FormatInt(t.CreatedAt.UnixMicro(), 10)
}

// letterOwner is what the dead-letter topic of a sink of table, created
// at createdUs, is made for: the table's topicOwner (sink.Options).
func letterOwner(table string, createdUs int64) string {
	return topicOwner(catalog.Table{Name: table, CreatedAt: time.UnixMicro(createdUs)})
}

// parseOwner reads what topicOwner wrote.
func parseOwner(owner string) (catalog.Table, bool) {
	rest, ok := strings.CutPrefix(owner, ownerPrefix)
	i := strings.LastIndexByte(rest, ':')
	if !ok || i <= 0 {
		return catalog.Table{}, false
	}
	us, err := strconv.ParseInt(rest[i+1:], 10, 64)
	if err != nil || us <= 0 {
		return catalog.Table{}, false
	}
	return catalog.Table{Name: rest[:i], CreatedAt: time.UnixMicro(us)}, true
}

// Owned implements catalog.OwnedReader: the tables whose topics this
// process's embedded log holds, by what each topic was made for (the
// others, on Kafka, are the dropping process's to delete). A table whose
// topics record two tables (a crash between their deletion and the
// making of the next one's cannot leave that: all are deleted first) is
// listed twice; the catalog keeps the later.
func (p topics) Owned(ctx context.Context) ([]catalog.Table, error) {
	l, ok := p.s.log.(intentlog.OwnerLister)
	if !ok || p.s.cfg.Log.Kind != config.LogEmbedded {
		return nil, nil
	}
	owners, err := l.TopicOwners(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[catalog.Table]bool{}
	var owned []catalog.Table
	for topic, owner := range owners {
		t, ok := parseOwner(owner)
		if !ok || !slices.Contains(tableTopics(t.Name), topic) {
			continue // another's (a sink's dead letters), or not wail's
		}
		if !seen[t] {
			seen[t] = true
			owned = append(owned, t)
		}
	}
	return owned, nil
}

// Unprovision deletes the topics with the offsets committed on them, and
// the table's sinks with their dead letters' topics (a table created
// again under the name must not inherit them): the topics first, then the
// definitions, so that a drop that stopped half way finds the sinks again
// when it resumes. The drop may reach here late, the table dropped by
// another process and created again since: the sinks removed are the
// dropped table's only (sink.TableDrop), never the new table's.
func (p topics) Unprovision(ctx context.Context, t catalog.Table) error {
	// The group members end first, told the table was dropped, rather
	// than by their readers meeting the deleted topic.
	p.s.groupsDropped(t)
	drop := p.s.sinkDrop(t)
	var names []string
	if p.s.sinks != nil && t.TopicIDs == nil {
		var err error
		if names, err = p.s.sinks.DroppedSinks(ctx, drop); err != nil {
			return fmt.Errorf("the sinks of %s: %w", t.Name, err)
		}
	}
	if t.TopicIDs != nil {
		// Saved once the table was marked deleting (TopicIDs): a topic
		// of the name that has another id now is a table's created
		// again since, and a topic then absent is none of this one's.
		if err := p.s.deleteTopicIDs(ctx, *t.TopicIDs); err != nil {
			return err
		}
		if err := p.s.deleteLettersLeft(ctx, t, drop); err != nil {
			return err
		}
	} else if err := p.s.deleteTopics(ctx, t.Name, names); err != nil {
		return err
	}
	// By name too: a table created again may have raised it since.
	held, err := p.s.catalog.StillDeleting(ctx, t)
	if err != nil {
		return err
	}
	if held {
		p.s.health.Clear(retentionComponent(t.Name))
		p.s.health.Clear(partitionsComponent(t.Name))
	}
	if p.s.sinks != nil {
		if err := p.s.sinks.DropTable(ctx, drop); err != nil {
			return fmt.Errorf("drop the sinks of %s: %w", t.Name, err)
		}
	}
	return nil
}

// sinkDrop is the drop of t (marked deleting) as its sinks see it: held
// while the catalog holds t's entry.
func (s *Server) sinkDrop(t catalog.Table) sink.TableDrop {
	d := sink.TableDrop{Table: t.Name, Held: func(ctx context.Context) (bool, error) { return s.catalog.StillDeleting(ctx, t) }}
	if !t.CreatedAt.IsZero() {
		d.CreatedAtUs = t.CreatedAt.UnixMicro()
	}
	return d
}

// TopicIDs implements catalog.TopicIDReader: on Kafka, the ids of the
// table's topics and of its sinks' dead letters' topics that exist; nil
// on the embedded log (this process's alone: its topics are deleted by
// name) and on a Kafka without topic ids (before 2.8).
func (p topics) TopicIDs(ctx context.Context, t catalog.Table) (catalog.TopicIDs, error) {
	d, ok := p.s.log.(intentlog.TopicIDDeleter)
	if !ok {
		return nil, nil
	}
	all := tableTopics(t.Name)
	if p.s.sinks != nil {
		names, err := p.s.sinks.TableSinks(ctx, t.Name)
		if err != nil {
			return nil, fmt.Errorf("the sinks of %s: %w", t.Name, err)
		}
		for _, n := range names {
			all = append(all, sink.DeadLetterTopic(t.Name, n))
		}
	}
	ids, err := d.TopicIDs(ctx, all...)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		return nil, nil // a Kafka before 2.8: by name
	case err != nil:
		return nil, err
	}
	return catalog.TopicIDs(ids), nil
}

// deleteLettersLeft deletes the dead letters' topics of the sinks of t (a
// table marked deleting, its topics' ids saved) that the saved ids miss: a
// sink that dead-lettered for the first time after the ids were saved
// made its topic then. Left, it was taken over by a sink of the same name
// of a table created again under the name, which listed and redrove the
// dropped table's letters. They are deleted by the ids they have, read
// while the catalog still holds t's entry (read first, then the entry):
// no table of the name can have been created again before that, so the
// topics are t's sinks', never a table's created again.
func (s *Server) deleteLettersLeft(ctx context.Context, t catalog.Table, drop sink.TableDrop) error {
	d, ok := s.log.(intentlog.TopicIDDeleter)
	if !ok || s.sinks == nil {
		return nil
	}
	names, err := s.sinks.DroppedSinks(ctx, drop)
	if err != nil || len(names) == 0 {
		return err
	}
	letters := make([]string, 0, len(names))
	for _, n := range names {
		letters = append(letters, sink.DeadLetterTopic(t.Name, n))
	}
	ids, err := d.TopicIDs(ctx, letters...)
	if err != nil {
		return fmt.Errorf("the ids of the dead letters' topics of the sinks of %s: %w", t.Name, err)
	}
	for topic, id := range ids {
		if saved, ok := (*t.TopicIDs)[topic]; ok && saved == id {
			delete(ids, topic) // deleted by the saved id
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if held, err := s.catalog.StillDeleting(ctx, t); err != nil || !held {
		return err
	}
	return s.deleteTopicIDs(ctx, catalog.TopicIDs(ids))
}

// deleteTopicIDs deletes topics by the ids they had; a topic gone, or made
// again since under its name, is left.
func (s *Server) deleteTopicIDs(ctx context.Context, ids catalog.TopicIDs) error {
	d, ok := s.log.(intentlog.TopicIDDeleter)
	if !ok {
		return fmt.Errorf("%w: the table's topics were deleted by id, which this log (%s) cannot do: "+
			"drop it from a process on the Kafka log it was created on", errors.ErrUnsupported, s.cfg.Log.Kind)
	}
	for topic, id := range ids {
		if err := d.DeleteTopicID(ctx, topic, id); err != nil {
			return err
		}
	}
	return nil
}

// groupsDropped ends the members of the consumer groups of t, which is
// dropped, on this process.
func (s *Server) groupsDropped(t catalog.Table) {
	if s.events == nil {
		return
	}
	var created int64
	if !t.CreatedAt.IsZero() {
		created = t.CreatedAt.UnixMicro()
	}
	s.events.TableDropped(t.Name, created)
}

// deleteTopics deletes a table's topics, and the dead-letter topics of its
// sinks named, with the offsets committed on them; already gone is fine.
func (s *Server) deleteTopics(ctx context.Context, table string, sinks []string) error {
	all := tableTopics(table)
	for _, n := range sinks {
		all = append(all, sink.DeadLetterTopic(table, n))
	}
	for _, topic := range all {
		if err := s.log.DeleteTopic(ctx, topic); err != nil && !errors.Is(err, intentlog.ErrUnknownTopic) {
			return err
		}
	}
	return nil
}

// openCatalog opens the catalog and applies the configuration's tables.
func (s *Server) openCatalog(ctx context.Context) error {
	defaults, err := s.cfg.TableDefaults()
	if err != nil {
		return fmt.Errorf("table_defaults: %w", err)
	}
	s.catalog, err = catalog.Open(ctx, s.store, catalog.Options{
		Defaults: defaults, Limits: s.cfg.CatalogLimits(), Provisioner: topics{s},
		Refresh: s.cfg.CatalogRefresh, TakeUp: s.cfg.Resolver.CommitInterval, OnProblem: s.tableProblem, Release: s.release, OnRelease: s.releaseProblem,
		Opening: func(c *catalog.Catalog) { s.catalog = c },
	})
	if err != nil {
		return err
	}
	for _, t := range s.cfg.Tables {
		if err := s.configTable(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// forgetter is a log whose clients cache what they learned of topics
// (Kafka: ids, partition counts): a topic another process deleted, maybe
// created again since, must be forgotten.
type forgetter interface{ Forget(topics ...string) }

// release lets go of a table another process dropped (or dropped and
// created anew): once this process's resolver stopped its partitions, an
// embedded log (this process's alone) deletes the table's topics; Kafka's,
// which the dropping process deleted, are forgotten.
func (s *Server) release(ctx context.Context, t catalog.Table) error {
	s.groupsDropped(t)
	if s.resolver != nil {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := s.resolver.Stopped(ctx, t); err != nil {
			return fmt.Errorf("its resolver partitions did not stop: %w", err)
		}
	}
	embedded := s.cfg.Log.Kind == config.LogEmbedded
	if !embedded {
		// Only the wait for a making of the name's topics here (the
		// topic lock) can take long; a refresh runs its releases.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	// By name, so only while they are still t's: under the exclusive
	// topic lock of the name, and only while no table of the name was
	// made here since (a create through this process), whose they are
	// then. Its health conditions (named by the name) were cleared: a
	// retention condition came back at the next check only. Forgetting
	// its topics took them out of the resolver's group too: its
	// partitions stopped for good, its writes never resolved. Deleting
	// them (only this process's: the sinks' definitions are the dropping
	// process's to delete; their dead letters' topics are on the log of
	// the process that runs them) lost them.
	return s.catalog.ReleaseTopics(ctx, t, func(ctx context.Context) error {
		s.tableProblem(t.Name, nil)
		s.health.Clear(retentionComponent(t.Name))
		s.health.Clear(partitionsComponent(t.Name))
		if f, ok := s.log.(forgetter); ok {
			f.Forget(tableTopics(t.Name)...)
		}
		if !embedded {
			return nil
		}
		// Its sinks' dead letters first: the table's own topics, left
		// by a crash meanwhile, say at the next start what to release.
		if err := s.deleteMadeFor(ctx, t); err != nil {
			return err
		}
		if err := s.deleteTopics(ctx, t.Name, nil); err != nil {
			return err
		}
		s.logger.Info("deleted the topics of a table dropped elsewhere", "table", t.Name,
			"created_at", t.CreatedAt.UTC().Format(time.RFC3339Nano))
		return nil
	})
}

// deleteMadeFor deletes the topics of this process's log recorded as made
// for t other than its own (the dead-letter topics of its sinks that ran
// here: the dropping process deletes the sinks' definitions, but cannot
// delete topics on this log).
func (s *Server) deleteMadeFor(ctx context.Context, t catalog.Table) error {
	l, ok := s.log.(intentlog.OwnerLister)
	owner := topicOwner(t)
	if !ok || owner == "" {
		return nil
	}
	owners, err := l.TopicOwners(ctx)
	if err != nil {
		return err
	}
	own := tableTopics(t.Name)
	for topic, o := range owners {
		if o != owner || slices.Contains(own, topic) {
			continue
		}
		if err := s.log.DeleteTopic(ctx, topic); err != nil && !errors.Is(err, intentlog.ErrUnknownTopic) {
			return err
		}
	}
	return nil
}

// tableTopics are the topics of a table: intents, events, dead letters.
func tableTopics(table string) []string {
	return []string{intent.Topic(table), eventbus.Topic(table), dlq.Topic(table)}
}

// releaseProblem raises (or clears) the health condition of a table
// dropped elsewhere whose release here failed: it is tried again, and
// meanwhile its topics stay on this process's log.
func (s *Server) releaseProblem(t catalog.Table, err error) {
	component := "release/" + t.Name
	if err == nil {
		s.health.Clear(component)
		return
	}
	s.health.Set(component, health.Degraded,
		fmt.Sprintf("table %s (created %s) was dropped elsewhere, and releasing it here failed: %v",
			t.Name, t.CreatedAt.UTC().Format(time.RFC3339Nano), err),
		"it is tried again at each catalog refresh; fix what the error names (wail doctor; a resolver "+
			"partition that does not stop: the resolver/"+t.Name+"/<p> conditions; the embedded log's disk)")
}

// tableProblem raises (or clears) the health condition of a table that
// cannot be served here.
func (s *Server) tableProblem(table string, err error) {
	if err == nil {
		s.health.Clear("catalog/" + table)
		return
	}
	s.health.Set("catalog/"+table, health.Degraded, err.Error(),
		"check the log (wail doctor); the table is served again once its topics can be made, "+
			"or drop it (wail table drop "+table+" --force)")
}

// interruptedDrop raises the health condition of a table of the
// configuration found being dropped at start: the start goes on without
// it, and the drop is finished through this process.
func (s *Server) interruptedDrop(table string, state catalog.State) {
	reason := fmt.Sprintf("table %s of the configuration is being dropped (%s): a drop is running elsewhere, "+
		"or stopped half way; it takes no writes", table, state)
	s.logger.Warn("a table of the configuration is being dropped; serving without it", "table", table, "state", state.String())
	s.health.Set("catalog/"+table, health.Degraded, reason,
		"if no drop is running, finish it: wail table drop "+table+" --force; the next start creates the table "+
			"from the configuration (or remove it from the configuration)")
}

// configTable creates a table of the configuration, or brings the saved
// table to the settings the configuration names (those it leaves out are
// not compared): what an alter can change is altered; a partition count
// that differs refuses to start.
func (s *Server) configTable(ctx context.Context, ct config.Table) error {
	def, err := s.cfg.TableDef(ct)
	if err != nil {
		return fmt.Errorf("table %s: %w", ct.Name, err)
	}
	if def, err = s.configTypes(ctx, ct, def); err != nil {
		return fmt.Errorf("table %s: %w", ct.Name, err)
	}
	saved, _, err := s.catalog.Create(ctx, def)
	if err == nil {
		return nil
	}
	if errors.Is(err, catalog.ErrBusy) {
		if now, found, lerr := s.catalog.Load(ctx, ct.Name); lerr == nil && found &&
			(now.State == catalog.Dropping || now.State == catalog.Deleting) {
			// A drop that stopped half way (the process died): refusing
			// to start left no server to finish it through.
			s.interruptedDrop(ct.Name, now.State)
			return nil
		}
	}
	if !errors.Is(err, catalog.ErrConflict) {
		return fmt.Errorf("table %s: %w", ct.Name, err)
	}
	if def.Partitions != 0 && def.Partitions != saved.Partitions {
		return fmt.Errorf("table %s: the configuration says %d partitions, the saved table has %d, and partitions "+
			"cannot change: set partitions: %d in the configuration (or leave it out), or drop the table "+
			"(`wail table drop %s`: its rows and events are deleted) and start again",
			ct.Name, def.Partitions, saved.Partitions, saved.Partitions, ct.Name)
	}
	a, changes := catalog.AlterTo(saved, def)
	if ct.Validate != nil && def.SkipValidation != saved.SkipValidation {
		a.SkipValidation = &def.SkipValidation
		changes = append(changes, fmt.Sprintf("validate %t -> %t", !saved.SkipValidation, !def.SkipValidation))
	}
	if len(changes) == 0 {
		return nil // it differs only in settings the configuration leaves out
	}
	if _, _, err := s.catalog.Alter(ctx, ct.Name, a); err != nil {
		return fmt.Errorf("table %s: altering it to the configuration (%s): %w", ct.Name, strings.Join(changes, ", "), err)
	}
	s.logger.Info("table altered to match the configuration", "table", ct.Name, "changes", strings.Join(changes, ", "))
	return nil
}

// table returns a table in any state.
func (s *Server) table(name string) (catalog.Table, bool) {
	for _, t := range s.catalog.List() {
		if t.Name == name {
			return t, true
		}
	}
	return catalog.Table{}, false
}

// dropHooks are what the catalog needs to drop a table here.
func (s *Server) dropHooks() catalog.DropHooks {
	return catalog.DropHooks{
		Progress: s.progress,
		Stopped: func(ctx context.Context, t catalog.Table) error {
			if s.resolver == nil {
				return nil
			}
			return s.resolver.Stopped(ctx, t)
		},
	}
}

// progress returns per partition the intent log's end and the resolvers'
// committed offset.
func (s *Server) progress(ctx context.Context, t catalog.Table) (ends, committed []int64, err error) {
	topic := intent.Topic(t.Name)
	offs, err := s.log.Committed(ctx, s.cfg.Resolver.Group, topic)
	if err != nil {
		return nil, nil, err
	}
	for p := int32(0); p < t.Partitions; p++ {
		start, end, err := s.log.Bounds(ctx, topic, p)
		if err != nil {
			return nil, nil, err
		}
		ends = append(ends, end)
		committed = append(committed, max(offs[p], start)) // below the start: removed by retention
	}
	return ends, committed, nil
}
