package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/dlq"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/intentlog"

	"github.com/wail-cdc/wail/internal/catalog"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/schema"
	"github.com/wail-cdc/wail/internal/schemaregistry"
)

// Typed tables' events (eventbus/typed.go): the schemas their record keys
// and values are framed with, and the drift guard. A value is published
// under the schema id its row was written with, after checking that it
// still is a message of that schema (another writer of the store may
// have changed it; validation may have been off); one that fits no
// schema of its table is never published (eventbus.ErrDrift: the event
// goes to the dead-letter topic).

// EventTypes implements eventbus.Typer: a table with a value type has
// typed events; its key is framed when it has a key type too.
func (v *typedValues) EventTypes(ctx context.Context, table string) (eventbus.EventTypes, bool, error) {
	t, ok := v.s.catalog.Get(table)
	if !ok || t.ValueMessage == "" {
		return eventbus.EventTypes{}, false, nil
	}
	var types eventbus.EventTypes
	if t.KeyMessage != "" {
		c, err := v.message(ctx, t.Name, partKey, t.KeyMessage)
		if err != nil {
			return types, false, err
		}
		types.KeyID, types.KeyIndexes = uint32(c.id), c.msg.Indexes()
	}
	types.Value = func(ctx context.Context, written uint32, value []byte) (uint32, []int, error) {
		return v.eventValue(ctx, t, written, value)
	}
	return types, true, nil
}

// eventValue returns the schema id and message indexes a value of t is
// published under: the id it was written with when the value fits that
// schema; for a row without one (written before rows kept it, or with
// validation off) or whose schema was deleted for good, the newest live
// version of the value subject that reads it.
func (v *typedValues) eventValue(ctx context.Context, t catalog.Table, written uint32, value []byte) (uint32, []int, error) {
	if written != 0 {
		msg, err := v.messageByID(ctx, written, t.ValueMessage)
		var e *schemaregistry.Error
		switch {
		case err == nil:
			if err := msg.Validate(value); err != nil {
				return 0, nil, fmt.Errorf("%w: written with schema %d, the value no longer fits it (changed in the store past wail?): %w",
					eventbus.ErrDrift, written, err)
			}
			return written, msg.Indexes(), nil
		case !errors.As(err, &e) || e.Status != http.StatusNotFound:
			return 0, nil, err
		}
		// Deleted for good: the versions left may read it.
	}
	c, err := v.message(ctx, t.Name, partValue, t.ValueMessage)
	if err != nil {
		return 0, nil, err
	}
	if c.msg.Validate(value) == nil {
		return uint32(c.id), c.msg.Indexes(), nil
	}
	subject := v.s.subject(t.Name, partValue)
	ids, err := v.s.schemas.LiveIDs(ctx, subject)
	if err != nil {
		return 0, nil, fmt.Errorf("the versions of %s: %w", subject, err)
	}
	for _, id := range ids {
		msg, err := v.messageByID(ctx, uint32(id), t.ValueMessage)
		if err != nil {
			continue // a version without the message type cannot read it
		}
		if msg.Validate(value) == nil {
			return uint32(id), msg.Indexes(), nil
		}
	}
	return 0, nil, fmt.Errorf("%w: the value (schema id %d) fits no live version of %s", eventbus.ErrDrift, written, subject)
}

// messageByID returns a message type of the schema of an id, cached for
// ttl (catalog_refresh): an id deleted for good (or given again by an
// import) elsewhere is seen within that time, through this process at once
// (forget); a read begun before a forget is not cached.
func (v *typedValues) messageByID(ctx context.Context, id uint32, name string) (schema.Message, error) {
	v.mu.Lock()
	c, ok := v.byID[id]
	forgot := v.forgot
	v.mu.Unlock()
	if !ok || time.Since(c.at) >= v.ttl {
		sch, err := v.s.schemas.ByID(ctx, int(id))
		if err != nil {
			return schema.Message{}, err
		}
		c = cachedSchema{sch: sch, at: time.Now()}
		v.mu.Lock()
		if v.forgot == forgot {
			if len(v.byID) >= 4096 {
				clear(v.byID)
			}
			v.byID[id] = c
		}
		v.mu.Unlock()
	}
	return c.sch.MessageType(name)
}

// snapshotDrifted dead-letters the rows of a typed table a snapshot left
// out because they fit no schema of the table (eventbus.Snapshots.Drifted):
// one SNAPSHOT letter per row version, on the table's dead-letter topic,
// as a live event of that value would be. A row version is dead-lettered
// once per process (every snapshot of every consumer reads it again); a
// restarted process, or another one, letters it again, with the same key
// and version: settle one, and the others by the same redrive.
func (v *typedValues) snapshotDrifted(ctx context.Context, table string, rows []eventbus.DriftedRow) error {
	t, ok := v.s.catalog.Get(table)
	if !ok {
		return fmt.Errorf("table %s is gone", table)
	}
	now := time.Now().UnixMicro()
	var recs []*intentlog.Record
	var ids []string
	v.mu.Lock()
	for _, r := range rows {
		id := intent.EventID(table, r.Key, r.Version)
		if v.lettered[id] {
			continue
		}
		ids = append(ids, id)
		rec, err := dlq.LetterRecord(&wailv1.DeadLetter{
			Table: table, Partition: intentlog.Partition(r.Key, t.Partitions), Key: r.Key, Kind: wailv1.DeadLetterKind_DEAD_LETTER_KIND_SNAPSHOT,
			Error: "snapshot: " + r.Err.Error(), Permanent: true, Attempts: 1, FirstAttemptUs: now, LastAttemptUs: now, DeadAtUs: now,
			ResolverId: "snapshot", SnapshotVersion: r.Version,
		})
		if err != nil {
			v.mu.Unlock()
			return err
		}
		recs = append(recs, rec)
	}
	v.mu.Unlock()
	if len(recs) == 0 {
		return nil
	}
	if err := v.s.log.Append(ctx, dlq.Topic(table), recs); err != nil {
		return fmt.Errorf("append to %s: %w", dlq.Topic(table), err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.lettered) >= 4096 {
		clear(v.lettered)
	}
	for _, id := range ids {
		v.lettered[id] = true
	}
	return nil
}
