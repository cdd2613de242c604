package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/wail-cdc/wail/internal/store"
)

// Get reads key. The only level is 0 ("local").
func (s *Store) Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error) {
	var row store.Row
	var found bool
	var readErr error
	err := s.reading(ctx, table, level, func() {
		row, found, readErr = s.readRow(ctx, rowKey(table, key), key)
	})
	if err == nil {
		err = readErr
	}
	if err != nil {
		return store.Row{}, false, fmt.Errorf("pebble: get %s: %w", table, err)
	}
	return row, found, nil
}

// GetMany reads keys as Get reads each (store.MultiGetter), taking the
// store's lifetime lock and checking the table once for all of them, and
// each stripe's flightsMu once for all its keys (cachedRowsAndFlights).
func (s *Store) GetMany(ctx context.Context, table string, keys [][]byte, level store.Level) ([]store.KeyRead, error) {
	reads := make([]store.KeyRead, len(keys))
	err := s.reading(ctx, table, level, func() {
		rks := rowKeys(table, keys)
		cached := s.cachedRowsAndFlights(rks)
		for i, key := range keys {
			r := &reads[i]
			if r.Row, r.Found, r.Err = s.readRowFrom(ctx, rks[i], key, cached[i]); r.Err != nil {
				r.Err = fmt.Errorf("pebble: get %s: %w", table, r.Err)
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("pebble: get %s: %w", table, err)
	}
	return reads, nil
}

// rowKeys returns the row keys of keys of table, in one allocation.
func rowKeys(table string, keys [][]byte) [][]byte {
	n := 0
	for _, k := range keys {
		n += len(prefixRow) + len(table) + 1 + len(k)
	}
	buf := make([]byte, 0, n)
	rks := make([][]byte, len(keys))
	for i, k := range keys {
		start := len(buf)
		buf = append(buf, prefixRow...)
		buf = append(buf, table...)
		buf = append(buf, 0)
		buf = append(buf, k...)
		rks[i] = buf[start:len(buf):len(buf)]
	}
	return rks
}

// reading runs read, which reads rows of table, under the store's
// lifetime lock, once the level and the table are checked. A panic in
// Pebble fails the store (failstop.go) and the read.
func (s *Store) reading(ctx context.Context, table string, level store.Level, read func()) (err error) {
	if level != 0 {
		return fmt.Errorf("read level %d out of range [0, 0]", level)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	if !s.known(table) {
		return store.ErrUnknownTable
	}
	defer func() {
		if r := recover(); r != nil {
			err = s.failure.fail(fmt.Errorf("pebble panicked in a read: %v", r))
		}
	}()
	read()
	return nil
}

// readRow reads the row of rk (key is for messages): from the rows just
// written when it holds it, else from Pebble; either way only once the
// batch that wrote it is durable.
func (s *Store) readRow(ctx context.Context, rk, key []byte) (store.Row, bool, error) {
	return s.readRowFrom(ctx, rk, key, s.cachedRowAndFlight(rk))
}

// readRowFrom is readRow with rk's cached row and flight already looked up.
func (s *Store) readRowFrom(ctx context.Context, rk, key []byte, c rowAndFlight) (store.Row, bool, error) {
	if r := c.row; c.ok {
		// Durable once its flight (if any) has landed, as below.
		if err := s.awaitFlight(ctx, c.f); err != nil {
			return store.Row{}, false, err
		}
		if err := s.failure.failed(); err != nil {
			return store.Row{}, false, err
		}
		return store.Row{Version: r.version, Deleted: r.deleted, Value: bytes.Clone(r.value), SchemaID: r.schemaID}, true, nil
	}
	s.rowReads.Add(1)
	v, closer, err := s.db.Get(rk)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return store.Row{}, false, s.failure.failed()
	case err != nil:
		return store.Row{}, false, s.failure.fail(fmt.Errorf("read: %w", err))
	}
	row, err := decodeRow(v)
	closer.Close()
	if err != nil {
		return store.Row{}, false, fmt.Errorf("corrupt row %q: %w", key, err)
	}
	// The row may come from a batch whose WAL sync is still running, or
	// failed (then the store failed).
	if err := s.awaitDurable(ctx, rk); err != nil {
		return store.Row{}, false, err
	}
	if err := s.failure.failed(); err != nil {
		return store.Row{}, false, err
	}
	return row, true, nil
}

// decodeRow copies the value out of v (which Pebble owns).
func decodeRow(v []byte) (store.Row, error) {
	if len(v) < headerLen {
		return store.Row{}, fmt.Errorf("%d-byte value, want at least %d", len(v), headerLen)
	}
	row := store.Row{Version: binary.BigEndian.Uint64(v)}
	switch flags := v[8]; flags {
	case 0, flagSchema:
		value := v[headerLen:]
		if flags == flagSchema {
			if len(value) < schemaLen {
				return store.Row{}, fmt.Errorf("%d-byte value with a schema id, want at least %d", len(v), headerLen+schemaLen)
			}
			row.SchemaID, value = binary.BigEndian.Uint32(value), value[schemaLen:]
		}
		row.Value = bytes.Clone(value)
		if row.Value == nil {
			row.Value = []byte{}
		}
	case flagTombstone:
		row.Deleted = true
	default:
		return store.Row{}, fmt.Errorf("unknown flags %#x", flags)
	}
	return row, nil
}
