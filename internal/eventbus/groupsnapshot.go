package eventbus

import (
	"context"
	"errors"
	"fmt"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
)

// StreamFunc streams a table's events as Subscribe does (Service.Stream).
type StreamFunc func(ctx context.Context, req *wailv1.SubscribeRequest, started func() error, send func(*wailv1.SubscribeResponse) error) error

// errSnapshotOver ends a group snapshot's stream at its first cursor.
var errSnapshotOver = errors.New("snapshot over")

// SnapshotGroup takes the start "snapshot" snapshot of a group for
// member unless the group has committed positions (then it returns false
// at once, also after waiting for another taker: its snapshot was over).
// One taker at a time (group.Groups.Snapshot): on this process, and in
// groups shared by processes through a claim in the group's entry, under
// the taker's process lease. It passes deliver every batch of a from
// "snapshot" stream (the store's rows, with the live events interleaved;
// per key in increasing versions) until the stream's first cursor, then
// commits that cursor's offsets as the group's positions, so the group
// resumes exactly after the snapshot. Nothing is committed before that:
// a snapshot that stops half way (the member or its process died,
// deliver failed, the process lost its claim) is taken again from the
// start by the next taker. deliver's context ends when the claim is lost
// (deliver must not send after it: another process may be taking the
// snapshot). With end set, the member acknowledges the snapshot: end
// tells it the rows are over, and the commit waits for its answer
// (group.SnapshotRun.AwaitEnd: group.ErrSnapshotUnacked past the group
// lease); without, the end is committed once every row was delivered. The
// commit fails with group.ErrMembers when a member joined the group
// meanwhile, and with group.ErrSnapshotLost when this process's claim
// lapsed.
func SnapshotGroup(ctx context.Context, stream StreamFunc, groups *group.Groups, t group.Table, name, member string, maxBatch int32,
	deliver func(context.Context, []*wailv1.StreamedEvent) error, end func(id uint64) error) (bool, error) {
	return groups.Snapshot(ctx, t, name, member, func(ctx context.Context, run *group.SnapshotRun) error {
		err := stream(ctx, &wailv1.SubscribeRequest{Table: t.Name, From: "snapshot", MaxBatchEvents: maxBatch},
			func() error { return nil },
			func(m *wailv1.SubscribeResponse) error {
				if m.Event != nil {
					m.Events = append(m.Events, &wailv1.StreamedEvent{Event: m.Event, Partition: m.Partition, Offset: m.Offset, Snapshot: m.Snapshot})
				}
				if len(m.Events) > 0 {
					if err := ctx.Err(); err != nil {
						return err
					}
					if err := deliver(ctx, m.Events); err != nil {
						return err
					}
					run.Count(len(m.Events))
				}
				if m.Cursor == "" {
					return nil
				}
				c, err := ParseCursor(m.Cursor, t.Name, t.Partitions)
				if err != nil {
					return err
				}
				offsets := make(map[int32]int64, len(c.Offsets))
				for p, o := range c.Offsets {
					offsets[int32(p)] = o
				}
				if end != nil {
					if err := run.AwaitEnd(ctx, end); err != nil {
						return err
					}
				}
				if err := run.Commit(ctx, offsets); err != nil {
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
	})
}
