package sink

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// Snapshotter streams a table's events from "snapshot" in the process
// (eventbus.Service.Stream).
type Snapshotter = eventbus.StreamFunc

// snapshot runs a "snapshot" sink's snapshot unless its group has
// positions (the snapshot was over before), with eventbus.SnapshotGroup:
// it posts every row of the snapshot, then commits the snapshot's end as
// the group's positions. A sink stopped during its snapshot takes it
// again (its group has no positions yet). Sinks on several processes
// take it once: the first to claim it in the group's entry (the others
// wait, then find the positions).
func (r *runner) snapshot(ctx context.Context) error {
	if r.m.snapshot == nil {
		return errors.New(`this process cannot take snapshots (start "snapshot")`)
	}
	r.stats.snapshotEvents.Store(0)
	r.stats.inSnapshot.Store(true)
	defer r.stats.inSnapshot.Store(false)
	// Each run names its requests apart: a snapshot taken again sends
	// other events under its request numbers, which an endpoint that
	// deduplicates on Wail-Delivery must not take for redeliveries.
	run := r.def.Table + "/snapshot/" + strconv.FormatInt(time.Now().UnixMicro(), 10) + "-"
	n := 0
	_, err := eventbus.SnapshotGroup(ctx, r.m.snapshot, r.m.groups, r.table, GroupName(r.def.Name), member, int32(batchLen(r.def)),
		func(ctx context.Context, evs []*wailv1.StreamedEvent) error {
			n++
			events := make([]*wailv1.ChangeEvent, 0, len(evs))
			recs := make([]intentlog.Record, 0, len(evs))
			for _, e := range evs {
				events = append(events, e.Event)
				v, err := proto.Marshal(e.Event)
				if err != nil {
					return err
				}
				off := e.Offset
				if e.Snapshot {
					off = -1 // a row read from the store: no bus position (its dead letter says so)
				}
				recs = append(recs, intentlog.Record{Key: e.Event.Key, Value: v, Partition: e.Partition, Offset: off})
			}
			// (not a group member yet: nothing to lose; ctx ends when this
			// process lost the snapshot's claim to another process)
			if err := r.postSnapshot(ctx, events, recs, run+strconv.Itoa(n), func() bool { return ctx.Err() == nil }); err != nil {
				return err
			}
			r.stats.snapshotEvents.Add(int64(len(evs)))
			return nil
		}, nil) // each batch was processed once posted: no end to acknowledge
	if err != nil {
		return fmt.Errorf("sink %s: %w", r.def.Name, err)
	}
	return nil
}

// postSnapshot posts a request of the sink's snapshot: events, and recs
// (one for one: the event's record, for its dead letter) as post takes
// them.
func (r *runner) postSnapshot(ctx context.Context, events []*wailv1.ChangeEvent, recs []intentlog.Record, delivery string, owns func() bool) error {
	b := &wailv1.SinkBatch{Sink: r.def.Name, Table: r.def.Table, Snapshot: true, Events: events}
	return r.post(ctx, b, delivery, recs, owns)
}
