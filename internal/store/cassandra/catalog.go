package cassandra

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/gocql/gocql"

	"github.com/wail-cdc/wail/internal/store"
)

// The catalog, wail__catalog, holds one row per entry:
//
//	name  text PRIMARY KEY,
//	spec  blob,            -- the entry; null: absent (deleted, or never there)
//	seq   bigint,          -- how many swaps the entry has had (null: none); never goes back
//	swaps map<int, blob>   -- the tag of swap number n, at key n % swapSlots
//
// Every swap, create, change or delete alike, is one lightweight
// transaction at SERIAL:
//
//	UPDATE wail__catalog SET spec = <new | null>, seq = n+1, swaps[(n+1) % swapSlots] = <tag>
//	WHERE name = ? IF spec = <old | null> AND seq = <n | null>
//
// where n is the entry's seq as this process last saw it (a wrong guess
// costs one more round: the read that follows a "not applied" tells the
// right one) and tag 16 random bytes of this call. A Paxos round that
// times out (contention, a slow replica) may still have applied; the swap
// then reads the row at SERIAL, which finishes or ends that round for
// good, and the attempt applied exactly when swap n+1 carries its tag
// (swaps[(n+1) % swapSlots]; after any refusal the swap looks for its tag
// in every slot, so an attempt a later Paxos round finished is found too).
// Only then does it try again, pinned to the seq it read, so two attempts
// of one call never both apply, and an attempt that applied and was
// overwritten at once (or the entry swapped back to old) is still known as
// made. Looking for the spec or a single last tag instead lost edits:
// another swap between the timed-out attempt and the read back hid it,
// the caller edited again, and an increment counted twice (the storetest
// CatalogEntry case). Past swapSlots swaps of the entry between the
// attempt and the read, the swap says the outcome is unknown (an error)
// rather than guess.
//
// A delete sets spec to null and keeps the row: seq must never return to
// a value an old attempt was pinned to, and the swaps record must outlive
// the delete. The record is overwritten slot by slot (a newer cell shadows
// the older, no tombstone), so it stays at swapSlots cells whatever the
// rate of swaps; a record that expired (TTL) would leave a tombstone per
// swap for gc_grace_seconds. The spec of a deleted entry is a tombstone
// cell: the catalog keeps Cassandra's default gc_grace_seconds, so run
// repair within it, as for any table with deletes, or a replica that
// missed the delete could bring the entry back.

// swapSlots is how many recent swaps of an entry the catalog remembers.
const swapSlots = 64

// SwapTable implements store.CatalogSwapper.
func (s *Store) SwapTable(ctx context.Context, name string, old, new []byte) ([]byte, bool, error) {
	cur, ok, err := s.swapTable(ctx, name, old, new)
	if err != nil {
		return nil, false, fmt.Errorf("cassandra: swap table %s: %w", name, err)
	}
	return cur, ok, nil
}

func (s *Store) swapTable(ctx context.Context, name string, old, new []byte) ([]byte, bool, error) {
	if err := store.ValidateCatalogName(name); err != nil {
		return nil, false, err
	}
	if err := s.checkOpen(); err != nil {
		return nil, false, err
	}
	seq, known := s.seqs.get(name)
	if !known || old == nil && new == nil {
		row, err := s.readEntry(ctx, name)
		if err != nil {
			return nil, false, err
		}
		if old == nil && new == nil || !row.holds(old) {
			cur := row.current()
			return cur, cur == nil && old == nil, nil
		}
		seq = row.seq
	}
	tag := make([]byte, 16)
	if _, err := rand.Read(tag); err != nil {
		return nil, false, err
	}
	tries, moved := 0, 0 // attempts that failed; refusals that only moved seq
	for {
		applied, err := s.swapAttempt(ctx, name, old, new, seq, tag)
		if err == nil && applied {
			s.seqs.set(name, seq+1)
			return new, true, nil
		}
		unsure := false
		if err != nil {
			cerr := s.classify(ctx, err)
			switch {
			case errors.Is(cerr, store.ErrUnavailable):
				unsure = !notApplied(err)
				tries++
			case notApplied(err):
				return nil, false, cerr
			default: // the caller's context ended, the store closed
				return nil, false, outcomeUnknown(cerr)
			}
			err = cerr
		}
		row, rerr := s.readEntry(ctx, name)
		switch {
		case rerr != nil && unsure:
			return nil, false, outcomeUnknown(rerr)
		case rerr != nil:
			return nil, false, rerr
		case row.made(tag):
			return new, true, nil
		case unsure && row.seq > seq+swapSlots:
			return nil, false, outcomeUnknown(fmt.Errorf("%w: %d swaps of the entry since the attempt, more than the %d the catalog remembers",
				store.ErrUnavailable, row.seq-seq, swapSlots))
		}
		// Not made, and never will be: the read at SERIAL finished or
		// ended its Paxos round, or another swap took seq+1.
		switch {
		case !row.holds(old):
			return row.current(), false, nil
		case err != nil && tries >= casTries:
			return nil, false, fmt.Errorf("%w: %d attempts failed, none applied: %w", store.ErrNotApplied, tries, err)
		case err != nil:
			if err := backoff(ctx, tries-1); err != nil {
				return nil, false, err
			}
		default: // refused only because seq moved on (a stale guess, or swaps that put old back)
			if moved++; moved > casTries {
				return nil, false, fmt.Errorf("%w: %w: the entry was swapped %d times by other processes and still holds the old value; try again",
					store.ErrNotApplied, store.ErrUnavailable, moved)
			}
		}
		seq = row.seq
	}
}

// outcomeUnknown: a swap whose attempt may have applied, and reading the
// entry back could not tell.
func outcomeUnknown(err error) error {
	return fmt.Errorf("the outcome is unknown: a lightweight transaction on the catalog timed out and reading the entry back "+
		"at SERIAL could not tell whether it applied: %w; read the entry again before repeating the change", err)
}

// swapAttempt runs one lightweight transaction of a swap, pinned to the
// entry's seq.
func (s *Store) swapAttempt(ctx context.Context, name string, old, new []byte, seq int64, tag []byte) (applied bool, err error) {
	var pinned any
	if seq != 0 {
		pinned = seq
	}
	err = s.hook("swap", func() (err error) {
		applied, err = s.session.Query("UPDATE "+s.ks+"."+catalogTable+" SET spec = ?, seq = ?, swaps[?] = ? WHERE name = ? IF spec = ? AND seq = ?",
			new, seq+1, slot(seq+1), tag, name, old, pinned).
			WithContext(ctx).Consistency(gocql.Quorum).SerialConsistency(gocql.Serial).MapScanCAS(map[string]any{})
		return err
	})
	return applied, err
}

func slot(seq int64) int { return int(seq % swapSlots) }

// catalogRow is an entry's row as read at SERIAL.
type catalogRow struct {
	spec  nullable
	seq   int64
	swaps map[int][]byte
}

// current is the entry (nil: absent).
func (r catalogRow) current() []byte {
	if r.spec.null {
		return nil
	}
	return append([]byte{}, r.spec.b...)
}

// made: a swap of this call applied (its tag is in the record). Only an
// attempt pinned to seq n writes the tag, at slot (n+1) % swapSlots, and
// only once seq is past n+swapSlots can it have been overwritten.
func (r catalogRow) made(tag []byte) bool {
	for _, t := range r.swaps {
		if bytes.Equal(t, tag) {
			return true
		}
	}
	return false
}

// holds: the entry is spec (nil: absent).
func (r catalogRow) holds(spec []byte) bool {
	if spec == nil || r.spec.null {
		return spec == nil && r.spec.null
	}
	return bytes.Equal(r.spec.b, spec)
}

// readEntry reads an entry's row at SERIAL (which finishes any Paxos
// round in progress on it), again while that times out.
func (s *Store) readEntry(ctx context.Context, name string) (catalogRow, error) {
	var row catalogRow
	err := s.paxos(ctx, func(ctx context.Context) error {
		return s.hook("read", func() error {
			row = catalogRow{}
			err := s.session.Query("SELECT spec, seq, swaps FROM "+s.ks+"."+catalogTable+" WHERE name = ?", name).WithContext(ctx).
				Consistency(gocql.Consistency(gocql.Serial)).Scan(&row.spec, &row.seq, &row.swaps)
			if errors.Is(err, gocql.ErrNotFound) {
				row = catalogRow{spec: nullable{null: true}}
				return nil
			}
			return err
		})
	})
	if err != nil {
		return catalogRow{}, err
	}
	s.seqs.set(name, row.seq)
	return row, nil
}

// hook runs run, through the test's fault when one is set.
func (s *Store) hook(op string, run func() error) error {
	if s.fault != nil {
		return s.fault(op, run)
	}
	return run()
}

// catalogSeqs is the seq of each catalog entry as this process last saw
// it: the guess a swap's first attempt is pinned to. One per entry name
// (the catalog's size).
type catalogSeqs struct {
	mu  sync.Mutex
	seq map[string]int64
}

func (c *catalogSeqs) get(name string) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seq, ok := c.seq[name]
	return seq, ok
}

// asOf is name's seq as last seen, -1 when none was: what a generation
// read is tagged with (cachedGen.asOf).
func (c *catalogSeqs) asOf(name string) int64 {
	if seq, ok := c.get(name); ok {
		return seq
	}
	return -1
}

// set records a seq read at SERIAL or made by a swap.
func (c *catalogSeqs) set(name string, seq int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seq == nil {
		c.seq = map[string]int64{}
	}
	c.seq[name] = seq
}

// raise records a seq read at a weaker level (it may be stale).
func (c *catalogSeqs) raise(name string, seq int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seq == nil {
		c.seq = map[string]int64{}
	}
	c.seq[name] = max(c.seq[name], seq)
}

// nullable is a blob that tells null (absent, or a Cassandra tombstone in
// the cell) from empty: gocql scans both into a nil []byte.
type nullable struct {
	b    []byte
	null bool
}

func (n *nullable) UnmarshalCQL(_ gocql.TypeInfo, data []byte) error {
	n.b, n.null = append([]byte(nil), data...), data == nil
	return nil
}

// DropTable drops the table's Cassandra table (and its rows); dropping a
// table that does not exist is not an error. The catalog entry is kept.
// The table's generation moves on first, and only the tables of
// generations before the new one are dropped: a table created again under
// the name is another Cassandra table, of another name, which no DROP of
// this drop, however late, can reach (generation.go). A drop that
// reaches DropTable itself late (after another drop of the table, and a
// create of it again) moves the new table's generation on and drops it:
// the catalog drops with DropTablePinned.
func (s *Store) DropTable(ctx context.Context, table string) error {
	if err := s.dropTable(ctx, table); err != nil {
		return fmt.Errorf("cassandra: drop table %s: %w", table, err)
	}
	return nil
}

func (s *Store) dropTable(ctx context.Context, table string) error {
	if err := validTable(table); err != nil {
		return err
	}
	if err := s.checkOpen(); err != nil {
		return err
	}
	return s.tables.Drop(table, func() error {
		gen, err := s.nextGeneration(ctx, table)
		if err != nil {
			return err
		}
		s.forgetGen(table, -1)
		return s.dropGeneration(ctx, table, gen)
	})
}

var _ store.PinnedDropper = (*Store)(nil)

// DropPin implements store.PinnedDropper: the pin is table's generation
// now, read at SERIAL (8 bytes, big-endian). The catalog reads it once the
// table's entry is marked deleting, when no create of the table can run:
// it is the generation of the table being dropped (or, after an earlier
// drop of it by a build without pins, a later one no create used).
func (s *Store) DropPin(ctx context.Context, table string) ([]byte, error) {
	if err := validTable(table); err != nil {
		return nil, fmt.Errorf("cassandra: drop pin of table %s: %w", table, err)
	}
	if err := s.checkOpen(); err != nil {
		return nil, fmt.Errorf("cassandra: drop pin of table %s: %w", table, err)
	}
	gen, err := s.generation(ctx, table)
	if err != nil {
		return nil, fmt.Errorf("cassandra: drop pin of table %s: %w", table, err)
	}
	return binary.BigEndian.AppendUint64(nil, uint64(gen)), nil
}

// DropTablePinned implements store.PinnedDropper: it drops the table of
// the generation pin names, moving the generation on from it only if it
// is still that one, then the garbage of the generations before it. A
// drop that arrives late, after another moved the generation on and the
// table was created again (a later generation, of another Cassandra
// table), moves nothing and drops only tables of that generation and
// earlier ones, which nothing uses any more (DropTable, arriving then,
// moved the new table's generation on and dropped its table).
func (s *Store) DropTablePinned(ctx context.Context, table string, pin []byte) error {
	if err := s.dropTablePinned(ctx, table, pin); err != nil {
		return fmt.Errorf("cassandra: drop table %s: %w", table, err)
	}
	return nil
}

func (s *Store) dropTablePinned(ctx context.Context, table string, pin []byte) error {
	if err := validTable(table); err != nil {
		return err
	}
	if err := s.checkOpen(); err != nil {
		return err
	}
	if len(pin) != 8 || int64(binary.BigEndian.Uint64(pin)) < 0 {
		return fmt.Errorf("%w: drop pin %x is not a generation", store.ErrBadPin, pin)
	}
	gen := int64(binary.BigEndian.Uint64(pin))
	return s.tables.Drop(table, func() error {
		if err := s.moveGeneration(ctx, table, gen); err != nil {
			return err
		}
		s.forgetGen(table, -1)
		return s.dropGeneration(ctx, table, gen)
	})
}

// dropGeneration drops the table of generation gen of table by name, even
// if this coordinator does not list it yet, then any garbage of earlier
// ones (sweep). The generation must be past gen.
func (s *Store) dropGeneration(ctx context.Context, table string, gen int64) error {
	q := s.ks + "." + generationName(table, gen)
	if err := s.hook("drop", func() error { return s.ddl(ctx, "DROP TABLE IF EXISTS "+q) }); err != nil {
		return err
	}
	return s.sweep(ctx, table, gen)
}
