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

var _ store.Scanner = (*Store)(nil)

// errCorruptRow: a row value this package cannot decode (not a failure of
// the storage).
var errCorruptRow = errors.New("corrupt row")

// ScanKeys lists up to limit keys of table after the key after, in key
// order, with their versions (see store.Scanner). One Pebble iterator per
// page; values are not copied.
func (s *Store) ScanKeys(ctx context.Context, table string, after []byte, limit int) ([]store.KeyVersion, error) {
	out, err := s.scanKeys(ctx, table, after, limit)
	if err != nil {
		return nil, fmt.Errorf("pebble: scan %s: %w", table, err)
	}
	return out, nil
}

func (s *Store) scanKeys(ctx context.Context, table string, after []byte, limit int) (_ []store.KeyVersion, err error) {
	if limit <= 0 {
		return nil, store.ErrBadLimit
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	if !s.known(table) {
		return nil, store.ErrUnknownTable
	}
	defer func() { // a read error or a panic in Pebble fails the store (failstop.go)
		if r := recover(); r != nil {
			err = s.failure.fail(fmt.Errorf("pebble panicked in a scan: %v", r))
		} else if err != nil && !errors.Is(err, errCorruptRow) {
			err = s.failure.fail(fmt.Errorf("scan: %w", err))
		}
	}()
	prefix := rowKey(table, nil) // r/<table>\x00
	lower := prefix
	if after != nil {
		lower = append(rowKey(table, after), 0) // the smallest key above after
	}
	upper := bytes.Clone(prefix)
	upper[len(upper)-1] = 1 // table names hold no \x00 or \x01
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	out := make([]store.KeyVersion, 0, min(limit, 1024))
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return nil, err
		}
		if len(v) < headerLen || (v[8] != 0 && v[8] != flagTombstone && v[8] != flagSchema) {
			// The key before Close: Pebble owns its bytes until then.
			err := fmt.Errorf("%w %q: %d-byte value", errCorruptRow, it.Key()[len(prefix):], len(v))
			_ = it.Close()
			return nil, err
		}
		out = append(out, store.KeyVersion{
			Key:     bytes.Clone(it.Key()[len(prefix):]),
			Version: binary.BigEndian.Uint64(v),
			Deleted: v[8]&flagTombstone != 0,
		})
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	return out, nil
}
