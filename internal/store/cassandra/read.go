package cassandra

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/gocql/gocql"

	"github.com/wail-cdc/wail/internal/store"
	"github.com/wail-cdc/wail/internal/store/sqlstore"
)

// Get reads a key at the consistency of read level level (an index into
// the ladder). A replica shows a write only after its commit log entry is
// on disk (commitlog_sync batch or group), so what Get returns is durable
// on the replicas that returned it.
func (s *Store) Get(ctx context.Context, table string, key []byte, level store.Level) (store.Row, bool, error) {
	if err := s.checkOpen(); err != nil {
		return store.Row{}, false, fmt.Errorf("cassandra: get: %w", err)
	}
	if level < 0 || int(level) >= len(s.ladder) {
		return store.Row{}, false, fmt.Errorf("cassandra: get: read level %d out of range [0, %d]", level, len(s.ladder)-1)
	}
	if err := validTable(table); err != nil {
		return store.Row{}, false, fmt.Errorf("cassandra: get: %w: %w", store.ErrUnknownTable, err)
	}
	var value []byte
	var version int64
	var deleted bool
	var schemaID int64 // null (0) in rows of versions before the column
	err := s.onTable(ctx, table, unconfiguredTable, func(q string) error {
		return asRead(s.session.Query(getStmt(q), key).WithContext(withKey(ctx, key)).Consistency(s.ladder[level]), s.speculateAfter()).
			Scan(&value, &version, &deleted, &schemaID)
	})
	switch {
	case errors.Is(err, gocql.ErrNotFound):
		return store.Row{}, false, nil
	case err != nil:
		return store.Row{}, false, fmt.Errorf("cassandra: get %q at %s: %w", table, s.levels[level], s.classify(ctx, err))
	}
	return sqlstore.Row(value, version, deleted, schemaID), true, nil
}

// maxScanPage bounds the rows the driver fetches per round trip of a scan.
const maxScanPage = 5000

// ScanKeys lists keys with their versions, at the strongest read level, in
// Cassandra's partition order: by the key's token (Murmur3), then by the
// key's bytes, unsigned, which is how Cassandra orders keys that share a
// token. A page after key k is the keys that share k's token and sort
// after it, then the keys of higher tokens. Values are not read (their
// write times are: scanStmt).
func (s *Store) ScanKeys(ctx context.Context, table string, after []byte, limit int) ([]store.KeyVersion, error) {
	if err := s.checkOpen(); err != nil {
		return nil, fmt.Errorf("cassandra: scan: %w", err)
	}
	if limit <= 0 {
		return nil, fmt.Errorf("cassandra: scan: %w", store.ErrBadLimit)
	}
	if err := validTable(table); err != nil {
		return nil, fmt.Errorf("cassandra: scan: %w: %w", store.ErrUnknownTable, err)
	}
	var out []store.KeyVersion
	err := s.onTable(ctx, table, func(err error) bool { return errors.Is(err, store.ErrUnknownTable) }, func(q string) error {
		var err error
		out, err = s.scanKeys(ctx, q, after, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cassandra: scan %q: %w", table, err)
	}
	return out, nil
}

// scanKeys is ScanKeys on Cassandra table q.
func (s *Store) scanKeys(ctx context.Context, q string, after []byte, limit int) ([]store.KeyVersion, error) {
	var out []store.KeyVersion
	if after != nil {
		// The keys after `after` that share its token (a Murmur3
		// collision: practically never more than after itself).
		same, err := s.scan(ctx, scanStmt(q, "WHERE token(key) = token(?)"), after)
		if err != nil {
			return nil, err
		}
		slices.SortFunc(same, func(a, b store.KeyVersion) int { return bytes.Compare(a.Key, b.Key) })
		for _, kv := range same {
			if bytes.Compare(kv.Key, after) > 0 && len(out) < limit {
				out = append(out, kv)
			}
		}
		if len(out) == limit {
			return out, nil
		}
		rest, err := s.scan(ctx, scanStmt(q, "WHERE token(key) > token(?) LIMIT ?"), after, limit-len(out))
		if err != nil {
			return nil, err
		}
		return append(out, rest...), nil
	}
	return s.scan(ctx, scanStmt(q, "LIMIT ?"), limit)
}

func (s *Store) scan(ctx context.Context, stmt string, args ...any) ([]store.KeyVersion, error) {
	page := maxScanPage
	if n, ok := args[len(args)-1].(int); ok {
		page = min(n, maxScanPage)
	}
	iter := asRead(s.session.Query(stmt, args...).WithContext(ctx).Consistency(s.ladder[len(s.ladder)-1]), s.speculateAfter()).PageSize(page).Iter()
	var out []store.KeyVersion
	var key []byte
	var version, unused int64
	var deleted bool
	for iter.Scan(&key, &version, &deleted, &unused, &unused) {
		out = append(out, store.KeyVersion{Key: key, Version: uint64(version), Deleted: deleted})
		key = nil // the next row gets its own slice
	}
	if err := iter.Close(); err != nil {
		return nil, s.classify(ctx, err)
	}
	return out, nil
}
