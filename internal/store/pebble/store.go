// Package pebble is wail's embedded default store: store.Store on a local
// Pebble LSM (github.com/cockroachdb/pebble/v2), with conditional
// last-writer-wins writes serialised per key by a striped mutex (checking
// versions cached in memory, versions.go, before reading Pebble) and durable
// (fsynced) commits unless Options.NoSync is set. Reads never return a
// write before it is durable (durable.go); a storage error stops the store
// for good with store.ErrStorage (failstop.go), and the process restarts.
//
// On-disk key layout (all keys in one Pebble keyspace):
//
//	r/<table>\x00<key>  a row; table names never contain \x00 (see
//	                    store.ValidateTableName), so the prefix is unambiguous
//	t/<table>           table registry entry (CreateTable); empty value
//	c/<name>            catalog entry (SaveTable, SwapTable); value is Table.Spec
//
// Row value encoding:
//
//	[0:8]  version, uint64 big-endian
//	[8]    flags; bit 0 = tombstone, bit 1 = schema id follows (the rest
//	       must be zero; a tombstone never has a schema id)
//	[9:13] with bit 1: the value's schema id, uint32 big-endian
//	[..:]  value bytes (always empty for a tombstone)
//
// Rows written before bit 1 existed have none: their schema id reads as 0.
package pebble

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wail-cdc/wail/internal/store"
	wailvfs "github.com/wail-cdc/wail/internal/vfs"
)

const (
	prefixRow     = "r/"
	prefixTable   = "t/"
	prefixCatalog = "c/"

	headerLen     = 9 // version (8) + flags (1)
	flagTombstone = 1 << 0
	flagSchema    = 1 << 1
	schemaLen     = 4

	numStripes = 256
)

// Options configures Open. The zero value is durable and uses Pebble's
// default block cache size.
type Options struct {
	// NoSync skips the fsync of each committed write. Faster, but a machine
	// crash (not a process crash) can lose recently acknowledged writes.
	NoSync bool
	// CacheBytes is the block cache size; 0 means Pebble's default (8 MiB).
	// Pebble charges its memtables (4 MiB each once grown, two while one
	// flushes) to this cache, so 8 MiB keeps few blocks under writes.
	CacheBytes int64
	// Logger receives Pebble's own log lines (info at Debug, errors at
	// Error) and the store's. nil means slog.Default().
	Logger *slog.Logger
	// FS is the filesystem the store lives on; nil means the operating
	// system's. Tests inject faults through it (vfs/errorfs, vfs.MemFS).
	FS vfs.FS
	// VersionCacheKeys bounds the row versions kept in memory so that a
	// write need not read its key's version from Pebble (versions.go):
	// 0 means the default (131072, about 10 MiB with 16-byte keys), a
	// negative value turns the cache off. Open reads up to this many rows
	// (and 64 MiB of them) to fill it; while all the rows fit, a write of
	// a new key reads nothing either.
	VersionCacheKeys int
	// RowCacheBytes bounds the rows kept in memory after they were written
	// so that a Get of them need not read Pebble (rows.go): 0 means the
	// default (32 MiB), a negative value turns the cache off.
	RowCacheBytes int64
}

// Store is a store.Store on a local Pebble database. It is safe for
// concurrent use.
type Store struct {
	db      *pebble.DB
	wopts   *pebble.WriteOptions
	log     *slog.Logger
	seed    maphash.Seed
	failure *failure
	stalls  *stallClock // Pebble's write stalls (Engine)

	// life is read-held by every operation that touches db and write-held
	// by Close, so db is never used after it is closed (Pebble panics then).
	life   sync.RWMutex
	closed bool

	tablesMu sync.RWMutex
	tables   map[string]struct{}

	// catalogMu serialises the catalog's reads and writes: SwapTable's
	// read-compare-write (Pebble allows one process per directory, so a
	// mutex makes swaps linearizable), and reads after the durability of
	// writes (lockCatalog).
	catalogMu sync.Mutex

	stripes [numStripes]stripe
	// versionLimit bounds each stripe's cached versions (0: no cache);
	// versionReads counts the versions read from Pebble (cache misses).
	versionLimit int
	versionReads atomic.Int64
	// rowLimit bounds each stripe's cached rows in bytes (0: no cache);
	// rowReads counts the Gets that read Pebble.
	rowLimit int
	rowReads atomic.Int64

	// Committers (failstop.go): an idle one receives on work; committers
	// counts the live ones. The syncer (durable.go) receives on syncq.
	// Close closes quit and waits for them (running) unless the store failed.
	work       chan func()
	committers atomic.Int32
	idle       time.Duration // committerIdle; tests shorten it
	syncq      chan syncing
	quit       chan struct{}
	running    sync.WaitGroup

	// testHookCheck, if set, runs inside the critical section between the
	// version checks and the commit (tests widen the race window with it).
	testHookCheck func()
}

// stripe is one lock of the striped mutex: it serialises the version
// checks and the apply of its keys, and guards their cached versions
// (versions.go). flightsMu guards their flights (durable.go) and cached
// rows (rows.go).
type stripe struct {
	sync.Mutex
	versions  map[string]uint64 // row key -> version Pebble holds
	complete  bool              // versions holds every row of the stripe (versions.go)
	flightsMu sync.Mutex
	flights   map[string]*flight   // row key -> batch applied but not yet durable
	rows      map[string]cachedRow // row key -> row Pebble holds
	rowBytes  int
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (s *Store, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	fail := newFailure(log)
	stalls := newStallClock()
	events := stalls.listener()
	events.DataCorruption = fail.corrupt
	events.BackgroundError = fail.background
	po := &pebble.Options{
		Logger:             slogLogger{l: log, f: fail},
		EventListener:      events,
		FormatMajorVersion: pebble.FormatNewest,
		FS:                 &stopFS{FS: fs, f: fail},
	}
	// A write of a key the version cache does not hold (an insert, mostly)
	// reads Pebble for a key that is usually absent: bloom filters answer
	// that without an index or data block of every table in the way.
	po.Levels[0].FilterPolicy = bloom.FilterPolicy(10) // the other levels inherit it
	if opts.CacheBytes > 0 {
		c := pebble.NewCache(opts.CacheBytes)
		defer c.Unref() // the DB holds its own reference
		po.Cache = c
	}
	var db *pebble.DB
	defer func() { // Fatalf panics (log.go), and so may a read of the rows
		if r := recover(); r != nil {
			closeAfterPanic(db)
			s, err = nil, fmt.Errorf("pebble: open %s: %v", dir, r)
		}
	}()
	if err := checkLogs(fs, dir); err != nil {
		return nil, fmt.Errorf("pebble: open %s: %w", dir, err)
	}
	db, err = openPebble(dir, po, fail)
	if err != nil {
		if ferr := fail.openFailure(); ferr != nil {
			return nil, fmt.Errorf("pebble: open %s: %w", dir, backgroundError(fail, dir, ferr))
		}
		if oerr := optionsFileError(fs, dir, po, err); oerr != nil {
			return nil, fmt.Errorf("pebble: open %s: %w", dir, oerr)
		}
		return nil, fmt.Errorf("pebble: open %s: %w", dir, openError(fail, dir, err))
	}
	s = &Store{
		db:      db,
		wopts:   pebble.Sync,
		log:     log,
		seed:    maphash.MakeSeed(),
		failure: fail,
		stalls:  stalls,
		tables:  make(map[string]struct{}),
		work:    make(chan func()),
		idle:    committerIdle,
		quit:    make(chan struct{}),
		syncq:   make(chan syncing, maxSyncing),

		versionLimit: perStripe(int64(opts.VersionCacheKeys), defaultVersionCacheKeys),
		rowLimit:     perStripe(opts.RowCacheBytes, defaultRowCacheBytes),
	}
	if opts.NoSync {
		s.wopts = pebble.NoSync
	}
	if err = s.loadTables(); err == nil {
		err = s.loadVersions()
	}
	if err == nil {
		err = fail.openDamage() // reported by a job of Pebble's own
	}
	if ferr := fail.openFailure(); ferr != nil {
		// A flush or compaction failed: it holds up Close for good (failstop.go).
		return nil, fmt.Errorf("pebble: open %s: %w", dir, backgroundError(fail, dir, ferr))
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("pebble: open %s: %w", dir, openError(fail, dir, err))
	}
	if ferr := fail.arm(); ferr != nil {
		return nil, fmt.Errorf("pebble: open %s: %w", dir, backgroundError(fail, dir, ferr))
	}
	if s.wopts.Sync {
		s.running.Go(s.syncer)
	}
	log.Debug("pebble store opened", "dir", dir, "tables", len(s.tables), "sync", !opts.NoSync)
	return s, nil
}

// openPebble is pebble.Open, or the background error that fails it first
// (failstop.go): Pebble retries a failed flush for ever, and its Open
// waits for the flush of the WAL it replayed. Then pebble.Open is left
// running, as a failed store is; a panic of pebble.Open is Open's (it
// recovers it).
func openPebble(dir string, po *pebble.Options, fail *failure) (*pebble.DB, error) {
	type result struct {
		db  *pebble.DB
		err error
		r   any
	}
	done := make(chan result, 1)
	go func() {
		var res result
		defer func() {
			res.r = recover()
			done <- res
		}()
		res.db, res.err = pebble.Open(dir, po)
	}()
	select {
	case res := <-done:
		if res.r != nil {
			closeAfterPanic(res.db)
			panic(res.r)
		}
		return res.db, res.err
	case <-fail.openFailed:
		return nil, fail.openFailure()
	}
}

// backgroundError is Open's error when a write of the store's files (or a
// background job) failed before the store was open: what failed, and what
// to do.
func backgroundError(fail *failure, dir string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("the store failed to write its files while opening: %w; free space on its disk (df -h %s) and start again", err, dir)
	case wailvfs.AccessAdvice(dir, err) != nil:
		return openError(fail, dir, err)
	}
	return fmt.Errorf("the store failed on its disk while opening: %w; check the disk (dmesg, smartctl -a) and start again", err)
}

// openError is the error Open fails with: the damaged file Pebble
// reported, if it did; for other damage Pebble found (a MANIFEST or an
// older WAL that does not decode) or a file the MANIFEST names that is
// missing, what to run.
func openError(fail *failure, dir string, err error) error {
	if d := fail.openDamage(); d != nil {
		return d
	}
	if access := wailvfs.AccessAdvice(dir, err); access != nil {
		return access
	}
	switch {
	case pebble.IsCorruptionError(err):
		return damaged("a file of the store", err)
	case errors.Is(err, os.ErrNotExist): // a file the MANIFEST names
		msg, _, _ := strings.Cut(err.Error(), "\n")
		return fmt.Errorf("a file of the store is missing (%s): it was deleted (by hand, a cleanup script) or lost by the disk; check the disk (dmesg, smartctl -a), "+
			"then restore DATA_DIR from a backup and run `wail table reconcile TABLE` for every table", msg)
	}
	return err
}

// closeAfterPanic closes db (if Open got that far) after a panic during
// Open, so that the directory's lock is released and a later Open may take
// it; a panic of Close itself is dropped (the panic being reported is the
// first one).
func closeAfterPanic(db *pebble.DB) {
	if db == nil {
		return
	}
	defer func() { _ = recover() }()
	_ = db.Close()
}

// scan calls fn for every key under prefix, with the prefix stripped. The
// slices are only valid during the call.
func (s *Store) scan(prefix string, fn func(k, v []byte)) error {
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte(prefix),
		UpperBound: prefixEnd(prefix),
	})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return err
		}
		fn(it.Key()[len(prefix):], v)
	}
	return it.Close() // reports any iteration error
}

// scanChecked is scan for a working store: a read error fails the store.
func (s *Store) scanChecked(prefix string, fn func(k, v []byte)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.failure.fail(fmt.Errorf("pebble panicked in a scan: %v", r))
		}
	}()
	if err := s.scan(prefix, fn); err != nil {
		return s.failure.fail(fmt.Errorf("scan: %w", err))
	}
	return nil
}

// set writes one key durably (unless NoSync); see write.
func (s *Store) set(key, value []byte) error {
	return s.write(func() error { return s.db.Set(key, value, s.wopts) })
}

// write runs op, a write through Pebble that returns once it is durable
// (unless NoSync), on a committer (await); an error fails the store.
func (s *Store) write(op func() error) error {
	return s.await(func(done chan<- error) {
		err := op()
		if err != nil {
			err = s.failure.fail(fmt.Errorf("write: %w", err))
		}
		done <- err
	})
}

// prefixEnd is the smallest key greater than every key with prefix p (p is
// one of the ASCII prefixes above, so its last byte is never 0xff).
func prefixEnd(p string) []byte {
	end := []byte(p)
	end[len(end)-1]++
	return end
}

// acquire read-locks the store's lifetime; it fails once the store is
// closed or failed.
func (s *Store) acquire() error {
	s.life.RLock()
	if s.closed {
		s.life.RUnlock()
		return store.ErrClosed
	}
	if err := s.failure.failed(); err != nil {
		s.life.RUnlock()
		return err
	}
	return nil
}

func (s *Store) release() { s.life.RUnlock() }

// Apply writes muts conditionally: each takes effect only if its version is
// greater than the key's current one. Within one call, duplicate keys are
// resolved first (highest version wins; on a tie the earliest), and the
// writes that apply are committed in one batch. A write never outlives the
// call (ctx is checked before it starts): an error wraps
// store.ErrNotApplied when the batch was not applied (the store was closed
// or had failed, the table is unknown, ctx had ended); after a storage
// failure during the commit the outcome is unknown.
func (s *Store) Apply(ctx context.Context, table string, muts []store.Mutation) ([]store.Outcome, error) {
	out, err := s.apply(ctx, table, muts)
	if err != nil {
		return nil, fmt.Errorf("pebble: apply %s: %w", table, err)
	}
	return out, nil
}

// pending is the winning mutation for one distinct key of a batch.
type pending struct {
	idx    int // into muts
	rowKey []byte
	// key is rowKey's bytes seen as a string (never copied: rowKey is
	// never written after plan), the key of the stripe's versions, rows
	// and flights maps: a written key costs one allocation, not one per map.
	key    string
	stripe uint32
}

func (s *Store) apply(ctx context.Context, table string, muts []store.Mutation) ([]store.Outcome, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", store.ErrNotApplied, err)
	}
	if err := s.acquire(); err != nil {
		return nil, fmt.Errorf("%w: %w", store.ErrNotApplied, err)
	}
	defer s.release()
	if !s.known(table) {
		return nil, fmt.Errorf("%w: %w", store.ErrNotApplied, store.ErrUnknownTable)
	}
	out := make([]store.Outcome, len(muts))
	if len(muts) == 0 {
		return out, nil
	}

	// Outside any lock: resolve duplicates, build row keys, pick stripes.
	winners, winnerOf := s.plan(table, muts)
	stripes := make([]uint32, 0, len(winners))
	for _, p := range winners {
		stripes = append(stripes, p.stripe)
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)

	if err := s.commit(ctx, muts, winners, stripes, out); err != nil {
		return nil, err
	}

	// Losing duplicates report the key's version after the batch.
	for i := range muts {
		if w := winnerOf[i]; w != i {
			out[i] = store.Outcome{Current: out[w].Current}
		}
	}
	return out, nil
}

// commit runs stage on a committer (await): it checks and stages the
// winners under their stripes and applies the batch. A synced batch then
// goes to the syncer (durable.go), which answers once it is durable. Last,
// commit waits for every newer version that made a mutation lose to be
// durable too. Any error from Pebble fails the store.
func (s *Store) commit(ctx context.Context, muts []store.Mutation, winners []pending, stripes []uint32, out []store.Outcome) error {
	var newer []*flight
	err := s.await(func(done chan<- error) {
		b := s.db.NewBatch()
		f, nw, err := s.stage(ctx, b, muts, winners, stripes, out)
		newer = nw
		if err != nil || f == nil {
			_ = b.Close() // Pebble is done with it (or, after an error, never reuses it)
			done <- err
			return
		}
		s.syncLater(syncing{b: b, f: f, winners: winners, done: done})
	})
	if err != nil {
		return err // and newer may still be written: read it only after an answer
	}
	for _, n := range newer {
		if err := s.awaitFlight(context.Background(), n); err != nil {
			return err
		}
	}
	return nil
}

// stage encodes the winners into b, then holds the stripes while it checks
// versions (versions.go), drops the losers from b, registers the batch's
// flight and caches its rows (when synced), applies the batch and caches
// the versions written; f is nil when nothing was applied or the store does
// not sync. newer are the flights of the versions that beat a mutation.
//
// Everything that needs no stripe is done before they are taken: the
// batch, the rows to cache (their values copied) and the winners grouped
// by stripe, so that each stripe's flights and rows are updated under one
// flightsMu lock rather than one per key. The stripes are held for the
// version checks, those map updates and Pebble's memtable insert
// (ApplyNoSyncWait, which assigns the sequence numbers: a later batch of
// the same keys must get later ones), never for the WAL sync (durable.go).
func (s *Store) stage(ctx context.Context, b *pebble.Batch, muts []store.Mutation, winners []pending, stripes []uint32, out []store.Outcome) (f *flight, newer []*flight, err error) {
	// Outside the stripes: most writes win, so the batch is built first
	// and rebuilt, under the stripes, only when some lose.
	if err := encodeRows(b, muts, winners, nil); err != nil {
		return nil, nil, err
	}
	rows := s.rowsOf(muts, winners)
	groups := groupByStripe(winners)
	for _, st := range stripes {
		s.stripes[st].Lock()
	}
	defer func() { // also when Pebble panics: await recovers it
		for _, i := range slices.Backward(stripes) {
			s.stripes[i].Unlock()
		}
	}()
	if err := s.failure.failed(); err != nil { // while we waited for the stripes
		return nil, nil, fmt.Errorf("%w: %w", store.ErrNotApplied, err)
	}
	// The last point where the write can still be refused: one whose
	// deadline passed while it waited for a committer or its stripes
	// (behind a batch stalled in its memtable insert) must not be applied
	// now, after the resolver may have read the key past that deadline
	// and found nothing (an acknowledged write without an event).
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", store.ErrNotApplied, err)
	}
	newer, lost, err := s.check(muts, winners, out)
	if err == nil && lost > 0 {
		b.Reset()
		err = encodeRows(b, muts, winners, out)
	}
	if s.testHookCheck != nil {
		s.testHookCheck()
	}
	switch {
	case err != nil:
		return nil, nil, err
	case b.Empty():
		return nil, newer, nil
	case !s.wopts.Sync:
		if err := s.db.Apply(b, s.wopts); err != nil {
			return nil, nil, s.failure.fail(fmt.Errorf("apply: %w", err))
		}
		s.rememberApplied(muts, winners, out)
		s.track(nil, winners, groups, rows, out)
		return nil, newer, nil
	}
	// The flight and the rows go in before the batch can be read: a Get
	// that finds either waits for the flight, which lands only once the
	// batch is durable (or the store failed).
	f = newFlight()
	s.track(f, winners, groups, rows, out)
	if err := s.db.ApplyNoSyncWait(b, s.wopts); err != nil {
		err = s.failure.fail(fmt.Errorf("apply: %w", err))
		s.land(f, winners)
		return nil, nil, err
	}
	s.rememberApplied(muts, winners, out)
	return f, newer, nil
}

// groupByStripe returns the indexes of winners ordered by stripe, so that
// the winners of one stripe are adjacent.
func groupByStripe(winners []pending) []int32 {
	order := make([]int32, len(winners))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return cmp.Compare(winners[a].stripe, winners[b].stripe) })
	return order
}

// rememberApplied caches the versions of the winners that were applied;
// the caller holds their stripes.
func (s *Store) rememberApplied(muts []store.Mutation, winners []pending, out []store.Outcome) {
	for _, p := range winners {
		if out[p.idx].Applied {
			s.remember(p.stripe, p.key, muts[p.idx].Version)
		}
	}
}

// plan resolves duplicate keys: winners holds one entry per distinct key and
// winnerOf[i] is the index of the mutation that stands for muts[i].
func (s *Store) plan(table string, muts []store.Mutation) ([]pending, []int) {
	winnerOf := make([]int, len(muts))
	winners := make([]pending, 0, len(muts))
	// slot: key -> index into winners; only if len > 1. Its keys are the
	// mutations' own bytes, not copies: the map lives only in this call,
	// while muts stay as they are.
	var slot map[string]int
	if len(muts) > 1 {
		slot = make(map[string]int, len(muts))
	}
	for i := range muts {
		m := &muts[i]
		if slot != nil {
			if j, dup := slot[string(m.Key)]; dup {
				if m.Version > muts[winners[j].idx].Version {
					winners[j].idx = i
				}
				continue
			}
			slot[unsafe.String(unsafe.SliceData(m.Key), len(m.Key))] = len(winners)
		}
		rk := rowKey(table, m.Key)
		winners = append(winners, pending{
			idx:    i,
			rowKey: rk,
			key:    unsafe.String(unsafe.SliceData(rk), len(rk)),
			stripe: s.stripeOf(rk),
		})
	}
	for i := range muts {
		winnerOf[i] = i
	}
	if slot != nil {
		for i := range muts {
			winnerOf[i] = winners[slot[string(muts[i].Key)]].idx
		}
	}
	return winners, winnerOf
}

func (s *Store) stripeOf(rowKey []byte) uint32 {
	return uint32(maphash.Bytes(s.seed, rowKey) % numStripes)
}

// check sets the outcome of each winner against its key's current
// version; lost counts the winners that lost. It must be called with the
// winners' stripes held. newer are the flights of the versions that beat a
// mutation (not durable yet).
func (s *Store) check(muts []store.Mutation, winners []pending, out []store.Outcome) (newer []*flight, lost int, err error) {
	for i := range winners {
		p := &winners[i]
		m := &muts[p.idx]
		cur, found, err := s.currentVersion(p)
		if err != nil {
			return nil, 0, err
		}
		if found && cur >= m.Version {
			out[p.idx] = store.Outcome{Current: cur}
			lost++
			if f := s.flightOf(p.rowKey, p.stripe); f != nil {
				newer = append(newer, f)
			}
			continue
		}
		out[p.idx] = store.Outcome{Applied: true, Current: m.Version}
	}
	return newer, lost, nil
}

// encodeRows adds the winners to b, all of them when out is nil, else only
// those out says were applied.
func encodeRows(b *pebble.Batch, muts []store.Mutation, winners []pending, out []store.Outcome) error {
	for _, p := range winners {
		if out != nil && !out[p.idx].Applied {
			continue
		}
		m := &muts[p.idx]
		value, flags, head := m.Value, byte(0), headerLen
		switch {
		case m.Delete:
			value, flags = nil, flagTombstone
		case m.SchemaID != 0:
			flags, head = flagSchema, headerLen+schemaLen
		}
		op := b.SetDeferred(len(p.rowKey), head+len(value))
		copy(op.Key, p.rowKey)
		binary.BigEndian.PutUint64(op.Value, m.Version)
		op.Value[8] = flags
		if flags == flagSchema {
			binary.BigEndian.PutUint32(op.Value[headerLen:], m.SchemaID)
		}
		copy(op.Value[head:], value)
		if err := op.Finish(); err != nil {
			return err
		}
	}
	return nil
}

// version reads only the version of a row.
func (s *Store) version(rowKey []byte) (uint64, bool, error) {
	v, closer, err := s.db.Get(rowKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.failure.fail(fmt.Errorf("read: %w", err))
	}
	defer closer.Close()
	if len(v) < headerLen {
		return 0, false, fmt.Errorf("corrupt row %q: %d-byte value", rowKey, len(v))
	}
	return binary.BigEndian.Uint64(v), true, nil
}

func rowKey(table string, key []byte) []byte {
	k := make([]byte, 0, len(prefixRow)+len(table)+1+len(key))
	k = append(k, prefixRow...)
	k = append(k, table...)
	k = append(k, 0)
	return append(k, key...)
}

// Levels returns the single read level.
func (s *Store) Levels() []string { return []string{"local"} }

// Close flushes and closes the database; later calls return nil and every
// other operation fails with store.ErrClosed. After a storage failure it
// leaves Pebble as it is and returns the failure (see failstop.go).
func (s *Store) Close() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	// The committers and the syncer exit (no call is in flight), unless
	// they are stuck in a failed Pebble.
	close(s.quit)
	if err := s.failure.failed(); err != nil {
		return fmt.Errorf("pebble: not closed after the failure, the process must exit (the next start replays the WAL): %w", err)
	}
	// A storage failure while closing (the final WAL flush on a full
	// disk) blocks Pebble's call for good: Close returns the failure then,
	// and the goroutine stays with the blocked call until the process
	// exits, as it must after a failure.
	closed := make(chan error, 1)
	go func() {
		s.running.Wait()
		closed <- s.db.Close()
	}()
	select {
	case err := <-closed:
		if err != nil {
			return fmt.Errorf("pebble: close: %w", err)
		}
		return nil
	case <-s.failure.done:
		return fmt.Errorf("pebble: not closed after the failure, the process must exit (the next start replays the WAL): %w", s.failure.failed())
	}
}
