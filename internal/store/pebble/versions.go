package pebble

import (
	"encoding/binary"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// Versions in memory.
//
// A conditional write must know its key's current version. Reading it from
// Pebble (a Get while holding the key's stripe) used to be most of the cost
// of a write, and the stripes were held across it, so concurrent batches
// queued on them. Now each stripe keeps the versions of its keys (those
// Open found, then those written since), exactly as Pebble holds them, and
// a write reads Pebble only for a key the cache does not hold, and not
// even then when its stripe is complete (below).
//
// The cache is exact because:
//
//   - it is written only with a stripe held: by a write right after its
//     batch was applied to Pebble (the version Pebble now returns), or by a
//     write that read the version from Pebble under the same stripe; and by
//     Open (loadVersions) before any call can run;
//   - only Apply writes rows under the stripes; DropTable, the only other
//     writer of rows, holds the store's lifetime lock exclusively (no Apply
//     runs) and forgets its table's versions (the keys under
//     r/<table>\x00: table names hold no \x00, so no other table's);
//   - it lives in memory: Open fills it from the rows Pebble holds once it
//     has replayed its WAL, so after a restart or a crash it holds only
//     versions Pebble returns;
//   - after a failed commit the store fails for good (failstop.go), so a
//     cached version never outlives a batch Pebble did not take.
//
// A stripe is complete when its versions hold every row of its keys. Open
// marks each stripe complete when it read every row (loadVersions) and the
// stripe kept all of its own; a stripe then stays complete while it only
// gains keys (every applied write is remembered under the stripe, above)
// or loses those of a dropped table (whose rows DropTable deleted), and
// its first eviction makes it incomplete until the next Open. A key that
// a complete stripe does not hold is absent from Pebble.
//
// Like a Get from Pebble, the cache may hold a version whose batch is not
// durable yet: a write that loses to it still waits for its flight
// (durable.go). Each stripe holds at most Options.VersionCacheKeys/256
// versions (rounded up); a new key past that evicts an arbitrary one
// (Go's map iteration order), whose next write reads Pebble again.

// defaultVersionCacheKeys bounds the cached versions by default: about 10
// MiB with 16-byte keys.
const defaultVersionCacheKeys = 1 << 17

// perStripe turns a cache's bound from Options (0: def, negative: no
// cache) into each stripe's share, rounded up (0: no cache).
func perStripe(n, def int64) int {
	switch {
	case n < 0:
		return 0
	case n == 0:
		n = def
	}
	return int((n + numStripes - 1) / numStripes)
}

// currentVersion returns the version Pebble holds for p's row, from the
// cache or else from Pebble (then cached). The caller holds the stripe.
func (s *Store) currentVersion(p *pending) (uint64, bool, error) {
	st := &s.stripes[p.stripe]
	if v, ok := st.versions[p.key]; ok {
		return v, true, nil
	}
	if st.complete {
		return 0, false, nil
	}
	s.versionReads.Add(1)
	v, found, err := s.version(p.rowKey)
	if err == nil && found {
		s.remember(p.stripe, p.key, v)
	}
	return v, found, err
}

// remember caches the version of rowKey (pending.key), evicting another
// key of the stripe when it is full. The caller holds the stripe.
func (s *Store) remember(stripe uint32, rowKey string, v uint64) {
	if s.versionLimit == 0 {
		return
	}
	st := &s.stripes[stripe]
	if _, ok := st.versions[rowKey]; !ok {
		if st.versions == nil {
			st.versions = make(map[string]uint64)
		}
		for k := range st.versions {
			if len(st.versions) < s.versionLimit {
				break
			}
			delete(st.versions, k)
			st.complete = false
		}
	}
	st.versions[rowKey] = v
}

// versionLoadBytes bounds the bytes of rows (keys and values) Open reads
// to fill the cache, so that a table of large values does not make a
// start read gigabytes (rows are stored with their values); about a
// second of reading.
var versionLoadBytes = 64 << 20

// testHookLoadRow, if set, runs for each row loadVersions reads (tests
// inject a panic of Pebble's there).
var testHookLoadRow func()

// loadVersions fills the cache with the versions of the rows at Open and
// marks complete each stripe that holds all of its rows. It reads at most
// as many rows as the cache holds, and versionLoadBytes of them: when
// there are more, no stripe is complete (the rows not read may fall in
// any of them).
func (s *Store) loadVersions() error {
	if s.versionLimit == 0 {
		return nil
	}
	for i := range s.stripes {
		s.stripes[i].complete = true
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte(prefixRow), UpperBound: prefixEnd(prefixRow)})
	if err != nil {
		return err
	}
	read, size, ended := 0, 0, true
	for ok := it.First(); ok; ok = it.Next() {
		if read == s.versionLimit*numStripes || size > versionLoadBytes {
			ended = false
			break
		}
		read++
		if testHookLoadRow != nil {
			testHookLoadRow()
		}
		st := &s.stripes[s.stripeOf(it.Key())]
		if len(st.versions) == s.versionLimit {
			st.complete = false
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return err
		}
		size += len(it.Key()) + len(v)
		if len(v) < headerLen { // corrupt: a write of the key reads it and says so
			st.complete = false
			continue
		}
		if st.versions == nil {
			st.versions = make(map[string]uint64)
		}
		st.versions[string(it.Key())] = binary.BigEndian.Uint64(v)
	}
	if err := it.Close(); err != nil {
		return err
	}
	for i := range s.stripes {
		s.stripes[i].complete = s.stripes[i].complete && ended
	}
	return nil
}

// forgetTable drops the cached versions of table's rows, which DropTable
// deleted: the stripes stay as complete as they were. The caller holds
// the lifetime lock exclusively (no Apply runs).
func (s *Store) forgetTable(table string) {
	prefix := string(rowKey(table, nil))
	for i := range s.stripes {
		for k := range s.stripes[i].versions {
			if strings.HasPrefix(k, prefix) {
				delete(s.stripes[i].versions, k)
			}
		}
	}
}

func (s *Store) cachedVersions() int {
	n := 0
	for i := range s.stripes {
		st := &s.stripes[i]
		st.Lock()
		n += len(st.versions)
		st.Unlock()
	}
	return n
}
