package eventbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	wailv1 "github.com/wail-cdc/wail/api/wail/v1"
	"github.com/wail-cdc/wail/internal/intent"
	"github.com/wail-cdc/wail/internal/readahead"
	"github.com/wail-cdc/wail/internal/store"
)

// SnapshotSource is the store a snapshot reads: its keys in pages, and
// each key's row at the strongest level.
type SnapshotSource interface {
	store.Scanner
	Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error)
	Levels() []string
}

// Snapshots configures from "snapshot" streams. Zero values take the
// defaults.
type Snapshots struct {
	// Source is the store (nil: snapshots are refused).
	Source SnapshotSource
	// ResolverGroup is the consumer group the resolvers commit the intent
	// log's offsets under: a chunk's keys are forgotten once it committed
	// past the intents logged when the chunk was read.
	ResolverGroup string
	// ChunkKeys is how many keys one scan page reads (default 512);
	// Chunks how many chunks may wait for the resolver at once (default
	// 8); MaxKeys the most keys a stream's filter holds (default
	// 1,000,000; see DESIGN.md); ReadConcurrency how many rows of a chunk
	// are read at once (default 8).
	ChunkKeys, Chunks, MaxKeys, ReadConcurrency int
	// Poll is how often the resolver's committed offsets are polled
	// (default 100ms).
	Poll time.Duration
	// Drifted dead-letters the rows of a typed table that a snapshot read
	// and that fit no schema of the table (the drift guard, as for live
	// events: they are never delivered). nil: they are only left out.
	Drifted func(ctx context.Context, table string, rows []DriftedRow) error
}

// DriftedRow is a row a snapshot left out because its value fits no
// schema of its typed table.
type DriftedRow struct {
	Key     []byte
	Version uint64
	Err     error // wraps ErrDrift
}

func (c Snapshots) maxKeys() int {
	if c.MaxKeys > 0 {
		return c.MaxKeys
	}
	return 1_000_000
}

func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// WithSnapshots enables from "snapshot"; call it before serving.
func (s *Service) WithSnapshots(c Snapshots) *Service {
	s.snapshots = c
	return s
}

// snapshotMsg is what the snapshot hands its stream: rows to deliver, a
// chunk whose keys may be forgotten at a mark, or the end of the scan.
type snapshotMsg struct {
	rows    []snapshotRow
	size    int64 // taken from the stream's budget
	settle  *settling
	scanned bool
}

func (m snapshotMsg) apply(c *streamCore) ([]*wailv1.SubscribeResponse, error) {
	switch {
	case m.settle != nil:
		return c.settled(m.settle.keys, m.settle.mark, m.settle.done), nil
	case m.scanned:
		return c.scanned(), nil
	}
	return c.rows(m.rows)
}

// pendingChunk is a chunk whose rows were read and handed on, waiting for
// the resolvers to commit past intents.
type pendingChunk struct {
	keys    []string
	intents []int64 // the intent log's end offsets after the rows were read
	// last: the scan's last chunk. Only after it is the scan over: pending
	// also closes when the scan failed or its stream ended.
	last bool
}

// snapshot scans the table's keys in chunks, reads each key's row and
// hands the rows to out, then for each chunk the mark past which the
// stream may forget its keys (see DESIGN.md, "Snapshot, then stream").
func (s *Service) snapshot(ctx context.Context, table string, n int32, buf *readahead.Stream, out chan<- snapshotMsg) error {
	c := s.snapshots
	slots := make(chan struct{}, orDefault(c.Chunks, 8))
	pending := make(chan pendingChunk, cap(slots))
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.settleChunks(ctx, table, n, pending, slots, out) })
	g.Go(func() error {
		defer close(pending)
		var after []byte
		limit := orDefault(c.ChunkKeys, 512)
		for {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
			if buf.Wait(ctx) != nil {
				return nil
			}
			page, err := c.Source.ScanKeys(ctx, table, after, limit)
			if err != nil {
				return snapshotErr(table, "list keys", err)
			}
			rows, err := s.readRows(ctx, table, page)
			if err != nil {
				return err
			}
			intents, err := s.bus.endsOf(ctx, intent.Topic(table), n)
			if err != nil {
				return snapshotErr(table, "read the intent log's ends", err)
			}
			m := snapshotMsg{rows: rows}
			keys := make([]string, len(rows))
			for i, r := range rows {
				keys[i] = string(r.key)
				m.size += int64(len(r.key) + len(r.value))
			}
			size := m.size
			var ok bool
			if m.size, ok, err = buf.Take(ctx, size); err != nil {
				return nil
			} else if !ok {
				// The process's read-ahead is full and the stream holds
				// events: drop the chunk rather than hold it uncounted,
				// and read it again once the stream may take it.
				<-slots
				if buf.Room(ctx, size) != nil {
					return nil
				}
				continue
			}
			select {
			case out <- m:
			case <-ctx.Done():
				buf.Release(m.size)
				return nil
			}
			select {
			case pending <- pendingChunk{keys: keys, intents: intents, last: len(page) < limit}:
			case <-ctx.Done():
				return nil
			}
			if len(page) < limit {
				return nil
			}
			after = page[len(page)-1].Key
		}
	})
	return g.Wait()
}

// readRows reads each key's row at the strongest level (a scan may list a
// version whose write has not returned yet; Get never returns one).
func (s *Service) readRows(ctx context.Context, table string, page []store.KeyVersion) ([]snapshotRow, error) {
	src := s.snapshots.Source
	level := store.Level(len(src.Levels()) - 1)
	rows := make([]snapshotRow, len(page))
	found := make([]bool, len(page))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(orDefault(s.snapshots.ReadConcurrency, 8))
	for i := range page {
		g.Go(func() error {
			row, ok, err := src.Get(gctx, table, page[i].Key, level)
			if err != nil {
				return snapshotErr(table, "read a row", err)
			}
			rows[i] = snapshotRow{key: page[i].Key, value: row.Value, version: row.Version, deleted: row.Deleted, schemaID: row.SchemaID}
			found[i] = ok
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := rows[:0]
	for i, r := range rows {
		if found[i] {
			out = append(out, r)
		}
	}
	return s.guard(ctx, table, out)
}

// guard is the drift guard of a typed table's snapshot rows, the one its
// live events go through (EventTypes.Value): a value is delivered under
// the schema id it would be published with; a value that fits no schema of
// the table is left out and dead-lettered (Snapshots.Drifted). A registry
// that cannot be read fails the snapshot (the client retries).
func (s *Service) guard(ctx context.Context, table string, rows []snapshotRow) ([]snapshotRow, error) {
	if s.bus.typer == nil {
		return rows, nil
	}
	types, typed, err := s.bus.typer.EventTypes(ctx, table)
	if err != nil {
		return nil, snapshotErr(table, "read the table's schemas", err)
	}
	if !typed {
		return rows, nil
	}
	var drifted []DriftedRow
	out := rows[:0]
	for _, r := range rows {
		if !r.deleted {
			id, _, err := types.Value(ctx, r.schemaID, r.value)
			switch {
			case errors.Is(err, ErrDrift):
				drifted = append(drifted, DriftedRow{Key: r.key, Version: r.version, Err: err})
				continue
			case err != nil:
				return nil, snapshotErr(table, "check a row's schema", err)
			}
			r.schemaID = id
		}
		out = append(out, r)
	}
	if len(drifted) > 0 && s.snapshots.Drifted != nil {
		if err := s.snapshots.Drifted(ctx, table, drifted); err != nil {
			return nil, snapshotErr(table, "dead-letter rows that fit no schema", err)
		}
	}
	return out, nil
}

// settleChunks waits, chunk after chunk, until the resolvers committed
// past the intents logged when the chunk was read, then hands the stream
// the bus's end offsets as the chunk's mark. When the scan is over (its
// last chunk settled), it says so; never when pending closed without a
// last chunk (the scan failed: the stream fails with its error, and must
// not first send the snapshot's end).
func (s *Service) settleChunks(ctx context.Context, table string, n int32, pending <-chan pendingChunk, slots chan struct{}, out chan<- snapshotMsg) error {
	poll := orDefault(s.snapshots.Poll, 100*time.Millisecond)
	send := func(m snapshotMsg) error {
		select {
		case out <- m:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for ch := range pending {
		if err := s.awaitResolved(ctx, table, ch.intents, poll); err != nil {
			return err
		}
		mark, err := s.bus.ends(ctx, table, n)
		if err != nil {
			return snapshotErr(table, "read the bus's ends", err)
		}
		if err := send(snapshotMsg{settle: &settling{keys: ch.keys, mark: mark, done: func() { <-slots }}}); err != nil {
			return nil
		}
		if ch.last { // the scan is over: no chunk follows
			if ctx.Err() == nil {
				_ = send(snapshotMsg{scanned: true})
			}
			return nil
		}
	}
	return nil // pending closed without its last chunk: the scan failed, or the stream ended
}

// awaitResolved polls the resolver group's committed offsets on the
// table's intent log until each partition's reached intents.
func (s *Service) awaitResolved(ctx context.Context, table string, intents []int64, poll time.Duration) error {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		committed, err := s.bus.log.Committed(ctx, s.snapshots.ResolverGroup, intent.Topic(table))
		if err != nil {
			return snapshotErr(table, "read the resolvers' committed offsets", err)
		}
		if reachedMap(committed, intents) {
			return nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil
		}
	}
}

func reachedMap(committed map[int32]int64, ends []int64) bool {
	for p, e := range ends {
		if e > 0 && committed[int32(p)] < e {
			return false
		}
	}
	return true
}

func snapshotErr(table, what string, err error) error {
	return fmt.Errorf("snapshot of %s: %s: %w", table, what, err)
}
