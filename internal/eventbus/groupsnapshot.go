package eventbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/group"
)

// StreamFunc streams a table's events as Subscribe does (Service.Stream).
type StreamFunc func(ctx context.Context, req *wailv1.SubscribeRequest, started func() error, send func(*wailv1.SubscribeResponse) error) error

// errSnapshotOver ends a group snapshot's stream at its first cursor.
var errSnapshotOver = errors.New("snapshot over")

// SnapshotGroup takes the start "snapshot" snapshot of a group that has
// no committed positions (it returns false, nil at once when the group
// has some: its snapshot was over before). It passes deliver every batch
// of a from "snapshot" stream (the store's rows, with the live events
// interleaved; per key in increasing versions) until the stream's first
// cursor, then commits that cursor's offsets as the group's positions, so
// the group resumes exactly after the snapshot. Nothing is committed
// before that: a snapshot that stops half way (the member died, deliver
// failed) is taken again by the next one. The commit fails with
// group.ErrMembers when a member joined the group meanwhile.
func SnapshotGroup(ctx context.Context, stream StreamFunc, groups *group.Groups, t group.Table, name string, maxBatch int32,
	deliver func([]*wailv1.StreamedEvent) error) (bool, error) {
	_, parts, err := groups.Describe(ctx, t, name)
	if err != nil {
		return false, fmt.Errorf("group %s: %w", name, err)
	}
	if parts != nil {
		return false, nil
	}
	err = stream(ctx, &wailv1.SubscribeRequest{Table: t.Name, From: "snapshot", MaxBatchEvents: maxBatch},
		func() error { return nil },
		func(m *wailv1.SubscribeResponse) error {
			if m.Event != nil {
				m.Events = append(m.Events, &wailv1.StreamedEvent{Event: m.Event, Partition: m.Partition, Offset: m.Offset, Snapshot: m.Snapshot})
			}
			if len(m.Events) > 0 {
				if err := deliver(m.Events); err != nil {
					return err
				}
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
			if err := groups.Reset(ctx, t, name, offsets); err != nil {
				return fmt.Errorf("commit the snapshot's end: %w", err)
			}
			return errSnapshotOver
		})
	switch {
	case errors.Is(err, errSnapshotOver):
		return true, nil
	case err == nil && ctx.Err() != nil:
		return false, ctx.Err()
	case err == nil:
		return false, errors.New("the snapshot's stream ended before the snapshot was over (the server is shutting down?)")
	}
	return false, fmt.Errorf("snapshot: %w", err)
}

// groupSnapshots lets one member at a time take a group's snapshot on
// this server and reports its progress (DescribeGroup).
type groupSnapshots struct {
	mu sync.Mutex
	m  map[[2]string]*groupSnapshot
}

type groupSnapshot struct {
	lock   chan struct{} // holds a token while a member takes it
	member atomic.Pointer[string]
	events atomic.Int64
}

func (g *groupSnapshots) get(table, name string) *groupSnapshot {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[[2]string]*groupSnapshot{}
	}
	s, ok := g.m[[2]string{table, name}]
	if !ok {
		s = &groupSnapshot{lock: make(chan struct{}, 1)}
		g.m[[2]string{table, name}] = s
	}
	return s
}

// progress is the member taking the group's snapshot ("" none) and the
// rows it sent.
func (g *groupSnapshots) progress(table, name string) (string, int64) {
	s := g.get(table, name)
	if m := s.member.Load(); m != nil {
		return *m, s.events.Load()
	}
	return "", 0
}

// take runs SnapshotGroup for member, after any other member's snapshot
// of the group on this server ended (a member that waits takes none when
// that one committed positions).
func (g *groupSnapshots) take(ctx context.Context, table, name, member string, run func(count func(int)) (bool, error)) (bool, error) {
	s := g.get(table, name)
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-s.lock }()
	s.events.Store(0)
	s.member.Store(&member)
	defer s.member.Store(nil)
	return run(func(n int) { s.events.Add(int64(n)) })
}
