package sink

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/eventbus"
	"github.com/wail-cdc/wail/internal/intentlog"
)

// Snapshotter streams a table's events from "snapshot" in the process
// (eventbus.Service.Stream).
type Snapshotter func(ctx context.Context, req *wailv1.SubscribeRequest, started func() error, send func(*wailv1.SubscribeResponse) error) error

// errSnapshotOver ends the snapshot's stream once it sent its first cursor.
var errSnapshotOver = errors.New("snapshot over")

// snapshot runs a "snapshot" sink's snapshot unless its group has
// positions (the snapshot was over before): it delivers every message of
// a from "snapshot" stream (rows of the store, with the live events
// interleaved; per key in increasing versions) until the stream's first
// cursor, then commits that cursor's offsets as the group's positions, so
// that the group resumes exactly after the snapshot. A sink stopped
// during its snapshot takes it again (its group has no positions yet).
func (r *runner) snapshot(ctx context.Context) error {
	_, parts, err := r.m.groups.Describe(ctx, r.table, GroupName(r.def.Name))
	if err != nil {
		return fmt.Errorf("group %s: %w", GroupName(r.def.Name), err)
	}
	if parts != nil {
		return nil // taken before
	}
	if r.m.snapshot == nil {
		return errors.New(`this process cannot take snapshots (start "snapshot")`)
	}
	r.stats.snapshotEvents.Store(0)
	r.stats.inSnapshot.Store(true)
	defer r.stats.inSnapshot.Store(false)
	n := 0
	err = r.m.snapshot(ctx, &wailv1.SubscribeRequest{Table: r.def.Table, From: StartSnapshot, MaxBatchEvents: r.def.MaxBatchEvents},
		func() error { return nil },
		func(m *wailv1.SubscribeResponse) error {
			if len(m.Events) > 0 {
				n++
				b := &wailv1.SinkBatch{Sink: r.def.Name, Table: r.def.Table, Snapshot: true}
				recs := make([]intentlog.Record, 0, len(m.Events))
				for _, e := range m.Events {
					b.Events = append(b.Events, e.Event)
					v, err := proto.Marshal(e.Event)
					if err != nil {
						return err
					}
					recs = append(recs, intentlog.Record{Key: e.Event.Key, Value: v, Partition: e.Partition, Offset: e.Offset})
				}
				if err := r.post(ctx, b, r.def.Table+"/snapshot/"+strconv.Itoa(n), recs); err != nil {
					return err
				}
				r.stats.snapshotEvents.Add(int64(len(m.Events)))
			}
			if m.Cursor == "" {
				return nil
			}
			c, err := eventbus.ParseCursor(m.Cursor, r.table.Name, r.table.Partitions)
			if err != nil {
				return err
			}
			offsets := make(map[int32]int64, len(c.Offsets))
			for p, o := range c.Offsets {
				offsets[int32(p)] = o
			}
			if err := r.m.groups.Reset(ctx, r.table, GroupName(r.def.Name), offsets); err != nil {
				return fmt.Errorf("commit the snapshot's end: %w", err)
			}
			return errSnapshotOver
		})
	switch {
	case errors.Is(err, errSnapshotOver):
		return nil
	case err == nil && ctx.Err() != nil:
		return ctx.Err()
	case err == nil:
		return errors.New("the snapshot's stream ended before the snapshot was over (the server is shutting down?)")
	}
	return fmt.Errorf("snapshot: %w", err)
}
